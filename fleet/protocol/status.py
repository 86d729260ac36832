"""A node's status: Online while it is heard from, ConnectionLost when it falls silent,
Deregistered when revoked. Each change is a timeline event and a live dashboard event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet.models import ManagedNode, NodeEvent, NodeStatus
from fleet.protocol.messages import node_messages_cancel
from fleet.realtime import publish_node_status_on_commit, revoke_agent_on_commit
from fleet.timeline import node_event_record

# Two and a half intervals: one late heartbeat (jitter, a slow network) is no outage.
SILENCE_FACTOR = 2.5
SWEEP_BATCH = 1000


def heartbeat_interval() -> int:
    return int(settings.BOSUN_AGENT_HEARTBEAT_SECONDS)


def connection_lost_after() -> timedelta:
    return timedelta(seconds=SILENCE_FACTOR * heartbeat_interval())


def node_seen_record(*, node: ManagedNode, changes: dict[str, Any] | None = None) -> str:
    """The node was heard from now: one UPDATE, unless it comes back from ConnectionLost."""
    now = timezone.now()
    fields = {"last_seen_at": now, **(changes or {})}
    if node.status != NodeStatus.CONNECTION_LOST:
        ManagedNode.objects.filter(pk=node.pk).update(**fields)
        return node.status
    with transaction.atomic():
        back = ManagedNode.objects.filter(pk=node.pk, status=NodeStatus.CONNECTION_LOST).update(
            status=NodeStatus.ONLINE, status_changed_at=now, **fields
        )
        if not back:
            ManagedNode.objects.filter(pk=node.pk).update(**fields)
            return node.status
        node_event_record(node.pk, kind="status", summary="Online again: the agent is heard from")
        publish_node_status_on_commit(node.pk, NodeStatus.ONLINE)
    node.status = NodeStatus.ONLINE
    return NodeStatus.ONLINE


def nodes_connection_lost_sweep(*, now: datetime | None = None) -> list[str]:
    """Mark Online nodes silent for too long ConnectionLost, in batches; returns their ids."""
    now = now or timezone.now()
    cutoff = now - connection_lost_after()
    lost: list[str] = []
    while True:
        with transaction.atomic():
            # Locked rows (a heartbeat mid-update) are skipped: the next sweep sees them.
            ids = list(
                ManagedNode.objects.select_for_update(skip_locked=True)
                .filter(status=NodeStatus.ONLINE, last_seen_at__lt=cutoff)
                .values_list("pk", flat=True)[:SWEEP_BATCH]
            )
            if not ids:
                return lost
            ManagedNode.objects.filter(pk__in=ids).update(
                status=NodeStatus.CONNECTION_LOST, status_changed_at=now
            )
            NodeEvent.objects.bulk_create(
                NodeEvent(
                    node_id=node_id,
                    at=now,
                    kind="status",
                    summary="Connection lost: no heartbeat for "
                    f"{int(connection_lost_after().total_seconds())} s",
                )
                for node_id in ids
            )
            for node_id in ids:
                publish_node_status_on_commit(node_id, NodeStatus.CONNECTION_LOST)
        lost.extend(ids)
        if len(ids) < SWEEP_BATCH:
            return lost


def node_mark_deregistered(*, node_id: str, actor: str, summary: str) -> bool:
    """Revoke a node at once: its status, its unfinished messages, its open websocket.

    Shared by the agent's own deregistration and an operator's; the caller authorizes and
    audits, and owns the transaction. False when the node was already deregistered.
    """
    now = timezone.now()
    changed = (
        ManagedNode.objects.filter(pk=node_id)
        .exclude(status=NodeStatus.DEREGISTERED)
        .update(status=NodeStatus.DEREGISTERED, status_changed_at=now, deregistered_at=now)
    )
    if not changed:
        return False
    node_messages_cancel(node_id=node_id)
    node_event_record(node_id, kind="deregistered", summary=summary, actor=actor)
    revoke_agent_on_commit(node_id, "this node was deregistered; register it again to manage it")
    publish_node_status_on_commit(node_id, NodeStatus.DEREGISTERED)
    return True
