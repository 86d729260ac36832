"""Rate control: MaxConcurrency sends in waves as replies free slots; MaxErrors stops sending.
And the command's final status, as settle works it out from its invocations."""

from __future__ import annotations

import pytest

from access.authorization import Principal
from commands import rates
from commands.models import Command
from fleet.models import ManagedNode, NodeMessage
from tests.commands.runs import agents_register, busy, fetch, reply, result, run, send, start
from tests.fleet.protocol.agents import Agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def five(activation) -> list[Agent]:
    return agents_register(activation, 5)


def send_to(admin: Principal, agents: list[Agent], **fields) -> Command:
    return send(admin, instance_ids=[agent.node_id for agent in agents], **fields)


def messages() -> int:
    return NodeMessage.objects.filter(kind="RunCommand").count()


def settled(command: Command) -> Command:
    command.refresh_from_db()
    return command


# --- The arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "targets", "limit"),
    [
        ("1", 5, 1),
        ("7", 5, 7),
        ("40%", 5, 2),
        ("30%", 5, 2),  # 1.5 rounds up
        ("10%", 5, 1),  # 0.5 rounds up
        ("1%", 3, 1),  # never below one
        ("100%", 200, 200),
        ("50%", 1, 1),
    ],
)
def test_max_concurrency_is_a_count_or_a_percentage_rounded_up_and_at_least_one(
    value, targets, limit
):
    assert rates.concurrency_limit(value, targets) == limit


@pytest.mark.parametrize(
    ("value", "targets", "limit"),
    [
        ("0", 5, 0),
        ("3", 5, 3),
        ("50%", 5, 2),  # 2.5 rounds down
        ("10%", 5, 0),  # 0.5 rounds down: no error is tolerated
        ("0%", 100, 0),
        ("100%", 7, 7),
        ("99%", 100, 99),
    ],
)
def test_max_errors_is_a_count_or_a_percentage_rounded_down(value, targets, limit):
    assert rates.error_limit(value, targets) == limit


@pytest.mark.parametrize("value", ["1", "1234567", "1%", "9%", "10%", "99%", "100%"])
def test_valid_max_concurrency_values(value):
    rates.rate_check(value, "0")


@pytest.mark.parametrize("value", ["0", "0%", "00", "1.5", "101%", "100%%", " 1", "1 ", "12345678"])
def test_invalid_max_concurrency_values(value):
    with pytest.raises(rates.CommandsValidationError):
        rates.rate_check(value, "0")


@pytest.mark.parametrize("value", ["0", "1", "1234567", "0%", "9%", "100%"])
def test_valid_max_errors_values(value):
    rates.rate_check("1", value)


def test_the_limits_are_resolved_against_the_nodes_reached(admin, five):
    command = send_to(admin, five, max_concurrency="40%", max_errors="50%")
    assert (command.concurrency_limit, command.error_limit) == (2, 2)


# --- MaxConcurrency -------------------------------------------------------------------------


def test_only_max_concurrency_messages_exist_after_the_send(admin, five):
    command = send_to(admin, five, max_concurrency="2")
    assert messages() == 2
    assert command.invocations.filter(dispatched_at__isnull=False).count() == 2
    assert not settled(command).dispatch_complete


def test_a_percentage_concurrency_sends_that_share_rounded_up(admin, five):
    send_to(admin, five, max_concurrency="30%")
    assert messages() == 2


def test_a_tiny_percentage_still_sends_one(admin, five):
    send_to(admin, five, max_concurrency="1%")
    assert messages() == 1


def test_each_terminal_reply_sends_the_next_node_its_message(admin, five):
    command = send_to(admin, five, max_concurrency="2")
    first, second = busy(five)
    run(first)
    assert messages() == 3
    run(second)
    assert messages() == 4
    while waiting := busy(five):
        run(waiting[0])
    assert messages() == 5
    command = settled(command)
    assert command.dispatch_complete
    assert (command.status, command.completed_count) == ("Success", 5)


def test_an_ack_frees_no_slot(admin, five):
    send_to(admin, five, max_concurrency="1")
    [first] = busy(five)
    start(first)
    assert messages() == 1


def test_nodes_are_sent_to_in_sequence_order(admin, five):
    command = send_to(admin, five, max_concurrency="1")
    order = list(command.invocations.order_by("sequence").values_list("node_id", flat=True))
    sent = []
    by_node = {agent.node_id: agent for agent in five}
    while waiting := busy(five):
        [agent] = waiting
        sent.append(agent.node_id)
        run(by_node[agent.node_id])
    assert sent == order


