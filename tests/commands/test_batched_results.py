"""Run Command acks and replies recorded many at once (as the agent websockets' batches do):
each invocation ends or starts as if alone, and each command is dispatched and settled once
per batch, however many of its invocations the batch holds."""

from __future__ import annotations

from typing import Any

import pytest
from bosun_agent import protocol

from access.authorization import Principal
from commands.models import Command, Invocation
from commands.services import results
from fleet.models import ManagedNode, MessageState, NodeMessage
from fleet.protocol.answers import Ack, Outcome, Reply, messages_ack, messages_reply
from tests.commands.runs import (
    agents_register,
    busy,
    committing,
    fetch,
    result,
    send,
    step,
    stream,
)
from tests.fleet.protocol.agents import Agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def five(activation) -> list[Agent]:
    return agents_register(activation, 5)


@pytest.fixture
def dispatched(monkeypatch) -> list[str]:
    """The command ids the replies' handler dispatches, one entry per call."""
    calls: list[str] = []
    real = results.command_dispatch

    def spy(command: Command, **kwargs: Any) -> int:
        calls.append(command.command_id)
        return real(command, **kwargs)

    monkeypatch.setattr(results, "command_dispatch", spy)
    return calls


def send_to(admin: Principal, agents: list[Agent], **fields: Any) -> Command:
    return send(admin, instance_ids=[agent.node_id for agent in agents], **fields)


def sent(command: Command) -> int:
    return NodeMessage.objects.filter(
        message_id__in=command.invocations.values("message_id")
    ).count()


def fetched(agents: list[Agent]) -> list[tuple[Agent, str]]:
    """(agent, message id) of every RunCommand message the agents lease now."""
    return [(agent, m["message_id"]) for agent in agents for m in fetch(agent)]


def acked(runs: list[tuple[Agent, str]]) -> list[Outcome]:
    """Ack them all in one batch, its on-commit work run."""
    with committing():
        return messages_ack([Ack(agent.node_id, message_id) for agent, message_id in runs])


def replied(answers: list[tuple[Agent, str, dict[str, Any]]]) -> list[Outcome]:
    """Reply to them all in one batch (Success when the outcome is), on-commit work run."""
    entries = [
        Reply(
            agent.node_id,
            message_id,
            protocol.REPLY_SUCCESS if body.get("outcome") == "Success" else protocol.REPLY_FAILED,
            body,
        )
        for agent, message_id, body in answers
    ]
    with committing():
        return messages_reply(entries)


def invocation_of(message_id: str) -> Invocation:
    return Invocation.objects.get(message_id=message_id)


def reloaded(command: Command) -> Command:
    command.refresh_from_db()
    return command


def test_replies_recorded_together_end_each_invocation_with_its_own_result(admin, five, dispatched):
    command = send_to(admin, five, max_concurrency="3", max_errors="2")
    runs = fetched(busy(five))
    assert len(runs) == 3
    acked(runs)
    (a, a_id), (b, b_id), (c, c_id) = runs

    outcomes = replied(
        [
            (a, a_id, result(steps=[step(stdout=stream("hello\n"))])),
            (
                b,
                b_id,
                result(
                    "Failed",
                    steps=[step("Failed", response_code=2, stderr=stream("oops\n"))],
                    response_code=2,
                ),
            ),
            (c, c_id, result("TimedOut", response_code=-1)),
        ]
    )

    assert [(o.state, o.accepted, o.error) for o in outcomes] == [
        ("succeeded", True, None),
        ("failed", True, None),
        ("failed", True, None),
    ]
    ended = {message_id: invocation_of(message_id) for _, message_id in runs}
    assert [(i.status, i.status_details, i.response_code, i.reason) for i in ended.values()] == [
        ("Success", "Success", 0, ""),
        ("Failed", "Failed", 2, ""),
        ("TimedOut", "ExecutionTimedOut", -1, ""),
    ]
    [stdout_step] = ended[a_id].steps
    assert stdout_step["stdout"]["inline"] == "hello\n"
    assert stdout_step["status"] == "Success"
    [stderr_step] = ended[b_id].steps
    assert (stderr_step["status"], stderr_step["response_code"]) == ("Failed", 2)
    assert stderr_step["stderr"]["inline"] == "oops\n"
    # One end time for the batch; each start is its own ack's.
    assert len({i.finished_at for i in ended.values()}) == 1
    for message_id, invocation in ended.items():
        assert invocation.started_at == NodeMessage.objects.get(message_id=message_id).acked_at

    # Three slots freed: the two nodes left are sent to, by one dispatch of the command.
    assert dispatched == [command.command_id]
    assert sent(command) == 5
    assert reloaded(command).dispatch_complete
    assert reloaded(command).status == "InProgress"

    last = fetched(busy(five))
    assert len(last) == 2
    acked(last)
    replied([(agent, message_id, result()) for agent, message_id in last])
    command = reloaded(command)
    # Two errors within MaxErrors 2: done, not all succeeded.
    assert (command.status, command.status_details) == ("Failed", "Incomplete")
    assert (command.completed_count, command.error_count) == (5, 2)
    assert command.finished_at is not None
    assert dispatched == [command.command_id]  # dispatch was complete: not asked again


