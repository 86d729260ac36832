"""Acks and replies recorded in batches (fleet.protocol.answers), and the websocket's batcher
that gathers them (fleet.protocol.socket_batches).

A batch gives each entry its own outcome, one entry's refusal never spoiling another's; the
handlers of later apps see each kind's accepted messages once per batch, inside its
transaction; the batcher records what arrives together in one call and isolates an entry
whose recording fails.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleet.models import ManagedNode, MessageState, NodeMessage
from fleet.protocol import messages, socket_batches
from fleet.protocol.answers import Ack, Outcome, Reply, messages_ack, messages_reply
from fleet.protocol.messages import message_enqueue, register_ack_handler, register_reply_handler
from fleet.protocol.socket_batches import Batcher, batchers
from tests.fleet.protocol.agents import Agent

NOT_FOUND = protocol.ERROR_NOT_FOUND


def enqueue(agent: Agent, kind: str = protocol.MESSAGE_PING, **fields: Any) -> NodeMessage:
    (message,) = message_enqueue(node_ids=[agent.node_id], kind=kind, payload={}, **fields)
    return message


def stored(message: NodeMessage) -> NodeMessage:
    return NodeMessage.objects.get(pk=message.pk)


def ack_of(agent: Agent, message: NodeMessage | str) -> Ack:
    return Ack(agent.node_id, message if isinstance(message, str) else str(message.message_id))


def reply_of(
    agent: Agent,
    message: NodeMessage | str,
    status: str = protocol.REPLY_SUCCESS,
    result: dict[str, Any] | None = None,
) -> Reply:
    message_id = message if isinstance(message, str) else str(message.message_id)
    return Reply(agent.node_id, message_id, status, {} if result is None else result)


def summary(outcome: Outcome) -> tuple[str, str, bool, str | None]:
    """(message id, state, accepted, error code) of an outcome."""
    code = outcome.error.code if outcome.error is not None else None
    return outcome.message_id, outcome.state, outcome.accepted, code


def refused(message_id: str) -> tuple[str, str, bool, str]:
    return message_id, "", False, NOT_FOUND


def ok(message: NodeMessage, state: str, accepted: bool = False) -> tuple[str, str, bool, None]:
    return str(message.message_id), state, accepted, None


@pytest.fixture
def other(activation) -> Agent:
    second = Agent()
    assert second.register(*activation).status_code == 201
    return second


@pytest.fixture
def handlers(monkeypatch) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Ack and reply handlers of two test kinds that note each call: (which, kind, the
    (message id, state) of each message)."""
    monkeypatch.setattr(messages, "_ACK_HANDLERS", dict(messages._ACK_HANDLERS))
    monkeypatch.setattr(messages, "_REPLY_HANDLERS", dict(messages._REPLY_HANDLERS))
    calls: list[tuple[str, str, list[tuple[str, str]]]] = []

    def noting(which: str, kind: str):
        def handler(batch: list[NodeMessage]) -> None:
            calls.append((which, kind, [(str(m.message_id), m.state) for m in batch]))

        return handler

    for kind in ("KindA", "KindB"):
        register_ack_handler(kind, noting("ack", kind))
        register_reply_handler(kind, noting("reply", kind))
    return calls