def test_an_offline_node_holds_its_slot_until_it_answers(admin, activation):
    # Nodes are sent to in the order of their ids: make the first one offline.
    away, online = sorted(agents_register(activation, 2), key=lambda agent: agent.node_id)
    ManagedNode.objects.filter(pk=away.node_id).update(status="ConnectionLost")
    command = send(admin, instance_ids=[online.node_id, away.node_id], max_concurrency="1")
    assert command.invocations.get(node_id=away.node_id).status == "Delayed"
    assert busy([away, online]) == [away]
    run(away)
    assert busy([away, online]) == [online]


# --- MaxErrors ------------------------------------------------------------------------------


def test_with_max_errors_0_the_first_error_stops_sending(admin, five):
    command = send_to(admin, five, max_concurrency="1", max_errors="0")
    [first] = busy(five)
    run(first, "Failed", response_code=1)
    assert messages() == 1
    never_sent = command.invocations.filter(dispatched_at__isnull=True)
    assert never_sent.count() == 4
    for invocation in never_sent:
        assert (invocation.status, invocation.status_details) == ("Cancelled", "Terminated")
        assert "passed MaxErrors (0)" in invocation.reason
        assert invocation.finished_at is not None
    command = settled(command)
    assert (command.status, command.status_details) == ("Failed", "Failed")
    assert (command.completed_count, command.error_count) == (5, 1)
    assert command.finished_at is not None


def test_errors_up_to_max_errors_are_tolerated_and_the_next_one_stops_sending(admin, five):
    command = send_to(admin, five, max_concurrency="1", max_errors="1")
    run(busy(five)[0], "Failed", response_code=1)
    assert messages() == 2
    run(busy(five)[0], "Failed", response_code=2)
    assert messages() == 2
    assert command.invocations.filter(status_details="Terminated").count() == 3
    assert settled(command).status == "Failed"


def test_a_percentage_of_errors_rounds_down(admin, five):
    # 50% of 5 is 2.5: two errors are tolerated, the third stops sending.
    command = send_to(admin, five, max_concurrency="1", max_errors="50%")
    for sent in (1, 2, 3):
        assert messages() == sent
        run(busy(five)[0], "Failed", response_code=1)
    assert messages() == 3
    assert command.invocations.filter(status_details="Terminated").count() == 2


def test_an_execution_timeout_counts_as_an_error(admin, five):
    command = send_to(admin, five, max_concurrency="1", max_errors="0")
    run(busy(five)[0], "TimedOut", response_code=-1)
    assert messages() == 1
    command = settled(command)
    assert (command.status, command.error_count) == ("Failed", 1)


def test_invocations_already_running_finish_when_errors_stop_the_sending(admin, five):
    command = send_to(admin, five, max_concurrency="2", max_errors="0")
    first, second = busy(five)
    message = start(second)
    run(first, "Failed", response_code=1)
    assert command.invocations.get(node_id=second.node_id).status == "InProgress"
    assert settled(command).status == "InProgress"
    reply(second, message["message_id"], result("Success"))
    assert command.invocations.get(node_id=second.node_id).status == "Success"
    command = settled(command)
    assert (command.status, command.completed_count, command.error_count) == ("Failed", 5, 1)


# --- The command's final status -------------------------------------------------------------


def test_all_succeeded_is_success(admin, five):
    command = send_to(admin, five[:2])
    for agent in five[:2]:
        run(agent)
    command = settled(command)
    assert (command.status, command.status_details) == ("Success", "Success")
    assert (command.completed_count, command.error_count) == (2, 0)


def test_errors_within_max_errors_end_incomplete(admin, five):
    command = send_to(admin, five[:2], max_errors="1")
    run(five[0], "Failed", response_code=1)
    assert settled(command).status == "InProgress"
    run(five[1])
    command = settled(command)
    assert (command.status, command.status_details) == ("Failed", "Incomplete")
    assert (command.completed_count, command.error_count) == (2, 1)


def test_a_cancelled_run_without_a_cancel_request_ends_the_command_incomplete(admin, five):
    command = send_to(admin, five[:2], max_errors="1")
    run(five[0], "Cancelled", response_code=-1)
    run(five[1])
    command = settled(command)
    assert (command.status, command.status_details) == ("Failed", "Incomplete")
    assert command.error_count == 0


def test_the_command_is_pending_until_an_agent_starts_and_in_progress_after(admin, five):
    command = send_to(admin, five[:2])
    assert settled(command).status == "Pending"
    start(five[0])
    assert settled(command).status == "InProgress"


def test_fetching_alone_leaves_the_invocation_pending(admin, five):
    command = send_to(admin, five[:1])
    fetch(five[0])
    assert command.invocations.get().status == "Pending"
    assert settled(command).status == "Pending"
