"""Messages pushed in the wake-up, and acks and replies sent over the agent's websocket.

Over the real ASGI application (WebsocketCommunicator): the push after commit, the `answer`
frames of `ack` and `reply` request frames, their refusals (each answered, the socket kept
open), the limit of unanswered requests, and the batches the process records them in.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from bosun_agent import protocol
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.utils import timezone

from bosun.asgi import application
from fleet.models import MessageState, NodeMessage
from fleet.protocol import answers, socket_batches
from fleet.protocol.messages import MAX_PUSHED_PAYLOAD_BYTES, message_enqueue, message_wire
from tests.fleet.protocol.agents import Agent

pytestmark = pytest.mark.django_db(transaction=True)

BAD = protocol.ERROR_BAD_REQUEST
TOO_LARGE = protocol.ERROR_TOO_LARGE
NOT_FOUND = protocol.ERROR_NOT_FOUND


# --- Helpers --------------------------------------------------------------------------------


def enqueue(agent: Agent, payload: dict[str, Any] | None = None, **fields: Any) -> NodeMessage:
    """One Ping for the agent, committed (so its wake-up, if any, is sent)."""
    with transaction.atomic():
        (message,) = message_enqueue(
            node_ids=[agent.node_id],
            kind=protocol.MESSAGE_PING,
            payload={"n": 1} if payload is None else payload,
            **fields,
        )
    return message


def stored(message: NodeMessage) -> NodeMessage:
    return NodeMessage.objects.get(pk=message.pk)


def ack(request_id: Any, message: NodeMessage | str) -> dict[str, Any]:
    message_id = message if isinstance(message, str) else str(message.message_id)
    return {"type": protocol.WS_ACK, "id": request_id, "message_id": message_id}


def reply(
    request_id: Any,
    message: NodeMessage | str,
    status: str = protocol.REPLY_SUCCESS,
    result: Any = None,
) -> dict[str, Any]:
    message_id = message if isinstance(message, str) else str(message.message_id)
    return {
        "type": protocol.WS_REPLY,
        "id": request_id,
        "message_id": message_id,
        "status": status,
        "result": {"pong": True} if result is None else result,
    }


def answered(request_id: int, message: NodeMessage, state: str, **more: Any) -> dict[str, Any]:
    return {
        "type": protocol.WS_ANSWER,
        "id": request_id,
        "answer": {"message_id": str(message.message_id), "state": state, **more},
    }


def socket_of(agent: Agent) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, protocol.WEBSOCKET_PATH, headers=agent.socket_headers()
    )


@asynccontextmanager
async def connected(agent: Agent) -> AsyncIterator[WebsocketCommunicator]:
    """The agent's open socket, its hello read."""
    socket = socket_of(agent)
    accepted, _ = await socket.connect()
    assert accepted
    hello = await socket.receive_json_from(timeout=3)
    assert hello["type"] == protocol.WS_HELLO
    try:
        yield socket
    finally:
        await socket.disconnect()


async def ask(socket: WebsocketCommunicator, frame: dict[str, Any]) -> dict[str, Any]:
    await socket.send_json_to(frame)
    return await socket.receive_json_from(timeout=5)


def is_refusal(frame: dict[str, Any], request_id: int | None, code: str) -> bool:
    return (
        frame.keys() == {"type", "id", "error", "message"}
        and frame["type"] == protocol.WS_ANSWER
        and frame["id"] == request_id
        and frame["error"] == code
        and isinstance(frame["message"], str)
        and frame["message"] != ""
    )


@pytest.fixture
def other(activation) -> Agent:
    """A second registered agent."""
    second = Agent()
    assert second.register(*activation).status_code == 201
    return second