# --- Acks -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_of_acks_answers_each_entry_on_its_own(agent, other):
    fresh, leased, repeated, acked_before, cancelled, expired, done, theirs = (
        enqueue(other if index == 7 else agent) for index in range(8)
    )
    NodeMessage.objects.filter(pk=leased.pk).update(state=MessageState.LEASED)
    messages_ack([ack_of(agent, acked_before)])
    first_acked_at = stored(acked_before).acked_at
    NodeMessage.objects.filter(pk=cancelled.pk).update(state=MessageState.CANCELLED)
    NodeMessage.objects.filter(pk=expired.pk).update(state=MessageState.EXPIRED)
    messages_reply([reply_of(agent, done)])
    missing = str(uuid.uuid4())

    outcomes = messages_ack(
        [
            ack_of(agent, fresh),
            ack_of(agent, missing),
            ack_of(agent, leased),
            ack_of(agent, "not-a-uuid"),
            ack_of(agent, theirs),
            ack_of(agent, repeated),
            ack_of(agent, repeated),  # twice in one batch
            ack_of(agent, acked_before),
            ack_of(agent, cancelled),
            ack_of(agent, expired),
            ack_of(agent, done),
        ]
    )

    assert [summary(outcome) for outcome in outcomes] == [
        ok(fresh, "acked"),
        refused(missing),
        ok(leased, "acked"),
        refused("not-a-uuid"),
        refused(str(theirs.message_id)),
        ok(repeated, "acked"),
        ok(repeated, "acked"),
        ok(acked_before, "acked"),
        refused(str(cancelled.message_id)),
        refused(str(expired.message_id)),
        ok(done, "succeeded"),
    ]
    assert "withdrawn (cancelled)" in outcomes[8].error.message
    assert "withdrawn (expired)" in outcomes[9].error.message
    # One time for the batch; an earlier ack keeps its own.
    times = {stored(m).acked_at for m in (fresh, leased, repeated)}
    assert len(times) == 1 and None not in times
    assert stored(acked_before).acked_at == first_acked_at
    assert stored(theirs).state == MessageState.PENDING
    assert (stored(cancelled).state, stored(expired).state) == ("cancelled", "expired")
    assert stored(done).state == MessageState.SUCCEEDED


@pytest.mark.django_db
def test_a_refused_ack_raises_its_refusal_when_answered(agent):
    [outcome] = messages_ack([ack_of(agent, str(uuid.uuid4()))])
    with pytest.raises(ProtocolError) as refusal:
        outcome.answer()
    assert refusal.value.code == NOT_FOUND
    assert refusal.value.status == 404


@pytest.mark.django_db
def test_an_ack_past_the_delivery_deadline_expires_the_message(agent, handlers):
    late = enqueue(agent, kind="KindA", deliver_before=timezone.now() - timedelta(seconds=1))
    on_time = enqueue(agent, kind="KindA", deliver_before=timezone.now() + timedelta(minutes=5))
    outcomes = messages_ack([ack_of(agent, late), ack_of(agent, on_time), ack_of(agent, late)])
    assert [summary(outcome) for outcome in outcomes] == [
        refused(str(late.message_id)),
        ok(on_time, "acked"),
        refused(str(late.message_id)),
    ]
    assert "withdrawn (expired)" in outcomes[0].error.message
    row = stored(late)
    assert (row.state, row.acked_at) == (MessageState.EXPIRED, None)
    assert row.completed_at is not None
    # Only the message that starts is handed to its kind's handler.
    assert handlers == [("ack", "KindA", [(str(on_time.message_id), "acked")])]


@pytest.mark.django_db
def test_an_acked_message_withdrawn_later_answers_its_state(agent):
    """Cancelled while it ran (its node deregistered): the agent already runs it, so the
    ack is answered with the state rather than refused."""
    message = enqueue(agent)
    messages_ack([ack_of(agent, message)])
    NodeMessage.objects.filter(pk=message.pk).update(state=MessageState.CANCELLED)
    [outcome] = messages_ack([ack_of(agent, message)])
    assert summary(outcome) == ok(message, "cancelled")


@pytest.mark.django_db
def test_ack_handlers_run_once_per_kind_with_the_messages_that_start(agent, other, handlers):
    a1, a2, b1 = enqueue(agent, "KindA"), enqueue(agent, "KindA"), enqueue(agent, "KindB")
    a3, ping = enqueue(other, "KindA"), enqueue(agent)
    started_before = enqueue(agent, "KindB")
    messages_ack([ack_of(agent, started_before)])
    handlers.clear()

    messages_ack(
        [
            ack_of(agent, a1),
            ack_of(agent, b1),
            ack_of(agent, a2),
            ack_of(agent, a1),  # a repeat starts nothing
            ack_of(other, a3),
            ack_of(agent, ping),  # a kind without a handler
            ack_of(agent, started_before),
            ack_of(agent, str(uuid.uuid4())),
        ]
    )

    assert handlers == [
        ("ack", "KindA", [(str(m.message_id), "acked") for m in (a1, a2, a3)]),
        ("ack", "KindB", [(str(b1.message_id), "acked")]),
    ]


