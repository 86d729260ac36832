"""What people do to a managed node itself: deregister it, dismiss its clone alert."""

from __future__ import annotations

from django.db import transaction

from access.authorization import Principal
from fleet.codes import node_arn
from fleet.exceptions import FleetValidationError, InvalidInstanceId
from fleet.models import ManagedNode, NodeStatus
from fleet.protocol.status import node_mark_deregistered
from fleet.realtime import publish_node_status_on_commit
from fleet.selectors import node_authorized
from fleet.services.common import audit
from fleet.timeline import node_event_record

DEREGISTER = "ssm:DeregisterManagedInstance"
RESOLVE_ALERT = "bosun:ResolveNodeAlert"


def node_deregister(*, principal: Principal, node_id: str) -> None:
    """Deregister a node: revoked at once (its agent is told and every later request refused),
    its unfinished messages cancelled; its row, tags and timeline stay for the record."""
    node = node_authorized(principal, DEREGISTER, node_id)
    if node.status == NodeStatus.DEREGISTERED:
        raise InvalidInstanceId(f"{node_id} is already deregistered.")
    with transaction.atomic():
        if not node_mark_deregistered(
            node_id=node.pk, actor=principal.name, summary=f"Deregistered by {principal.name}"
        ):
            raise InvalidInstanceId(f"{node_id} is already deregistered.")
        audit(principal, DEREGISTER, [node_arn(node.pk)], InstanceId=node.pk)


def node_clone_alert_clear(*, principal: Principal, node_id: str) -> ManagedNode:
    """Dismiss a suspected-clone alert once someone has checked the machines.

    The registered fingerprint stays the trusted one: a machine that really is a copy keeps
    being refused, and raises the alert again when it next calls.
    """
    node = node_authorized(principal, RESOLVE_ALERT, node_id)
    if node.clone_suspected_at is None:
        raise FleetValidationError(f"{node_id} has no suspected-clone alert to clear.")
    with transaction.atomic():
        seen_fingerprint = node.clone_fingerprint
        ManagedNode.objects.filter(pk=node.pk).update(clone_suspected_at=None, clone_fingerprint="")
        node_event_record(
            node,
            kind="clone_alert_cleared",
            summary=f"Suspected-clone alert cleared by {principal.name}",
            actor=principal.name,
            data={"clone_fingerprint": seen_fingerprint},
        )
        audit(principal, RESOLVE_ALERT, [node_arn(node.pk)], InstanceId=node.pk)
        publish_node_status_on_commit(node.pk, node.status)
    node.refresh_from_db()
    return node
