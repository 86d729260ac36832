"""What a registered agent does for itself: heartbeat, report facts, rotate its key, leave.

The heartbeat is the fleet's hot path (every node, every interval): it reads nothing beyond
the node the signature check already loaded, writes one UPDATE and counts waiting messages.
No audit event per heartbeat: liveness is not an action anyone answers for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bosun_agent import protocol
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet.models import ManagedNode
from fleet.protocol.errors import bad_request
from fleet.protocol.facts import node_facts_store
from fleet.protocol.messages import node_messages_waiting_count
from fleet.protocol.status import heartbeat_interval, node_mark_deregistered, node_seen_record
from fleet.protocol.trail import FACE_HTTP, agent_principal, agent_record
from fleet.protocol.validation import KNOWN_FACTS, public_key_check
from fleet.timeline import node_event_record

KEY_OVERLAP = timedelta(seconds=protocol.KEY_OVERLAP_SECONDS)
AGENT_VERSION_MAX = ManagedNode._meta.get_field("agent_version").max_length or 32


@dataclass(frozen=True)
class Heartbeat:
    status: str
    heartbeat_interval: int
    pending_messages: int
    rotate_key: bool


def node_key_due(node: ManagedNode, *, now: datetime) -> bool:
    """Rotate when an operator asked, or when the key is older than the configured age."""
    max_age = timedelta(days=int(settings.BOSUN_AGENT_KEY_MAX_AGE_DAYS))
    return node.key_rotation_requested_at is not None or node.key_rotated_at < now - max_age


def node_heartbeat(*, node: ManagedNode, agent_version: str = "") -> Heartbeat:
    """The node is alive: mark it seen (Online again if it was lost) and say what waits."""
    changes: dict[str, Any] = {}
    if agent_version and agent_version != node.agent_version:
        changes["agent_version"] = agent_version[:AGENT_VERSION_MAX]
    status = node_seen_record(node=node, changes=changes)
    now = timezone.now()
    return Heartbeat(
        status=status,
        heartbeat_interval=heartbeat_interval(),
        pending_messages=node_messages_waiting_count(node_id=node.pk, now=now),
        rotate_key=node_key_due(node, now=now),
    )


def node_facts_update(*, node: ManagedNode, facts: dict[str, Any]) -> None:
    """Store a (validated) facts report; the timeline notes which known facts changed."""
    before = ManagedNode.objects.filter(pk=node.pk).values_list("facts", flat=True).first() or {}
    changed = [key for key in (*KNOWN_FACTS, "ip_addresses") if before.get(key) != facts.get(key)]
    with transaction.atomic():
        node_facts_store(node_id=node.pk, facts=facts)
        if changed:
            node_event_record(
                node.pk,
                kind="facts",
                summary=f"Host facts changed: {', '.join(changed)}",
                data={key: facts.get(key) for key in changed},
            )


def node_key_rotate(
    *, node: ManagedNode, public_key: str, proof: str, source_ip: str = ""
) -> datetime:
    """Switch the node to a new key it proved it holds; the old one stays valid a while.

    A retry of a rotation that already happened (same new key) changes nothing, so an agent
    that lost the answer can ask again without locking itself out.
    """
    public_key_check(public_key)
    if not protocol.key_rotation_proof_valid(protocol.load_public_key(public_key), node.pk, proof):
        raise bad_request("proof: does not verify with the new public key for this node")
    if public_key == node.public_key:
        return node.key_rotated_at
    now = timezone.now()
    with transaction.atomic():
        # Conditional on the key the signature was checked against: two racing rotations
        # cannot both move the previous key.
        rotated = ManagedNode.objects.filter(pk=node.pk, public_key=node.public_key).update(
            public_key=public_key,
            previous_public_key=node.public_key,
            previous_key_valid_until=now + KEY_OVERLAP,
            key_rotated_at=now,
            key_rotation_requested_at=None,
        )
        if not rotated:
            raise bad_request("the node's key changed while this rotation was in flight; retry")
        node_event_record(node.pk, kind="key_rotated", summary="The agent rotated its key")
        agent_record(node_id=node.pk, action="bosun:RotateNodeKey", source_ip=source_ip)
    return now


def node_self_deregister(*, node: ManagedNode, source_ip: str = "") -> None:
    """The agent leaves the fleet (`bosun-agent deregister`): revoked like an operator's."""
    with transaction.atomic():
        if node_mark_deregistered(
            node_id=node.pk,
            actor=agent_principal(node.pk),
            summary="The agent deregistered itself",
        ):
            agent_record(
                node_id=node.pk,
                action="ssm:DeregisterManagedInstance",
                source_ip=source_ip,
                face=FACE_HTTP,
            )