@pytest.mark.django_db
def test_a_batch_of_repeats_calls_no_handler(agent, handlers):
    message = enqueue(agent, "KindA")
    messages_ack([ack_of(agent, message)])
    handlers.clear()
    messages_ack([ack_of(agent, message), ack_of(agent, message)])
    assert handlers == []


@pytest.mark.django_db
def test_an_ack_handler_that_raises_rolls_the_whole_batch_back(agent, monkeypatch):
    monkeypatch.setattr(messages, "_ACK_HANDLERS", dict(messages._ACK_HANDLERS))

    def renames(batch: list[NodeMessage]) -> None:
        ManagedNode.objects.filter(pk=agent.node_id).update(hostname="renamed")

    def fails(batch: list[NodeMessage]) -> None:
        raise RuntimeError("handler bug")

    register_ack_handler("KindA", renames)
    register_ack_handler("KindB", fails)
    first, second = enqueue(agent, "KindA"), enqueue(agent, "KindB")
    with pytest.raises(RuntimeError, match="handler bug"):
        messages_ack([ack_of(agent, first), ack_of(agent, second)])
    for message in (first, second):
        assert (stored(message).state, stored(message).acked_at) == (MessageState.PENDING, None)
    assert ManagedNode.objects.get(pk=agent.node_id).hostname == "web-1"


@pytest.mark.django_db
def test_a_batch_costs_the_same_statements_for_one_ack_as_for_twenty(agent):
    """Locking, moving and (without handlers) nothing else: a few statements for the lot."""
    one = enqueue(agent)
    many = [enqueue(agent) for _ in range(20)]
    with CaptureQueriesContext(connection) as single:
        messages_ack([ack_of(agent, one)])
    with CaptureQueriesContext(connection) as batch:
        messages_ack([ack_of(agent, message) for message in many])
    assert len(batch) == len(single)
    assert {stored(message).state for message in many} == {MessageState.ACKED}


@pytest.mark.django_db
def test_a_batch_locks_its_rows_in_primary_key_order(agent):
    """Two batches naming the same messages in other orders wait for each other instead of
    deadlocking (the FOR UPDATE itself is PostgreSQL's; SQLite serializes writers)."""
    first, second = enqueue(agent), enqueue(agent)
    with CaptureQueriesContext(connection) as queries:
        messages_ack([ack_of(agent, second), ack_of(agent, first)])
    [read] = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert read.endswith('ORDER BY "fleet_nodemessage"."id" ASC')


