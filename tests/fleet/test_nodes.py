"""Deregistering nodes and clearing suspected-clone alerts."""

from __future__ import annotations

from unittest import mock

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet import realtime
from fleet.exceptions import FleetValidationError, InvalidInstanceId
from fleet.models import ManagedNode, MessageState, NodeEvent, NodeMessage
from fleet.services import node_clone_alert_clear, node_deregister
from tests.factories import ManagedNodeFactory

pytestmark = pytest.mark.django_db


def test_deregistering_revokes_the_node_at_once_and_keeps_its_record(
    admin, dev_node, django_capture_on_commit_callbacks
):
    waiting = NodeMessage.objects.create(node=dev_node, kind="Ping")
    with (
        mock.patch.object(realtime, "_send_to_agent") as told_agent,
        mock.patch("bosun.lib.realtime.publish") as published,
        django_capture_on_commit_callbacks(execute=True),
    ):
        node_deregister(principal=admin, node_id=dev_node.pk)
    dev_node.refresh_from_db()
    assert dev_node.status == "Deregistered"
    assert dev_node.deregistered_at is not None
    waiting.refresh_from_db()
    assert waiting.state == MessageState.CANCELLED
    assert told_agent.call_args.args[1]["type"] == realtime.AGENT_REVOKED
    assert published.call_args.args[2] == {"node_id": dev_node.pk, "status": "Deregistered"}
    assert NodeEvent.objects.filter(node=dev_node, kind="deregistered").exists()
    assert AuditEvent.objects.get(action="ssm:DeregisterManagedInstance").outcome == "success"


def test_a_deregistered_node_cannot_be_deregistered_again(admin):
    node = ManagedNodeFactory(status="Deregistered")
    with pytest.raises(InvalidInstanceId):
        node_deregister(principal=admin, node_id=node.pk)


@pytest.mark.parametrize("persona", ["operator", "auditor", "outsider"])
def test_only_whom_policy_allows_may_deregister(persona, request, dev_node):
    with pytest.raises(AccessDenied):
        node_deregister(principal=request.getfixturevalue(persona), node_id=dev_node.pk)
    dev_node.refresh_from_db()
    assert dev_node.status == "Online"
    assert AuditEvent.objects.get(action="ssm:DeregisterManagedInstance").outcome == "denied"


def test_clearing_a_clone_alert_keeps_the_registered_fingerprint(admin):
    node = ManagedNodeFactory(clone_suspected_at=timezone.now(), clone_fingerprint="ff" * 16)
    node_clone_alert_clear(principal=admin, node_id=node.pk)
    node = ManagedNode.objects.get(pk=node.pk)
    assert node.clone_suspected_at is None and node.clone_fingerprint == ""
    assert NodeEvent.objects.get(node=node, kind="clone_alert_cleared").data == {
        "clone_fingerprint": "ff" * 16
    }
    assert AuditEvent.objects.get(action="bosun:ResolveNodeAlert").outcome == "success"


def test_there_must_be_an_alert_to_clear(admin, dev_node):
    with pytest.raises(FleetValidationError):
        node_clone_alert_clear(principal=admin, node_id=dev_node.pk)


def test_the_operator_may_not_clear_alerts(operator):
    node = ManagedNodeFactory(tags={"Env": "dev"}, clone_suspected_at=timezone.now())
    with pytest.raises(AccessDenied):
        node_clone_alert_clear(principal=operator, node_id=node.pk)
