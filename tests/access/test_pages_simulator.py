"""The policy simulator names the policy and statement that decided a question."""

import json

import pytest
from django.urls import reverse

from access.models import ManagedPolicy
from access.services import builtin_policies_sync
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GUARDED = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadAll", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"},
            {
                "Sid": "NotProd",
                "Effect": "Deny",
                "Action": "ssm:GetParameter",
                "Resource": "arn:aws:ssm:*:*:parameter/prod/*",
            },
            {
                "Sid": "OfficeOnly",
                "Effect": "Allow",
                "Action": "ssm:SendCommand",
                "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            },
        ],
    }
)
PROD = "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db"


@pytest.fixture
def sam(db):
    user = UserFactory(username="sam")
    ManagedPolicy.objects.create(name="Guarded", document=GUARDED).users.add(user)
    return user


def simulate(client, **question):
    return client.get(reverse("access:simulator"), question)


def test_an_explicit_deny_names_the_deciding_statement(admin_client, sam):
    response = simulate(admin_client, user=sam.pk, action="ssm:GetParameter", resource=PROD)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Denied (explicit deny)" in html
    assert "Policy <strong>Guarded</strong>, statement 1" in html and "NotProd" in html
    # The statement itself, as its policy spells it.
    assert "parameter/prod/*" in html.split('id="deciding-statement"', 1)[1]


def test_an_allow_names_its_statement(admin_client, sam):
    html = simulate(
        admin_client, user=sam.pk, action="ssm:getparameter", resource=PROD.replace("prod", "dev")
    ).content.decode()
    assert "Allowed" in html and "statement 0" in html and "ReadAll" in html


def test_an_implicit_deny_says_no_statement_allows_it(admin_client, sam):
    html = simulate(admin_client, user=sam.pk, action="ssm:PutParameter", resource=PROD)
    assert b"Denied (implicit" in html.content and b"No statement" in html.content


def test_context_overrides_reach_the_conditions(admin_client, sam):
    outside = simulate(admin_client, user=sam.pk, action="ssm:SendCommand", resource="*")
    inside = simulate(
        admin_client, user=sam.pk, action="ssm:SendCommand", resource="*", source_ip="10.1.2.3"
    )
    assert b"Denied (implicit" in outside.content
    assert b"OfficeOnly" in inside.content and b"Allowed" in inside.content


def test_an_unknown_action_is_refused_inline(admin_client, sam):
    response = simulate(admin_client, user=sam.pk, action="ssm:GetParamter", resource="*")
    assert response.status_code == 400
    assert b"is not a known action" in response.content
    assert b'id="simulation-result"' not in response.content


def test_the_simulator_offers_the_known_actions(admin_client):
    html = admin_client.get(reverse("access:simulator")).content.decode()
    assert '<datalist id="known-actions">' in html and 'value="kms:Decrypt"' in html


def test_simulating_needs_the_simulate_policy_permission(client, sam):
    builtin_policies_sync()
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(sam)
    client.force_login(sam)
    assert simulate(client, user=sam.pk, action="ssm:GetParameter").status_code == 403