# --- Replies --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_of_replies_answers_each_entry_and_the_first_reply_wins(agent, other):
    succeeds, fails, twice, acked, done, cancelled, theirs = (
        enqueue(other if index == 6 else agent) for index in range(7)
    )
    messages_ack([ack_of(agent, acked)])
    acked_at = stored(acked).acked_at
    messages_reply([reply_of(agent, done, result={"first": True})])
    NodeMessage.objects.filter(pk=cancelled.pk).update(state=MessageState.CANCELLED)
    missing = str(uuid.uuid4())

    outcomes = messages_reply(
        [
            reply_of(agent, succeeds, "Success", {"pong": True}),
            reply_of(agent, fails, "Failed", {"error": "boom"}),
            reply_of(agent, twice, "Success", {"n": 1}),
            reply_of(agent, twice, "Failed", {"n": 2}),  # same batch: the first wins
            reply_of(agent, acked, "Success", {"steps": [1, 2]}),
            reply_of(agent, done, "Failed", {"second": True}),
            reply_of(agent, cancelled, "Success"),
            reply_of(agent, theirs, "Success"),
            reply_of(agent, missing, "Success"),
        ]
    )

    assert [summary(outcome) for outcome in outcomes] == [
        ok(succeeds, "succeeded", accepted=True),
        ok(fails, "failed", accepted=True),
        ok(twice, "succeeded", accepted=True),
        ok(twice, "succeeded", accepted=False),
        ok(acked, "succeeded", accepted=True),
        ok(done, "succeeded", accepted=False),
        ok(cancelled, "cancelled", accepted=False),
        refused(str(theirs.message_id)),
        refused(missing),
    ]
    # Each row got its own values in the one write.
    rows = {m: stored(m) for m in (succeeds, fails, twice, acked, done)}
    assert [(rows[m].state, rows[m].result) for m in rows] == [
        ("succeeded", {"pong": True}),
        ("failed", {"error": "boom"}),
        ("succeeded", {"n": 1}),
        ("succeeded", {"steps": [1, 2]}),
        ("succeeded", {"first": True}),
    ]
    completed = {rows[m].completed_at for m in (succeeds, fails, twice, acked)}
    assert len(completed) == 1 and None not in completed
    [now] = completed
    # A reply is also the ack of a message never acked; an ack's own time stands.
    assert rows[succeeds].acked_at == rows[fails].acked_at == now
    assert rows[acked].acked_at == acked_at < now
    assert (stored(cancelled).state, stored(cancelled).result) == ("cancelled", None)
    assert (stored(theirs).state, stored(theirs).result) == ("pending", None)


@pytest.mark.django_db
def test_reply_handlers_run_once_per_kind_with_the_accepted_replies(agent, handlers):
    a1, a2, b1 = enqueue(agent, "KindA"), enqueue(agent, "KindA"), enqueue(agent, "KindB")
    ended = enqueue(agent, "KindB")
    messages_reply([reply_of(agent, ended)])
    handlers.clear()

    messages_reply(
        [
            reply_of(agent, a1, "Failed"),
            reply_of(agent, b1, "Success"),
            reply_of(agent, a1, "Success"),  # not accepted
            reply_of(agent, a2, "Success"),
            reply_of(agent, ended, "Failed"),  # not accepted
        ]
    )

    assert handlers == [
        ("reply", "KindA", [(str(a1.message_id), "failed"), (str(a2.message_id), "succeeded")]),
        ("reply", "KindB", [(str(b1.message_id), "succeeded")]),
    ]


@pytest.mark.django_db
def test_reply_handlers_see_the_results_of_their_messages(agent, monkeypatch):
    monkeypatch.setattr(messages, "_REPLY_HANDLERS", dict(messages._REPLY_HANDLERS))
    seen: list[tuple[str, Any, bool]] = []
    register_reply_handler(
        "KindA",
        lambda batch: seen.extend((m.state, m.result, m.completed_at is not None) for m in batch),
    )
    first, second = enqueue(agent, "KindA"), enqueue(agent, "KindA")
    messages_reply(
        [reply_of(agent, first, result={"a": 1}), reply_of(agent, second, "Failed", {"b": 2})]
    )
    assert seen == [("succeeded", {"a": 1}, True), ("failed", {"b": 2}, True)]


@pytest.mark.django_db
def test_a_reply_handler_that_raises_rolls_the_whole_batch_back(agent, monkeypatch):
    monkeypatch.setattr(messages, "_REPLY_HANDLERS", dict(messages._REPLY_HANDLERS))

    def renames(batch: list[NodeMessage]) -> None:
        ManagedNode.objects.filter(pk=agent.node_id).update(hostname="renamed")

    def fails(batch: list[NodeMessage]) -> None:
        raise RuntimeError("handler bug")

    register_reply_handler("KindA", renames)
    register_reply_handler("KindB", fails)
    first, second = enqueue(agent, "KindA"), enqueue(agent, "KindB")
    with pytest.raises(RuntimeError, match="handler bug"):
        messages_reply([reply_of(agent, first), reply_of(agent, second)])
    for message in (first, second):
        row = stored(message)
        assert (row.state, row.result, row.completed_at) == (MessageState.PENDING, None, None)
    assert ManagedNode.objects.get(pk=agent.node_id).hostname == "web-1"


