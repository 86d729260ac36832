"""What people ask of a node's agent from the dashboard or an API: refresh facts, rotate key.

Both authorize on the node's ARN with its tags as `ssm:resourceTag/<key>` (so a policy
scoped to `Env=dev` reaches exactly the dev nodes), audit the request, and reach the agent
through the durable path (a queued message, a flag the heartbeat reports) with the websocket
as a wake-up on commit.
"""

from __future__ import annotations

from datetime import timedelta

from bosun_agent import protocol
from django.db import transaction
from django.utils import timezone

from access.authorization import Principal
from access.directory import user_arn
from fleet.codes import node_arn
from fleet.exceptions import InvalidInstanceId
from fleet.models import ManagedNode, NodeMessage, NodeStatus
from fleet.protocol.messages import message_enqueue
from fleet.realtime import rotate_agent_key_on_commit
from fleet.selectors import node_authorized
from fleet.timeline import node_event_record

# A facts refresh nobody has picked up in this long is stale news: let it expire.
REFRESH_DELIVER_WITHIN = timedelta(minutes=10)
ACTION_REFRESH_FACTS = "ssm:SendCommand"
ACTION_ROTATE_KEY = "bosun:RotateNodeKey"


def _authorized_node(principal: Principal, node_id: str, action: str) -> ManagedNode:
    """Authorize first (fleet.selectors.node_authorized), then insist on a live node."""
    node = node_authorized(principal, action, node_id)
    if node.status == NodeStatus.DEREGISTERED:
        raise InvalidInstanceId(f"{node_id} is not a registered, active managed node")
    return node


def node_refresh_facts_request(*, principal: Principal, node_id: str) -> NodeMessage:
    """Ask the node's agent for fresh host facts (the reply handler stores them)."""
    node = _authorized_node(principal, node_id, ACTION_REFRESH_FACTS)
    with transaction.atomic():
        (message,) = message_enqueue(
            node_ids=[node.pk],
            kind=protocol.MESSAGE_REFRESH_HOST_FACTS,
            payload={},
            created_by_arn=user_arn(principal.user),
            deliver_before=timezone.now() + REFRESH_DELIVER_WITHIN,
        )
        node_event_record(
            node,
            kind="facts_requested",
            summary="Host facts refresh requested",
            actor=principal.name,
        )
        principal.record(
            "bosun:RefreshHostFacts",
            resources=[node_arn(node.pk)],
            params={"message_id": str(message.message_id)},
        )
    return message


def node_request_key_rotation(*, principal: Principal, node_id: str) -> None:
    """Have the agent rotate its key now: pushed on commit, and reported by every heartbeat
    until the rotation happens (so an agent offline now still rotates when it returns)."""
    node = _authorized_node(principal, node_id, ACTION_ROTATE_KEY)
    with transaction.atomic():
        ManagedNode.objects.filter(pk=node.pk).update(key_rotation_requested_at=timezone.now())
        node_event_record(
            node,
            kind="key_rotation_requested",
            summary="Key rotation requested",
            actor=principal.name,
        )
        principal.record("bosun:RequestNodeKeyRotation", resources=[node_arn(node.pk)])
        rotate_agent_key_on_commit(node.pk)
