"""The one entry point: policies of the user and their groups, superusers, denials audited."""

import json

import pytest
from django.contrib.auth.models import Group

from access.authorization import (
    Principal,
    authorize,
    decide,
    is_allowed,
    principal_for,
    principal_of,
)
from access.models import ManagedPolicy
from access.services import builtin_policies_sync
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied

pytestmark = pytest.mark.django_db

PROD = "arn:aws:ssm:us-east-1:000000000000:parameter/app/prod/db"
DEV = "arn:aws:ssm:us-east-1:000000000000:parameter/app/dev/db"


def policy(name: str, *statements: dict) -> ManagedPolicy:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return ManagedPolicy.objects.create(name=name, document=json.dumps(document))


def test_a_user_with_no_policy_may_do_nothing(operator_user):
    decision = decide(Principal(user=operator_user), "ssm:GetParameter", PROD)
    assert not decision.allowed and decision.reason == "implicit_deny"


def test_a_group_policy_allows_and_a_user_deny_wins(operator_user):
    team = Group.objects.create(name="app-team")
    operator_user.groups.add(team)
    policy(
        "ReadApp",
        {
            "Effect": "Allow",
            "Action": "ssm:GetParameter*",
            "Resource": "arn:aws:ssm:*:*:parameter/app/*",
        },
    ).groups.add(team)
    policy(
        "NoProd",
        {
            "Sid": "NoProd",
            "Effect": "Deny",
            "Action": "ssm:*",
            "Resource": "arn:aws:ssm:*:*:parameter/app/prod/*",
        },
    ).users.add(operator_user)
    me = Principal(user=operator_user)
    assert is_allowed(me, "ssm:GetParameter", DEV)
    decision = decide(me, "ssm:GetParameter", PROD)
    assert (decision.allowed, decision.reason, decision.policy, decision.sid) == (
        False,
        "explicit_deny",
        "NoProd",
        "NoProd",
    )


def test_a_denial_raises_is_audited_and_names_the_action(operator_user):
    with pytest.raises(AccessDenied, match="not authorized to perform ssm:PutParameter"):
        authorize(Principal(user=operator_user, source_ip="10.1.2.3"), "ssm:PutParameter", PROD)
    event = AuditEvent.objects.get()
    assert (event.outcome, event.action, event.principal) == ("denied", "ssm:PutParameter", "otto")
    assert event.resources == [PROD]
    assert event.error_code == "AccessDeniedException"


def test_conditions_see_the_username_and_whether_mfa_was_used(operator_user):
    policy(
        "NeedsMfa",
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "StringEquals": {"aws:username": "otto"},
            },
        },
    ).users.add(operator_user)
    assert not is_allowed(Principal(user=operator_user, mfa=False), "kms:Decrypt")
    assert is_allowed(Principal(user=operator_user, mfa=True), "kms:Decrypt")


def test_superusers_may_do_anything_and_inactive_users_nothing(admin_user, operator_user):
    assert is_allowed(Principal(user=admin_user), "ssm:DeleteParameter", PROD)
    admin_user.is_active = False
    assert not is_allowed(Principal(user=admin_user), "ssm:GetParameter", PROD)


def test_the_built_in_policies_are_seeded_read_only_and_work(operator_user):
    builtin_policies_sync()
    builtin_policies_sync()  # idempotent
    assert ManagedPolicy.objects.filter(builtin=True).count() == 7
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(operator_user)
    me = Principal(user=operator_user)
    assert is_allowed(me, "ssm:GetParameter", PROD)
    assert not is_allowed(me, "ssm:PutParameter", PROD)
    assert not is_allowed(me, "kms:Decrypt", "*")


def test_policies_are_read_once_per_principal(operator_user, django_assert_num_queries):
    policy("ReadApp", {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}).users.add(
        operator_user
    )
    me = Principal(user=operator_user)
    with django_assert_num_queries(1):
        for _ in range(5):
            is_allowed(me, "ssm:GetParameter", PROD)


def test_one_request_builds_its_principal_once_and_the_menu_reuses_it(rf, operator_user):
    request = rf.get("/", REMOTE_ADDR="203.0.113.9")
    request.user = operator_user
    first = principal_of(request)
    assert principal_of(request) is first
    assert principal_for(operator_user) is first
    assert first.source_ip == "203.0.113.9"


def test_a_plain_menu_principal_does_not_stand_in_for_the_request(rf, operator_user):
    plain = principal_for(operator_user)
    request = rf.get("/", REMOTE_ADDR="203.0.113.9")
    request.user = operator_user
    assert principal_of(request) is not plain
    assert principal_of(request).source_ip == "203.0.113.9"