def test_replies_to_two_commands_in_one_batch_dispatch_each_command_once(admin, five, dispatched):
    first = send_to(admin, five[:4], max_concurrency="2")
    second = send_to(admin, five[:4], max_concurrency="2")
    assert (sent(first), sent(second)) == (2, 2)
    runs = fetched(five)
    assert len(runs) == 4
    acked(runs)

    replied([(agent, message_id, result()) for agent, message_id in runs])

    assert sorted(dispatched) == sorted([first.command_id, second.command_id])
    assert (sent(first), sent(second)) == (4, 4)
    assert reloaded(first).dispatch_complete and reloaded(second).dispatch_complete
    assert Invocation.objects.filter(status="Success").count() == 4

    rest = fetched(five)
    assert len(rest) == 4
    acked(rest)
    replied([(agent, message_id, result()) for agent, message_id in rest])
    for command in (reloaded(first), reloaded(second)):
        assert (command.status, command.completed_count, command.error_count) == ("Success", 4, 0)
    assert len(dispatched) == 2


def test_a_batch_with_errors_past_max_errors_stops_the_sending_once(admin, five, dispatched):
    command = send_to(admin, five, max_concurrency="2", max_errors="0")
    runs = fetched(busy(five))
    acked(runs)
    replied([(agent, message_id, result("Failed", response_code=1)) for agent, message_id in runs])
    assert dispatched == [command.command_id]
    assert sent(command) == 2  # nothing more was sent
    never_sent = command.invocations.filter(dispatched_at__isnull=True)
    assert {(i.status, i.status_details) for i in never_sent} == {("Cancelled", "Terminated")}
    assert never_sent.count() == 3
    command = reloaded(command)
    assert (command.status, command.completed_count, command.error_count) == ("Failed", 5, 2)


def test_an_invocation_ended_on_the_servers_side_keeps_its_end_in_a_batch(admin, five):
    command = send_to(admin, five[:2])
    runs = fetched(five[:2])
    acked(runs)
    (a, a_id), (b, b_id) = runs
    # The server gave up on the first (its message still open), then both replies arrive.
    Invocation.objects.filter(message_id=a_id).update(
        status="TimedOut", status_details="ExecutionTimedOut", reason="the server's end"
    )

    outcomes = replied([(a, a_id, result()), (b, b_id, result())])

    assert [o.accepted for o in outcomes] == [True, True]  # the messages' replies are heard
    first, second = invocation_of(a_id), invocation_of(b_id)
    assert (first.status, first.reason, first.steps) == ("TimedOut", "the server's end", [])
    assert (second.status, second.response_code) == ("Success", 0)
    # Settled from both ends: the server's timeout is an error past MaxErrors 0.
    command = reloaded(command)
    assert (command.status, command.completed_count, command.error_count) == ("Failed", 2, 1)


def test_a_malformed_reply_fails_only_its_own_invocation(admin, five):
    send_to(admin, five[:2])
    runs = fetched(five[:2])
    acked(runs)
    (a, a_id), (b, b_id) = runs
    broken = result(steps=[{"status": "Exploded"}])

    replied([(a, a_id, broken), (b, b_id, result())])

    first, second = invocation_of(a_id), invocation_of(b_id)
    assert first.status == "Failed" and first.reason.startswith("Malformed reply")
    assert first.steps == []
    assert second.status == "Success"


def test_acks_in_one_batch_start_the_invocations_of_two_commands(admin, five):
    online, other, away = five[:3]
    ManagedNode.objects.filter(pk=away.node_id).update(status="ConnectionLost")
    first = send_to(admin, [online, other])
    second = send_to(admin, [online, away])
    assert second.invocations.get(node_id=away.node_id).status == "Delayed"
    runs = fetched([online, other, away])
    assert len(runs) == 4

    outcomes = acked(runs)

    assert [(o.state, o.error) for o in outcomes] == [("acked", None)] * 4
    started = Invocation.objects.all()
    assert {(i.status, i.status_details) for i in started} == {("InProgress", "InProgress")}
    acked_at = {m.acked_at for m in NodeMessage.objects.filter(kind=protocol.MESSAGE_RUN_COMMAND)}
    assert len(acked_at) == 1 and None not in acked_at
    assert {i.started_at for i in started} == acked_at
    for command in (reloaded(first), reloaded(second)):
        assert (command.status, command.status_details) == ("InProgress", "InProgress")

    # The batch again (an agent resending its acks) changes nothing.
    assert [o.state for o in acked(runs)] == ["acked"] * 4
    assert {i.started_at for i in Invocation.objects.all()} == acked_at


def test_acks_of_a_batch_leave_other_commands_alone(admin, five):
    first = send_to(admin, five[:1])
    untouched = send_to(admin, five[1:2])
    acked(fetched(five[:1]))
    assert reloaded(first).status == "InProgress"
    assert reloaded(untouched).status == "Pending"
    waiting = untouched.invocations.get()
    assert waiting.status == "Pending"
    assert NodeMessage.objects.get(message_id=waiting.message_id).state == MessageState.PENDING
