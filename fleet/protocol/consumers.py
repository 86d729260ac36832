"""The agent's websocket: a push wake-up, never the record (DESIGN.md §2-3).

The handshake is authenticated like any signed request (GET, empty body) and counts as being
heard from. A refusal is accepted and then closed with the protocol's close code, so the
agent can read why. Afterwards the socket only carries the server's frames: the channel-layer
messages of fleet.realtime become `{"type": "wake"}`, `{"type": "rotate-key"}` and
`{"type": "revoked"}`; the agent sends nothing but transport pings.
"""

from __future__ import annotations

import json
from typing import Any

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from fleet.protocol.auth import request_authenticate
from fleet.protocol.errors import close_code
from fleet.protocol.lifecycle import node_heartbeat
from fleet.protocol.trail import FACE_WEBSOCKET
from fleet.realtime import FRAME_FOR, agent_group


def agent_socket_open(*, path: str, headers: dict[str, str], source_ip: str) -> dict[str, Any]:
    """Authenticate a handshake and mark the node seen; returns the node id and hello frame."""
    node = request_authenticate(
        method="GET",
        path=path,
        headers=headers,
        body=b"",
        source_ip=source_ip,
        face=FACE_WEBSOCKET,
    )
    beat = node_heartbeat(node=node)
    return {
        "node_id": node.pk,
        "hello": {
            "type": protocol.WS_HELLO,
            "protocol": protocol.PROTOCOL_VERSION,
            "heartbeat_interval": beat.heartbeat_interval,
            "pending_messages": beat.pending_messages,
        },
    }


class AgentConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in self.scope.get("headers", [])
        }
        client = self.scope.get("client") or ("", 0)
        try:
            opened = await database_sync_to_async(agent_socket_open)(
                path=self.scope["path"], headers=headers, source_ip=client[0] or ""
            )
        except ProtocolError as error:
            await self.accept()
            await self.close(code=close_code(error))
            return
        self.group = agent_group(opened["node_id"])
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps(opened["hello"]))

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Agents send nothing the server acts on; the record travels over HTTPS."""

    async def _frame(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": FRAME_FOR[message["type"]]}))

    # Channels calls these for the channel-layer types "agent.wake", "agent.rotate_key", ...
    async def agent_wake(self, message: dict[str, Any]) -> None:
        await self._frame(message)

    async def agent_rotate_key(self, message: dict[str, Any]) -> None:
        await self._frame(message)

    async def agent_revoked(self, message: dict[str, Any]) -> None:
        frame = {"type": FRAME_FOR[message["type"]], "message": message.get("message", "")}
        await self.send(text_data=json.dumps(frame))
        await self.close(code=protocol.CLOSE_DEREGISTERED)
