"""The fleet's wake-up and live-event paths, shared by every fleet service.

Both are at-most-once (DESIGN.md §2): the database row is the record, these only say "look
now", always after the commit.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from bosun_agent import protocol
from channels.layers import get_channel_layer
from django.db import transaction

from bosun.lib import realtime

# How many nodes one wake-up message names (a pushed message each): bounds its size.
WAKE_SLICE = 250

# Every `ws` process holding agent sockets listens in this group (fleet.protocol.local_agents).
AGENT_PUSH_GROUP = "agents.push"
AGENT_PUSH = "agents.push"  # {"wakes": {node_id: [pushed message, ...]}}
# Consumers map these channel-layer message types to handler methods (agent_rotate_key, ...),
# sent to the node's own group.
AGENT_ROTATE_KEY = "agent.rotate_key"
AGENT_REVOKED = "agent.revoked"

# Dashboard event name: {"node_id": ..., "status": ...}; pages refetch what they show, so the
# event carries nothing a viewer without access to the node could learn more from.
NODE_STATUS_EVENT = "fleet.node_status"


def agent_group(node_id: str) -> str:
    return f"agent.{node_id}"


def _send_to_agent(node_id: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(agent_group(node_id), message)
    except Exception:
        realtime.logger.exception("could not signal agent %s", node_id)


def wake_agents_on_commit(
    node_ids: list[str], *, pushes: dict[str, dict[str, Any]] | None = None
) -> None:
    """Tell connected agents that messages wait for them; polling covers the rest.

    `pushes`: the new message of each node, as the agent receives it: a connected agent takes
    it from the wake-up and acks it without a fetch.
    """
    ids = list(dict.fromkeys(node_ids))
    transaction.on_commit(lambda: _wake_all(ids, pushes or {}))


def _wake_all(node_ids: list[str], pushes: dict[str, dict[str, Any]]) -> None:
    """A few messages to every `ws` process, each naming a slice of the nodes; each process
    wakes the sockets it holds (fleet.protocol.local_agents)."""
    layer = get_channel_layer()
    if layer is None or not node_ids:
        return

    async def publish() -> None:
        for start in range(0, len(node_ids), WAKE_SLICE):
            wakes = {
                node_id: [pushes[node_id]] if node_id in pushes else []
                for node_id in node_ids[start : start + WAKE_SLICE]
            }
            try:
                await layer.group_send(AGENT_PUSH_GROUP, {"type": AGENT_PUSH, "wakes": wakes})
            except Exception:
                realtime.logger.exception("could not wake %d agents", len(wakes))

    async_to_sync(publish)()


def rotate_agent_key_on_commit(node_id: str) -> None:
    transaction.on_commit(lambda: _send_to_agent(node_id, {"type": AGENT_ROTATE_KEY}))


def revoke_agent_on_commit(node_id: str, message: str) -> None:
    transaction.on_commit(
        lambda: _send_to_agent(node_id, {"type": AGENT_REVOKED, "message": message})
    )


def publish_node_status_on_commit(node_id: str, status: str) -> None:
    realtime.publish_on_commit(
        realtime.BROADCAST_GROUP, NODE_STATUS_EVENT, {"node_id": node_id, "status": status}
    )


# The websocket frame types the consumer sends for each channel-layer message.
FRAME_FOR = {
    AGENT_ROTATE_KEY: protocol.WS_ROTATE_KEY,
    AGENT_REVOKED: protocol.WS_REVOKED,
}