class HeldBatches:
    """The batches this test's batcher records: the entries of each, and a gate (on the
    event loop) that holds them before the database until the test opens it."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()  # bound to the scenario's loop at its first use
        self.gate.set()

    def wrap(self, record):
        real = database_sync_to_async(record)

        async def held(entries):
            self.calls.append([entry.message_id for entry in entries])
            await self.gate.wait()
            return await real(entries)

        return held


@pytest.fixture
def held_batches(monkeypatch) -> HeldBatches:
    held = HeldBatches()
    monkeypatch.setattr(socket_batches, "database_sync_to_async", held.wrap)
    return held


class BlockedAcks:
    """The process's ack recording, spied on and blocked in its thread while `gate` is
    clear: a batch that takes long in the database."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()

    def record(self, entries):
        self.calls.append([entry.message_id for entry in entries])
        assert self.gate.wait(10), "the test never opened the gate"
        return answers.messages_ack(entries)


@pytest.fixture
def blocked_acks(monkeypatch):
    """Each batcher is made per event loop at its first use, so the module's function
    patched before the scenario's loop starts is the one its batcher records with."""
    blocked = BlockedAcks()
    monkeypatch.setattr(socket_batches, "messages_ack", blocked.record)
    yield blocked
    blocked.gate.set()


async def eventually(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


# --- The hello and the push -----------------------------------------------------------------


def test_the_hello_lists_the_request_frames_the_server_takes(agent):
    async def scenario():
        socket = socket_of(agent)
        await socket.connect()
        hello = await socket.receive_json_from(timeout=3)
        await socket.disconnect()
        return hello

    assert async_to_sync(scenario)()["requests"] == ["ack", "reply"]


def test_a_committed_message_is_pushed_in_the_wake_up_as_a_fetch_would_deliver_it(agent):
    async def scenario():
        async with connected(agent) as socket:
            message = await asyncio.to_thread(enqueue, agent, {"script": ["echo hi"]})
            wake = await socket.receive_json_from(timeout=3)
            return message, wake

    message, wake = async_to_sync(scenario)()
    assert wake.keys() == {"type", "messages"} and wake["type"] == protocol.WS_WAKE
    [pushed] = wake["messages"]
    assert pushed.keys() == message_wire(stored(message)).keys()
    # How a push counts as a delivery is the server's to say; the rest is the message.
    assert isinstance(pushed.pop("delivery_count"), int)
    assert pushed == {
        "message_id": str(message.message_id),
        "kind": protocol.MESSAGE_PING,
        "payload": {"script": ["echo hi"]},
        "created_at": int(message.created_at.timestamp()),
        "lease_seconds": protocol.LEASE_SECONDS,
    }
    # Pushing is not leasing: a fetch would still deliver it.
    assert stored(message).state == MessageState.PENDING


def test_a_rolled_back_enqueue_wakes_nobody(agent):
    def enqueue_and_roll_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            message_enqueue(node_ids=[agent.node_id], kind=protocol.MESSAGE_PING, payload={})
            raise RuntimeError("rolled back")

    async def scenario():
        async with connected(agent) as socket:
            await asyncio.to_thread(enqueue_and_roll_back)
            return await socket.receive_nothing(timeout=0.5)

    assert async_to_sync(scenario)()
    assert not NodeMessage.objects.exists()


def test_each_connected_node_is_pushed_its_own_message(agent, other):
    def enqueue_both():
        with transaction.atomic():
            return message_enqueue(
                node_ids=[agent.node_id, other.node_id], kind=protocol.MESSAGE_PING, payload={}
            )

    async def scenario():
        async with connected(agent) as mine, connected(other) as theirs:
            created = await asyncio.to_thread(enqueue_both)
            return (
                created,
                await mine.receive_json_from(timeout=3),
                await theirs.receive_json_from(timeout=3),
                await mine.receive_nothing(timeout=0.3),
            )

    created, mine, theirs, quiet = async_to_sync(scenario)()
    by_node = {message.node_id: str(message.message_id) for message in created}
    assert [m["message_id"] for m in mine["messages"]] == [by_node[agent.node_id]]
    assert [m["message_id"] for m in theirs["messages"]] == [by_node[other.node_id]]
    assert quiet


def padded(size: int) -> dict[str, str]:
    """A payload whose compact JSON is `size` characters long."""
    payload = {"blob": ""}
    payload["blob"] = "x" * (size - len(json.dumps(payload, separators=(",", ":"))))
    assert len(json.dumps(payload, separators=(",", ":"))) == size
    return payload


def test_a_payload_at_the_push_limit_is_pushed_and_one_over_it_is_not(agent):
    async def scenario():
        async with connected(agent) as socket:
            at_limit = await asyncio.to_thread(enqueue, agent, padded(MAX_PUSHED_PAYLOAD_BYTES))
            pushed = await socket.receive_json_from(timeout=3)
            await asyncio.to_thread(enqueue, agent, padded(MAX_PUSHED_PAYLOAD_BYTES + 1))
            plain = await socket.receive_json_from(timeout=3)
            return at_limit, pushed, plain

    at_limit, pushed, plain = async_to_sync(scenario)()
    assert [m["message_id"] for m in pushed["messages"]] == [str(at_limit.message_id)]
    assert plain == {"type": protocol.WS_WAKE}  # the agent fetches the big one


def test_a_pushed_message_is_acked_and_replied_to_over_the_socket_without_a_fetch(agent):
    async def scenario():
        async with connected(agent) as socket:
            await asyncio.to_thread(enqueue, agent)
            wake = await socket.receive_json_from(timeout=3)
            [pushed] = wake["messages"]
            acked = await ask(socket, ack(1, pushed["message_id"]))
            replied = await ask(socket, reply(2, pushed["message_id"]))
            return pushed, acked, replied

    pushed, acked, replied = async_to_sync(scenario)()
    message = NodeMessage.objects.get()
    assert pushed["message_id"] == str(message.message_id)
    assert acked == answered(1, message, "acked")
    assert replied == answered(2, message, "succeeded", accepted=True)
    assert (message.state, message.result) == (MessageState.SUCCEEDED, {"pong": True})


# --- Acks and replies -----------------------------------------------------------------------


def test_an_ack_over_the_socket_acks_the_message_and_a_repeat_changes_nothing(agent):
    message = enqueue(agent)

    async def scenario():
        async with connected(agent) as socket:
            first = await ask(socket, ack(0, message))
            acked_at = (await asyncio.to_thread(stored, message)).acked_at
            again = await ask(socket, ack(2**53 - 1, message))
            return first, acked_at, again

    first, acked_at, again = async_to_sync(scenario)()
    assert first == answered(0, message, "acked")
    assert again == answered(2**53 - 1, message, "acked")
    row = stored(message)
    assert row.state == MessageState.ACKED
    assert row.acked_at == acked_at is not None


def test_a_reply_is_answered_with_its_acceptance_and_the_first_reply_wins(agent):
    message = enqueue(agent)

    async def scenario():
        async with connected(agent) as socket:
            await ask(socket, ack(1, message))
            first = await ask(socket, reply(2, message, "Success", {"pong": True}))
            second = await ask(socket, reply(3, message, "Failed", {"error": "late"}))
            return first, second

    first, second = async_to_sync(scenario)()
    assert first == answered(2, message, "succeeded", accepted=True)
    assert second == answered(3, message, "succeeded", accepted=False)
    row = stored(message)
    assert (row.state, row.result) == (MessageState.SUCCEEDED, {"pong": True})
    assert row.completed_at is not None and row.acked_at <= row.completed_at


def test_a_failed_reply_without_a_result_fails_the_message_with_an_empty_result(agent):
    message = enqueue(agent)
    frame = {"type": "reply", "id": 4, "message_id": str(message.message_id), "status": "Failed"}

    async def scenario():
        async with connected(agent) as socket:
            return await ask(socket, frame)

    assert async_to_sync(scenario)() == answered(4, message, "failed", accepted=True)
    row = stored(message)
    assert (row.state, row.result) == (MessageState.FAILED, {})
    # Replied without an ack: the reply is also the ack.
    assert row.acked_at == row.completed_at


def test_an_ack_after_the_reply_answers_the_terminal_state(agent):
    message = enqueue(agent)

    async def scenario():
        async with connected(agent) as socket:
            await ask(socket, reply(1, message))
            return await ask(socket, ack(2, message))

    assert async_to_sync(scenario)() == answered(2, message, "succeeded")


def test_another_nodes_message_is_as_unknown_as_a_missing_one(agent, other):
    theirs = enqueue(other)
    missing = str(uuid.uuid4())

    async def scenario():
        async with connected(agent) as socket:
            return [
                await ask(socket, ack(1, theirs)),
                await ask(socket, reply(2, theirs)),
                await ask(socket, ack(3, missing)),
                await ask(socket, reply(4, "not-a-uuid")),
            ]

    frames = async_to_sync(scenario)()
    for request_id, frame in enumerate(frames, 1):
        assert is_refusal(frame, request_id, NOT_FOUND), frame
    # The same words as for a missing message: the answer tells nothing about other nodes.
    assert frames[0]["message"] == frames[2]["message"].replace(missing, str(theirs.message_id))
    row = stored(theirs)
    assert (row.state, row.acked_at, row.result) == (MessageState.PENDING, None, None)


@pytest.mark.parametrize("state", [MessageState.CANCELLED, MessageState.EXPIRED])
def test_the_ack_of_a_withdrawn_message_is_refused_so_the_agent_does_not_run_it(agent, state):
    message = enqueue(agent)
    NodeMessage.objects.filter(pk=message.pk).update(state=state, completed_at=timezone.now())

    async def scenario():
        async with connected(agent) as socket:
            return await ask(socket, ack(5, message)), await ask(socket, reply(6, message))

    refused, late_reply = async_to_sync(scenario)()
    assert is_refusal(refused, 5, NOT_FOUND)
    assert "withdrawn" in refused["message"] and state in refused["message"]
    # A reply to it is heard and not accepted: the withdrawal stands.
    assert late_reply == answered(6, message, state, accepted=False)
    assert stored(message).state == state


def test_an_ack_past_the_delivery_deadline_expires_the_message_and_is_refused(agent):
    late = enqueue(agent, deliver_before=timezone.now() + timedelta(seconds=30))
    on_time = enqueue(agent, deliver_before=timezone.now() + timedelta(minutes=10))
    NodeMessage.objects.filter(pk=late.pk).update(
        deliver_before=timezone.now() - timedelta(seconds=1)
    )

    async def scenario():
        async with connected(agent) as socket:
            return await ask(socket, ack(1, late)), await ask(socket, ack(2, on_time))

    refused, accepted = async_to_sync(scenario)()
    assert is_refusal(refused, 1, NOT_FOUND)
    assert "expired" in refused["message"]
    assert accepted == answered(2, on_time, "acked")
    row = stored(late)
    assert (row.state, row.acked_at) == (MessageState.EXPIRED, None)
    assert row.completed_at is not None


# --- Malformed frames -----------------------------------------------------------------------

# Replaced by the target message's id; as long as one, so sizes come out exact.
MESSAGE = "{the-id-of-the-target-message-here!}"
assert len(MESSAGE) == len(str(uuid.uuid4()))


def text(frame: Any) -> dict[str, Any]:
    return {"text_data": json.dumps(frame)}


def oversized(size: int) -> str:
    """An ack frame of `size` characters, valid but for its size."""
    start = '{"type":"ack","id":9,"message_id":"' + MESSAGE + '","pad":"'
    return start + "a" * (size - len(start) - 2) + '"}'


MALFORMED = {
    "binary": (
        {"bytes_data": b'{"type":"ack","id":1,"message_id":"' + MESSAGE.encode() + b'"}'},
        None,
        BAD,
    ),
    "not JSON": ({"text_data": "{'type': 'ack', 'id': 1}"}, None, BAD),
    "an array": (text([{"type": "ack", "id": 1, "message_id": MESSAGE}]), None, BAD),
    "a string": (text("ack"), None, BAD),
    "null": ({"text_data": "null"}, None, BAD),
    "no id": (text({"type": "ack", "message_id": MESSAGE}), None, BAD),
    "null id": (text(ack(None, MESSAGE)), None, BAD),
    "negative id": (text(ack(-1, MESSAGE)), None, BAD),
    "boolean id": (text(ack(True, MESSAGE)), None, BAD),
    "huge id": (text(ack(2**53, MESSAGE)), None, BAD),
    "float id": (text(ack(1.0, MESSAGE)), None, BAD),
    "string id": (text(ack("1", MESSAGE)), None, BAD),
    "unknown type": (text({"type": "nack", "id": 5, "message_id": MESSAGE}), 5, BAD),
    "no type": (text({"id": 5, "message_id": MESSAGE}), 5, BAD),
    "a server frame type": (text({"type": "answer", "id": 5, "message_id": MESSAGE}), 5, BAD),
    "unknown status": (text(reply(6, MESSAGE, status="Done")), 6, BAD),
    "lowercase status": (text(reply(6, MESSAGE, status="success")), 6, BAD),
    "no status": (text({"type": "reply", "id": 6, "message_id": MESSAGE}), 6, BAD),
    "result an array": (text(reply(7, MESSAGE, result=[1])), 7, BAD),
    "result a string": (text(reply(7, MESSAGE, result="done")), 7, BAD),
    "no message id": (text({"type": "ack", "id": 8}), 8, BAD),
    "empty message id": (text(ack(8, "")), 8, BAD),
    "message id too long": (text(ack(8, "a" * 65)), 8, BAD),
    "numeric message id": (text({"type": "ack", "id": 8, "message_id": 42}), 8, BAD),
    "over the size limit": ({"text_data": oversized(protocol.MAX_BODY_BYTES + 1)}, None, TOO_LARGE),
}


def filled(sent: dict[str, Any], message: NodeMessage) -> dict[str, Any]:
    message_id = str(message.message_id)
    return {
        key: value.replace(MESSAGE, message_id)
        if isinstance(value, str)
        else value.replace(MESSAGE.encode(), message_id.encode())
        for key, value in sent.items()
    }


@pytest.mark.parametrize(("sent", "request_id", "code"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_frame_is_answered_and_the_socket_stays_usable(agent, sent, request_id, code):
    target, probe = enqueue(agent), enqueue(agent)

    async def scenario():
        async with connected(agent) as socket:
            await socket.send_to(**filled(sent, target))
            refused = await socket.receive_json_from(timeout=3)
            after = await ask(socket, ack(10, probe))
            return refused, after

    refused, after = async_to_sync(scenario)()
    assert is_refusal(refused, request_id, code), refused
    assert after == answered(10, probe, "acked")
    assert stored(target).state == MessageState.PENDING  # the refused frame recorded nothing


def test_a_frame_of_exactly_the_size_limit_is_taken(agent):
    message = enqueue(agent)
    frame = oversized(protocol.MAX_BODY_BYTES).replace(MESSAGE, str(message.message_id))
    assert len(frame) == protocol.MAX_BODY_BYTES

    async def scenario():
        async with connected(agent) as socket:
            await socket.send_to(text_data=frame)
            return await socket.receive_json_from(timeout=5)

    assert async_to_sync(scenario)() == answered(9, message, "acked")


def test_a_deeply_nested_frame_is_a_bad_request_and_the_socket_stays_usable(agent):
    probe = enqueue(agent)

    async def scenario():
        async with connected(agent) as socket:
            await socket.send_to(text_data="[" * 100_000)
            refused = await socket.receive_json_from(timeout=3)
            return refused, await ask(socket, ack(2, probe))

    refused, after = async_to_sync(scenario)()
    assert is_refusal(refused, None, BAD)
    assert after == answered(2, probe, "acked")


@pytest.mark.parametrize(
    "result_text", ['{"load": NaN}', '{"load": Infinity}', '{"out": "a\\u0000b"}']
)
def test_a_reply_whose_result_no_database_can_store_is_a_bad_request(agent, result_text):
    message = enqueue(agent)
    frame = (
        f'{{"type":"reply","id":3,"message_id":"{message.message_id}",'
        f'"status":"Success","result":{result_text}}}'
    )

    async def scenario():
        async with connected(agent) as socket:
            await socket.send_to(text_data=frame)
            return await socket.receive_json_from(timeout=5)

    answer = async_to_sync(scenario)()
    # Refused while parsing (the id unread) or after: either way a BadRequest.
    assert is_refusal(answer, answer["id"], BAD) and answer["id"] in (None, 3), answer
    assert stored(message).state == MessageState.PENDING


def test_the_size_limit_counts_the_bytes_of_the_frame(agent):
    message = enqueue(agent)
    start = f'{{"type":"ack","id":9,"message_id":"{message.message_id}","pad":"'
    frame = start + "é" * ((protocol.MAX_BODY_BYTES - len(start)) // 2 + 10) + '"}'
    assert len(frame) < protocol.MAX_BODY_BYTES < len(frame.encode())

    async def scenario():
        async with connected(agent) as socket:
            await socket.send_to(text_data=frame)
            return await socket.receive_json_from(timeout=5)

    assert is_refusal(async_to_sync(scenario)(), None, TOO_LARGE)


# --- Unanswered requests and batches --------------------------------------------------------


def test_requests_past_the_limit_of_unanswered_ones_are_refused(agent, monkeypatch, held_batches):
    monkeypatch.setattr(protocol, "MAX_SOCKET_REQUESTS", 2)
    first, second, third, fourth = (enqueue(agent) for _ in range(4))

    async def scenario():
        async with connected(agent) as socket:
            held_batches.gate.clear()
            try:
                await socket.send_json_to(ack(1, first))
                await socket.send_json_to(ack(2, second))
                await socket.send_json_to(ack(3, third))
                refused = await socket.receive_json_from(timeout=3)
            finally:
                held_batches.gate.set()
            pending = [await socket.receive_json_from(timeout=5) for _ in range(2)]
            # Answered, they no longer count: the socket takes requests again.
            later = await ask(socket, ack(4, fourth))
            return refused, pending, later

    refused, pending, later = async_to_sync(scenario)()
    # BadRequest, or the protocol's own code for it once it has one.
    assert is_refusal(refused, 3, getattr(protocol, "ERROR_SOCKET_BUSY", BAD))
    assert "unanswered" in refused["message"]
    assert sorted(pending, key=lambda frame: frame["id"]) == [
        answered(1, first, "acked"),
        answered(2, second, "acked"),
    ]
    assert later == answered(4, fourth, "acked")
    assert stored(third).state == MessageState.PENDING  # refused: never recorded
    assert str(third.message_id) not in {m for call in held_batches.calls for m in call}


def test_the_limit_counts_each_socket_apart(agent, other, monkeypatch, held_batches):
    monkeypatch.setattr(protocol, "MAX_SOCKET_REQUESTS", 1)
    mine, theirs = enqueue(agent), enqueue(other)

    async def scenario():
        async with connected(agent) as my_socket, connected(other) as their_socket:
            held_batches.gate.clear()
            try:
                await my_socket.send_json_to(ack(1, mine))
                await eventually(lambda: len(held_batches.calls) == 1)
                await their_socket.send_json_to(ack(1, theirs))
                quiet = await their_socket.receive_nothing(timeout=0.3)  # not refused
            finally:
                held_batches.gate.set()
            return (
                quiet,
                await my_socket.receive_json_from(timeout=5),
                await their_socket.receive_json_from(timeout=5),
            )

    quiet, my_answer, their_answer = async_to_sync(scenario)()
    assert quiet
    assert my_answer == answered(1, mine, "acked")
    assert their_answer == answered(1, theirs, "acked")


def test_acks_of_several_sockets_arriving_during_a_batch_make_the_next_batch(
    agent, other, held_batches
):
    """While a batch is in the database the next one gathers, from every socket of the
    process: it is recorded in one call (one transaction)."""
    first, second = enqueue(agent), enqueue(agent)
    theirs = enqueue(other)

    async def scenario():
        async with connected(agent) as mine, connected(other) as their_socket:
            held_batches.gate.clear()
            try:
                await mine.send_json_to(ack(1, first))
                await eventually(lambda: len(held_batches.calls) == 1)
                await mine.send_json_to(ack(2, second))
                await their_socket.send_json_to(ack(7, theirs))
                acks = socket_batches.batchers().acks
                await eventually(lambda: len(acks._waiting) == 2)
            finally:
                held_batches.gate.set()
            mine_frames = [await mine.receive_json_from(timeout=5) for _ in range(2)]
            their_frame = await their_socket.receive_json_from(timeout=5)
            return mine_frames, their_frame

    mine_frames, their_frame = async_to_sync(scenario)()
    assert held_batches.calls == [
        [str(first.message_id)],
        [str(second.message_id), str(theirs.message_id)],
    ]
    assert sorted(mine_frames, key=lambda frame: frame["id"]) == [
        answered(1, first, "acked"),
        answered(2, second, "acked"),
    ]
    assert their_frame == answered(7, theirs, "acked")
    assert {stored(m).state for m in (first, second, theirs)} == {MessageState.ACKED}


def test_frames_are_read_while_a_batch_is_in_the_database(agent, other, blocked_acks):
    first, second = enqueue(agent), enqueue(other)

    async def scenario():
        async with connected(agent) as mine, connected(other) as their_socket:
            try:
                await mine.send_json_to(ack(1, first))
                await eventually(lambda: len(blocked_acks.calls) == 1)
                await their_socket.send_json_to(ack(2, second))
                acks = socket_batches.batchers().acks
                await eventually(lambda: len(acks._waiting) == 1, timeout=2)
            finally:
                blocked_acks.gate.set()
            await mine.receive_json_from(timeout=5)
            await their_socket.receive_json_from(timeout=5)

    async_to_sync(scenario)()
    assert blocked_acks.calls == [[str(first.message_id)], [str(second.message_id)]]


def test_a_socket_closed_before_its_answer_still_has_its_ack_recorded(agent, held_batches):
    message = enqueue(agent)

    async def scenario():
        socket = socket_of(agent)
        await socket.connect()
        await socket.receive_json_from(timeout=3)
        held_batches.gate.clear()
        try:
            await socket.send_json_to(ack(1, message))
            await eventually(lambda: len(held_batches.calls) == 1)
            await socket.disconnect()
        finally:
            held_batches.gate.set()
        # The batch goes on without its socket: let it end before this loop closes.
        acks = socket_batches.batchers().acks
        await eventually(lambda: not acks._draining)

    async_to_sync(scenario)()
    assert stored(message).state == MessageState.ACKED


def test_an_entry_whose_recording_fails_is_answered_internal_error(agent, monkeypatch):
    good, bad = enqueue(agent), enqueue(agent)

    def failing(entries):
        if any(entry.message_id == str(bad.message_id) for entry in entries):
            raise RuntimeError("the database went away")
        return answers.messages_ack(entries)

    monkeypatch.setattr(socket_batches, "messages_ack", failing)

    async def scenario():
        async with connected(agent) as socket:
            await socket.send_json_to(ack(1, good))
            await socket.send_json_to(ack(2, bad))
            frames = [await socket.receive_json_from(timeout=5) for _ in range(2)]
            return sorted(frames, key=lambda frame: frame["id"])

    good_frame, bad_frame = async_to_sync(scenario)()
    assert good_frame == answered(1, good, "acked")
    assert is_refusal(bad_frame, 2, protocol.ERROR_INTERNAL)
    assert (stored(good).state, stored(bad).state) == (MessageState.ACKED, MessageState.PENDING)
