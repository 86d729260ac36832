"""The agent's websocket: the push channel, and a fast lane for acks and replies.

The handshake is authenticated like any signed request (GET, empty body) and counts as being
heard from. A refusal is accepted and then closed with the protocol's close code, so the
agent can read why. Afterwards:

- wake-ups (fleet.protocol.local_agents) become `{"type": "wake"}`, with the new messages
  themselves when they were pushed; the node group's channel-layer messages become
  `{"type": "rotate-key"}` and `{"type": "revoked"}`. At most once: a lost frame is only a
  delay (DESIGN.md §2);
- the agent may send the request frames `ack` and `reply` instead of their HTTP requests.
  The socket is the authenticated node's, so they carry no signature; each is answered by
  an `answer` frame with the request's id. They are recorded in batches with every other
  socket's of this process (fleet.protocol.socket_batches): at a thousand nodes this is what
  keeps a command's results cheap.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from bosun.lib.consumers import LoopOnlyDispatch
from fleet.protocol.answers import Ack, Outcome, Reply
from fleet.protocol.auth import Handshake, handshake_authenticate
from fleet.protocol.errors import bad_request, close_code, refusal
from fleet.protocol.lifecycle import node_heartbeat
from fleet.protocol.local_agents import local_agents
from fleet.protocol.socket_batches import batchers
from fleet.protocol.validation import json_object, reply_clean
from fleet.realtime import FRAME_FOR, agent_group


def agent_socket_open(handshake: Handshake) -> dict[str, Any]:
    """Authenticate a handshake and mark the node seen; returns the node id and hello frame."""
    node = handshake_authenticate(handshake)
    beat = node_heartbeat(node=node)
    return {
        "node_id": node.pk,
        "hello": {
            "type": protocol.WS_HELLO,
            "protocol": protocol.PROTOCOL_VERSION,
            "heartbeat_interval": beat.heartbeat_interval,
            "pending_messages": beat.pending_messages,
            "requests": list(protocol.WS_REQUESTS),
        },
    }


# An id the agent chose; JSON numbers past 2**53 would not survive a round trip.
_MAX_REQUEST_ID = 2**53


class FrameRefused(Exception):
    """A request frame refused before it was recorded; `request_id` when it could be read."""

    def __init__(self, request_id: int | None, error: ProtocolError) -> None:
        super().__init__(error.message)
        self.request_id = request_id
        self.error = error


def socket_request(node_id: str, text: str | None) -> tuple[int, Ack | Reply]:
    """(request id, entry) of one request frame; FrameRefused for anything else."""
    try:
        frame = _frame_object(text)
    except ProtocolError as error:
        raise FrameRefused(None, error) from None
    request_id = frame.get("id")
    if (
        not isinstance(request_id, int)
        or isinstance(request_id, bool)
        or not 0 <= request_id < _MAX_REQUEST_ID
    ):
        invalid = bad_request(f"id: an integer from 0 to {_MAX_REQUEST_ID - 1} is required")
        raise FrameRefused(None, invalid)
    try:
        return request_id, _entry(node_id, frame)
    except ProtocolError as error:
        raise FrameRefused(request_id, error) from None


def _frame_object(text: str | None) -> dict[str, Any]:
    if text is None:
        raise bad_request("frames are JSON text")
    # The limit is in bytes, as over HTTP; a character takes up to four.
    if len(text) * 4 > protocol.MAX_BODY_BYTES and (
        len(text.encode("utf-8", "surrogatepass")) > protocol.MAX_BODY_BYTES
    ):
        raise refusal(
            protocol.ERROR_TOO_LARGE, f"the frame is over {protocol.MAX_BODY_BYTES} bytes"
        )
    # The HTTP body's checks: JSON constants, nesting and NUL characters are refused alike.
    return json_object(text.encode("utf-8", "surrogatepass"), what="frame")


def _entry(node_id: str, frame: dict[str, Any]) -> Ack | Reply:
    message_id = frame.get("message_id")
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 64:
        raise bad_request("message_id: a message id is required")
    kind = frame.get("type")
    if kind == protocol.WS_ACK:
        return Ack(node_id, message_id)
    if kind == protocol.WS_REPLY:
        status, result = reply_clean(frame)
        return Reply(node_id, message_id, status, result)
    raise bad_request(f"type: one of {', '.join(protocol.WS_REQUESTS)}")


def _answer_frame(request_id: int | None, outcome: Outcome, entry: Ack | Reply) -> dict[str, Any]:
    if outcome.error is not None:
        return _error_frame(request_id, outcome.error)
    answer: dict[str, Any] = {"message_id": outcome.message_id, "state": outcome.state}
    if isinstance(entry, Reply):
        answer["accepted"] = outcome.accepted
    return {"type": protocol.WS_ANSWER, "id": request_id, "answer": answer}


def _error_frame(request_id: int | None, error: ProtocolError) -> dict[str, Any]:
    return {
        "type": protocol.WS_ANSWER,
        "id": request_id,
        "error": error.code,
        "message": error.message,
    }


class AgentConsumer(LoopOnlyDispatch, AsyncWebsocketConsumer):
    group: str | None = None
    node_id: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Requests being recorded: answered as they finish, cancelled if the socket closes.
        self._requests: set[asyncio.Task[None]] = set()
        self._wakes: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        handshake = Handshake.of(self.scope)
        # Before the handshake reads the pending count: what is committed after that read is
        # pushed to this process.
        await local_agents().listening()
        try:
            opened = await database_sync_to_async(agent_socket_open)(handshake)
        except ProtocolError as error:
            await self.accept()
            await self.close(code=close_code(error))
            return
        self.node_id = opened["node_id"]
        local_agents().add(self.node_id, self._woken)
        self.group = agent_group(opened["node_id"])
        await local_agents().group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps(opened["hello"]))

    async def disconnect(self, code: int) -> None:
        if self.node_id is not None:
            local_agents().discard(self.node_id, self._woken)
        for task in self._wakes:
            task.cancel()
        if self.group is not None:
            await local_agents().group_discard(self.group, self.channel_name)
        # An entry already in a batch is recorded all the same; only its answer is lost, and
        # the agent sends it again (acks and replies are idempotent).
        for task in self._requests:
            task.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.node_id is None:
            return  # a refused handshake, closing
        try:
            request_id, entry = socket_request(self.node_id, text_data)
        except FrameRefused as refused:
            await self._send_json(_error_frame(refused.request_id, refused.error))
            return
        if len(self._requests) >= protocol.MAX_SOCKET_REQUESTS:
            busy = refusal(
                protocol.ERROR_SOCKET_BUSY,
                f"more than {protocol.MAX_SOCKET_REQUESTS} requests unanswered on this socket; "
                "send it over HTTP",
            )
            await self._send_json(_error_frame(request_id, busy))
            return
        # Recorded in the background: this consumer keeps reading frames (and wake-ups).
        task = asyncio.create_task(self._record(request_id, entry))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _record(self, request_id: int, entry: Ack | Reply) -> None:
        group = batchers()
        if isinstance(entry, Ack):
            outcome = await group.acks.submit(entry)
        else:
            outcome = await group.replies.submit(entry)
        await self._send_json(_answer_frame(request_id, outcome, entry))

    async def _send_json(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def _frame(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": FRAME_FOR[message["type"]]}))

    def _woken(self, messages: list[dict[str, Any]]) -> None:
        frame: dict[str, Any] = {"type": protocol.WS_WAKE}
        if messages:
            frame["messages"] = messages
        task = asyncio.get_running_loop().create_task(self._send_json(frame))
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    # Channels calls these for the channel-layer types "agent.rotate_key", "agent.revoked".

    async def agent_rotate_key(self, message: dict[str, Any]) -> None:
        await self._frame(message)

    async def agent_revoked(self, message: dict[str, Any]) -> None:
        frame = {"type": FRAME_FOR[message["type"]], "message": message.get("message", "")}
        await self.send(text_data=json.dumps(frame))
        await self.close(code=protocol.CLOSE_DEREGISTERED)