@pytest.mark.django_db
def test_a_batch_with_an_unknown_status_is_refused_before_anything_is_written(agent):
    good, bad = enqueue(agent), enqueue(agent)
    with pytest.raises(ValueError, match="Done"):
        messages_reply([reply_of(agent, good), reply_of(agent, bad, status="Done")])
    assert stored(good).state == MessageState.PENDING


# --- The batcher ----------------------------------------------------------------------------


# The batcher closes stale database connections before each record (as every sync call of a
# consumer does), so even the tests with a fake record function are allowed the database.
batcher_test = pytest.mark.django_db(transaction=True)


class Recorder:
    """A record function of the batcher: notes each call; fails any batch holding "bad"."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, entries) -> list[Outcome]:
        self.calls.append([entry.message_id for entry in entries])
        if any(entry.message_id == "bad" for entry in entries):
            raise RuntimeError("deadlock detected")
        return [Outcome(entry.message_id, state="acked") for entry in entries]


def submitted(batcher: Batcher, names: list[str]) -> list[Outcome]:
    async def together():
        return await asyncio.gather(*(batcher.submit(Ack("mi-1", name)) for name in names))

    return async_to_sync(together)()


@batcher_test
def test_entries_submitted_together_are_recorded_in_one_call():
    record = Recorder()
    outcomes = submitted(Batcher(record), ["a", "b", "c", "d"])
    assert record.calls == [["a", "b", "c", "d"]]
    assert [(o.message_id, o.state, o.error) for o in outcomes] == [
        (name, "acked", None) for name in "abcd"
    ]


@batcher_test
def test_entries_arriving_during_a_batch_make_the_next_one():
    calls: list[list[str]] = []
    entered, release = threading.Event(), threading.Event()

    def slow(entries):
        calls.append([entry.message_id for entry in entries])
        if len(calls) == 1:
            entered.set()
            assert release.wait(10)
        return [Outcome(entry.message_id, state="acked") for entry in entries]

    batcher = Batcher(slow)

    async def scenario():
        first = asyncio.ensure_future(batcher.submit(Ack("mi-1", "a")))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        later = [asyncio.ensure_future(batcher.submit(Ack("mi-2", n))) for n in "bcd"]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *later)

    outcomes = asyncio.run(scenario())
    assert calls == [["a"], ["b", "c", "d"]]
    assert [o.message_id for o in outcomes] == ["a", "b", "c", "d"]


@batcher_test
def test_a_batch_is_at_most_max_batch_entries(monkeypatch):
    monkeypatch.setattr(socket_batches, "MAX_BATCH", 2)
    record = Recorder()
    outcomes = submitted(Batcher(record), ["a", "b", "c", "d", "e"])
    assert record.calls == [["a", "b"], ["c", "d"], ["e"]]
    assert [o.message_id for o in outcomes] == ["a", "b", "c", "d", "e"]


@batcher_test
def test_a_failing_batch_is_retried_entry_by_entry_and_only_the_bad_one_fails(caplog):
    record = Recorder()
    outcomes = submitted(Batcher(record), ["a", "bad", "c"])
    assert record.calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    good_a, bad, good_c = outcomes
    assert (good_a.state, good_a.error) == ("acked", None)
    assert (good_c.state, good_c.error) == ("acked", None)
    assert bad.message_id == "bad" and bad.state == ""
    assert bad.error is not None and bad.error.code == protocol.ERROR_INTERNAL
    assert "recording an agent's Ack failed" in caplog.text


@batcher_test
def test_a_lone_failing_entry_is_not_retried():
    record = Recorder()
    [outcome] = submitted(Batcher(record), ["bad"])
    assert record.calls == [["bad"]]
    assert outcome.error.code == protocol.ERROR_INTERNAL


@batcher_test
def test_the_batcher_keeps_working_after_a_failed_batch():
    record = Recorder()
    batcher = Batcher(record)

    async def scenario():
        failed = await asyncio.gather(batcher.submit(Ack("n", "bad")))
        after = await asyncio.gather(batcher.submit(Ack("n", "x")), batcher.submit(Ack("n", "y")))
        return failed, after

    failed, after = async_to_sync(scenario)()
    assert failed[0].error.code == protocol.ERROR_INTERNAL
    assert [(o.message_id, o.error) for o in after] == [("x", None), ("y", None)]
    assert record.calls == [["bad"], ["x", "y"]]


@batcher_test
def test_a_submitter_that_goes_away_leaves_its_entry_in_the_batch():
    """A socket closing cancels its wait, not the recording: the others get their answers."""
    record = Recorder()
    batcher = Batcher(record)

    async def scenario():
        leaving = asyncio.ensure_future(batcher.submit(Ack("n", "gone")))
        staying = asyncio.ensure_future(batcher.submit(Ack("n", "kept")))
        await asyncio.sleep(0)
        leaving.cancel()
        return await staying, leaving.cancelled()

    outcome, cancelled = async_to_sync(scenario)()
    assert cancelled
    assert (outcome.message_id, outcome.state) == ("kept", "acked")
    assert record.calls == [["gone", "kept"]]


def test_each_event_loop_has_its_own_batchers():
    async def pair():
        return batchers(), batchers()

    first, again = async_to_sync(pair)()
    second, _ = async_to_sync(pair)()
    assert first is again
    assert first is not second
    assert first.acks is not first.replies


@pytest.mark.django_db(transaction=True)
def test_the_batcher_retries_real_acks_so_a_handler_bug_fails_only_its_entry(agent, monkeypatch):
    monkeypatch.setattr(messages, "_ACK_HANDLERS", dict(messages._ACK_HANDLERS))

    def fails(batch: list[NodeMessage]) -> None:
        raise RuntimeError("handler bug")

    register_ack_handler("KindB", fails)
    first, broken, last = enqueue(agent), enqueue(agent, "KindB"), enqueue(agent)
    calls: list[int] = []

    def counted(entries):
        calls.append(len(entries))
        return messages_ack(entries)

    batcher = Batcher(counted)

    async def scenario():
        return await asyncio.gather(
            *(batcher.submit(ack_of(agent, message)) for message in (first, broken, last))
        )

    outcomes = async_to_sync(scenario)()
    assert calls == [3, 1, 1, 1]
    assert [summary(o) for o in (outcomes[0], outcomes[2])] == [
        ok(first, "acked"),
        ok(last, "acked"),
    ]
    assert outcomes[1].error.code == protocol.ERROR_INTERNAL
    assert stored(broken).state == MessageState.PENDING
    assert (stored(first).state, stored(last).state) == (MessageState.ACKED, MessageState.ACKED)


@pytest.mark.django_db(transaction=True)
def test_the_batcher_records_real_replies_in_one_transaction(agent, other):
    mine, theirs = enqueue(agent), enqueue(other)
    calls: list[int] = []

    def counted(entries):
        calls.append(len(entries))
        return messages_reply(entries)

    batcher = Batcher(counted)

    async def scenario():
        return await asyncio.gather(
            batcher.submit(reply_of(agent, mine, result={"who": "me"})),
            batcher.submit(reply_of(other, theirs, "Failed", {"who": "them"})),
            batcher.submit(reply_of(agent, theirs)),  # another node's: unknown
        )

    outcomes = async_to_sync(scenario)()
    assert calls == [3]
    assert [summary(o) for o in outcomes] == [
        ok(mine, "succeeded", accepted=True),
        ok(theirs, "failed", accepted=True),
        refused(str(theirs.message_id)),
    ]
    assert stored(mine).result == {"who": "me"}
    assert stored(theirs).result == {"who": "them"}
