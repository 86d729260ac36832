"""Hybrid activations: creation rules, the code shown once, deletion, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet import codes
from fleet.exceptions import FleetValidationError, InvalidActivationId
from fleet.models import Activation
from fleet.services import activation_create, activation_delete
from tests.factories import ActivationFactory, ManagedNodeFactory

pytestmark = pytest.mark.django_db


def test_an_admin_creates_an_activation_whose_code_is_kept_only_as_a_hash(admin):
    activation, code = activation_create(
        principal=admin,
        description="Lab servers",
        default_instance_name="lab",
        registration_limit=20,
        tags={"Env": "dev"},
    )
    stored = Activation.objects.get(pk=activation.pk)
    assert stored.code_hash == codes.activation_code_hash(code)
    assert code not in stored.code_hash
    assert stored.registration_limit == 20
    assert stored.node_tags == [{"Key": "Env", "Value": "dev"}]
    assert stored.created_by == admin.user


def test_an_activation_expires_after_24_hours_unless_told_otherwise(admin):
    activation, _ = activation_create(principal=admin)
    lifetime = activation.expires_at - timezone.now()
    assert timedelta(hours=23, minutes=59) < lifetime <= timedelta(hours=24)


def test_creating_an_activation_is_audited_without_the_code(admin):
    activation, code = activation_create(principal=admin, description="audited")
    event = AuditEvent.objects.get(action="ssm:CreateActivation")
    assert event.outcome == "success"
    assert event.params["ActivationId"] == activation.id
    assert code not in event.params_json


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"registration_limit": 0}, "give 1 to 1000"),
        ({"registration_limit": 1001}, "give 1 to 1000"),
        ({"description": "x" * 257}, "at most 256"),
        ({"default_instance_name": "n" * 257}, "at most 256"),
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "in the future"),
        ({"expires_at": timezone.now() + timedelta(days=31)}, "within 30 days"),
        ({"tags": {"aws:owner": "me"}}, "reserved prefix"),
        ({"tags": {"k" * 129: "v"}}, "1-128 characters"),
        ({"tags": {"Env": "v" * 257}}, "at most 256 characters"),
        ({"tags": {"Env": "dev;rm"}}, "may hold only"),
        ({"tags": {f"k{i}": "v" for i in range(51)}}, "at most 50"),
    ],
)
def test_invalid_activations_are_refused_with_a_clear_message(admin, arguments, message):
    with pytest.raises(FleetValidationError) as refused:
        activation_create(principal=admin, **arguments)
    assert message in refused.value.message
    assert not Activation.objects.exists()


@pytest.mark.parametrize("persona", ["operator", "auditor", "outsider"])
def test_only_whom_policy_allows_may_create_one_and_a_denial_is_audited(persona, request):
    principal = request.getfixturevalue(persona)
    with pytest.raises(AccessDenied):
        activation_create(principal=principal)
    assert not Activation.objects.exists()
    assert AuditEvent.objects.get(action="ssm:CreateActivation").outcome == "denied"


def test_deleting_an_activation_leaves_its_nodes_registered(admin):
    activation = ActivationFactory()
    node = ManagedNodeFactory(activation_id=activation.id)
    activation_delete(principal=admin, activation_id=activation.id)
    assert not Activation.objects.exists()
    node.refresh_from_db()
    assert node.status == "Online"
    assert AuditEvent.objects.get(action="ssm:DeleteActivation").outcome == "success"


def test_deleting_an_unknown_activation_says_so(admin):
    with pytest.raises(InvalidActivationId):
        activation_delete(principal=admin, activation_id="no-such-activation")


def test_the_operator_may_not_delete_activations(operator):
    activation = ActivationFactory()
    with pytest.raises(AccessDenied):
        activation_delete(principal=operator, activation_id=activation.id)
    assert Activation.objects.filter(pk=activation.pk).exists()
