"""The backstop sweep: delivery timeouts, undeliverable nodes, silent runs, stalled commands."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bosun_agent import protocol
from django.utils import timezone

from access.authorization import Principal
from commands import tasks
from commands.models import Command, Invocation
from commands.services.sweep import EXECUTION_GRACE, commands_sweep
from fleet.models import MessageState, NodeMessage
from fleet.services.nodes import node_deregister
from tests.commands.runs import (
    ack,
    agents_register,
    busy,
    committing,
    fetch,
    reply,
    result,
    run,
    send,
    start,
)
from tests.fleet.protocol.agents import Agent

pytestmark = pytest.mark.django_db

SECOND = timedelta(seconds=1)


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def two(activation) -> list[Agent]:
    return agents_register(activation, 2)


def of(agent: Agent) -> Invocation:
    return Invocation.objects.get(node_id=agent.node_id)


def message_of(agent: Agent) -> NodeMessage:
    return NodeMessage.objects.get(node_id=agent.node_id, kind=protocol.MESSAGE_RUN_COMMAND)


def settled(command: Command) -> Command:
    command.refresh_from_db()
    return command


def sweep(now=None) -> int:
    with committing():
        return commands_sweep(now=now)


# --- Delivery timeouts ----------------------------------------------------------------------


def test_nothing_ends_before_the_delivery_deadline(admin, two):
    command = send(admin, instance_ids=[a.node_id for a in two], max_concurrency="1")
    assert sweep(now=command.expires_after - SECOND) == 0
    assert set(Invocation.objects.values_list("status", flat=True)) == {"Pending"}


def test_sent_and_never_sent_invocations_not_started_by_the_deadline_time_out(admin, two):
    command = send(
        admin, instance_ids=[a.node_id for a in two], max_concurrency="1", timeout_seconds=60
    )
    [sent] = busy(two)
    [unsent] = [a for a in two if a is not sent]
    fetch(sent)  # leased, never acked
    assert sweep(now=command.expires_after + SECOND) == 2
    for agent in two:
        invocation = of(agent)
        assert (invocation.status, invocation.status_details) == ("TimedOut", "DeliveryTimedOut")
        assert (
            invocation.reason == "The node did not start the command before its delivery timeout."
        )
        assert invocation.finished_at == command.expires_after + SECOND
    assert message_of(sent).state == MessageState.EXPIRED
    assert not NodeMessage.objects.filter(node_id=unsent.node_id).exists()
    command = settled(command)
    assert (command.status, command.status_details) == ("TimedOut", "DeliveryTimedOut")
    assert (command.delivery_timed_out_count, command.error_count) == (2, 0)
    assert command.finished_at is not None


def test_an_agent_may_not_start_a_message_expired_by_the_sweep(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    [message] = fetch(agent)
    sweep(now=command.expires_after + SECOND)
    refused = ack(agent, message["message_id"])
    assert refused.status_code == 404
    assert refused.json()["error"] == protocol.ERROR_NOT_FOUND
    assert of(agent).status_details == "DeliveryTimedOut"


def test_a_message_not_yet_fetched_is_expired_and_never_delivered(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    sweep(now=command.expires_after + SECOND)
    assert message_of(agent).state == MessageState.EXPIRED
    assert fetch(agent) == []


def test_an_invocation_the_agent_started_is_left_alone_at_the_delivery_deadline(admin, two):
    command = send(admin, instance_ids=[a.node_id for a in two])
    first, second = two
    start(first)
    sweep(now=command.expires_after + SECOND)
    assert of(first).status == "InProgress"
    assert message_of(first).state == MessageState.ACKED
    assert of(second).status_details == "DeliveryTimedOut"
    assert settled(command).status == "InProgress"


def test_a_delivery_timeout_within_max_errors_ends_the_command_incomplete(admin, two):
    command = send(admin, instance_ids=[a.node_id for a in two], max_errors="1")
    run(two[0])
    sweep(now=command.expires_after + SECOND)
    command = settled(command)
    assert (command.status, command.status_details) == ("Failed", "Incomplete")
    assert command.delivery_timed_out_count == 1


def test_delivery_timeouts_do_not_stop_rate_control_as_errors_do(admin, activation):
    three = agents_register(activation, 3)
    send(admin, instance_ids=[a.node_id for a in three], max_concurrency="1", max_errors="0")
    [first] = busy(three)
    # Only the first node's message passes its deadline (its agent never fetched it).
    NodeMessage.objects.filter(node_id=first.node_id).update(deliver_before=timezone.now() - SECOND)
    fetch(first)  # the fetch finds it late and expires it
    assert message_of(first).state == MessageState.EXPIRED
    sweep()
    assert of(first).status_details == "DeliveryTimedOut"
    [second] = busy(three)
    assert second is not first


# --- Undeliverable --------------------------------------------------------------------------


def test_a_node_deregistered_before_it_started_is_undeliverable(admin, two):
    first, second = two
    command = send(admin, instance_ids=[a.node_id for a in two])
    with committing():
        node_deregister(principal=admin, node_id=first.node_id)
    assert message_of(first).state == MessageState.CANCELLED
    assert sweep() == 1
    invocation = of(first)
    assert (invocation.status, invocation.status_details) == ("Failed", "Undeliverable")
    assert "deregistered" in invocation.reason
    run(second)
    command = settled(command)
    # Undeliverable is not an error against MaxErrors, but not a success either.
    assert command.error_count == 0
    assert (command.status, command.status_details) == ("Failed", "Incomplete")


def test_an_undeliverable_node_frees_its_slot_without_stopping_the_command(admin, two):
    command = send(
        admin, instance_ids=[a.node_id for a in two], max_concurrency="1", max_errors="0"
    )
    [first] = busy(two)
    with committing():
        node_deregister(principal=admin, node_id=first.node_id)
    sweep()
    [second] = busy(two)
    assert second is not first
    run(second)
    assert settled(command).status_details == "Incomplete"


def test_a_node_deregistered_while_waiting_its_turn_is_undeliverable_at_once(admin, two):
    command = send(admin, instance_ids=[a.node_id for a in two], max_concurrency="1")
    [first] = busy(two)
    [later] = [a for a in two if a is not first]
    with committing():
        node_deregister(principal=admin, node_id=later.node_id)
    run(first)
    sweep()
    assert of(later).status_details == "Undeliverable"
    assert settled(command).is_terminal


def test_a_run_on_a_node_deregistered_meanwhile_ends(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    start(agent)
    with committing():
        node_deregister(principal=admin, node_id=agent.node_id)
    sweep()
    assert of(agent).is_terminal
    assert settled(command).is_terminal


# --- Silent runs ----------------------------------------------------------------------------


def test_a_run_silent_past_its_execution_timeout_and_grace_times_out(admin, agent):
    command = send(
        admin,
        instance_ids=[agent.node_id],
        parameters={"commands": ["sleep 1000"], "executionTimeout": ["60"]},
    )
    message = start(agent)
    started_at = of(agent).started_at
    deadline = started_at + timedelta(seconds=60) + EXECUTION_GRACE
    assert sweep(now=deadline - SECOND) == 0
    assert of(agent).status == "InProgress"
    assert sweep(now=deadline + SECOND) == 1
    invocation = of(agent)
    assert (invocation.status, invocation.status_details) == ("TimedOut", "ExecutionTimedOut")
    assert "within the execution timeout" in invocation.reason
    command = settled(command)
    assert (command.status, command.error_count) == ("Failed", 1)
    # A reply arriving after that changes nothing: the first end stands.
    late = reply(agent, message["message_id"], result("Success"))
    assert late.status_code == 200
    assert of(agent).status_details == "ExecutionTimedOut"
    assert settled(command).status == "Failed"


def test_a_silent_run_is_measured_from_its_start_not_the_send(admin, agent):
    command = send(
        admin,
        instance_ids=[agent.node_id],
        parameters={"commands": ["ls"], "executionTimeout": ["60"]},
    )
    start(agent)
    Invocation.objects.update(started_at=command.requested_at + timedelta(hours=1))
    assert sweep(now=command.requested_at + timedelta(hours=1, minutes=5)) == 0


# --- Stalled commands and settling ----------------------------------------------------------


def test_the_sweep_sends_what_a_crash_left_unsent(admin, two):
    command = send(admin, instance_ids=[a.node_id for a in two], max_concurrency="1")
    [first] = busy(two)
    start(first)
    # Rows as a crash mid-way could leave them: one invocation ended, the next not sent.
    Invocation.objects.filter(node_id=first.node_id).update(
        status="Success", status_details="Success", finished_at=timezone.now()
    )
    sweep()
    [second] = busy(two)
    assert second is not first
    assert settled(command).dispatch_complete


def test_the_sweep_refreshes_the_counts_of_a_running_command(admin, two):
    first, second = two
    command = send(admin, instance_ids=[a.node_id for a in two])
    run(first)
    start(second)
    sweep()
    command = settled(command)
    assert (command.status, command.completed_count) == ("InProgress", 1)


def test_the_sweep_makes_a_command_whose_invocations_all_ended_terminal(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    Invocation.objects.update(
        status="Success", status_details="Success", finished_at=timezone.now()
    )
    sweep()
    command = settled(command)
    assert (command.status, command.completed_count) == ("Success", 1)
    assert command.finished_at is not None


def test_a_second_sweep_ends_nothing_more(admin, two):
    command = send(admin, instance_ids=[a.node_id for a in two])
    later = command.expires_after + SECOND
    assert sweep(now=later) == 2
    assert sweep(now=later) == 0
    assert settled(command).status == "TimedOut"


def test_the_celery_task_runs_the_sweep(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    Command.objects.update(expires_after=timezone.now() - SECOND)
    with committing():
        assert tasks.sweep() == 1
    assert settled(command).status_details == "DeliveryTimedOut"
