"""Cancelling a command: never sent, sent but not started, running; all of it or some nodes."""

from __future__ import annotations

import pytest
from bosun_agent import protocol

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from commands.exceptions import InvalidCommandId
from commands.models import Command, Invocation
from commands.services.cancel import command_cancel
from commands.services.sweep import commands_sweep
from fleet.models import ManagedNode, MessageState, NodeMessage
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
    step,
)
from tests.factories import NodeTagFactory, user_with_policy
from tests.fleet.protocol.agents import Agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def three(activation) -> list[Agent]:
    return agents_register(activation, 3)


def cancel(principal: Principal, command: Command, **fields) -> int:
    with committing():
        return command_cancel(principal=principal, command_id=command.command_id, **fields)


def of(agent: Agent) -> Invocation:
    return Invocation.objects.get(node_id=agent.node_id)


def settled(command: Command) -> Command:
    command.refresh_from_db()
    return command


def cancel_messages() -> list[NodeMessage]:
    return list(NodeMessage.objects.filter(kind=protocol.MESSAGE_CANCEL_COMMAND))


# --- Whole commands -------------------------------------------------------------------------


def test_invocations_never_sent_are_cancelled_outright(admin, three):
    command = send(admin, instance_ids=[a.node_id for a in three], max_concurrency="1")
    assert cancel(admin, command) == 3
    never_sent = command.invocations.filter(dispatched_at__isnull=True)
    assert never_sent.count() == 2
    for invocation in never_sent:
        assert (invocation.status, invocation.status_details) == ("Cancelled", "Cancelled")
        assert invocation.reason == "Cancelled before it started on the node."
    assert NodeMessage.objects.filter(kind="RunCommand").count() == 1
    command = settled(command)
    assert (command.status, command.status_details) == ("Cancelled", "Cancelled")
    assert command.cancel_requested_at is not None and command.finished_at is not None
    assert command.dispatch_complete


def test_a_sent_message_not_yet_acked_is_withdrawn_and_the_agent_may_not_start_it(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    [message] = fetch(agent)  # leased, not acked
    cancel(admin, command)
    assert NodeMessage.objects.get(kind="RunCommand").state == MessageState.CANCELLED
    assert (of(agent).status, of(agent).status_details) == ("Cancelled", "Cancelled")
    refused = ack(agent, message["message_id"])
    assert refused.status_code == 404
    assert refused.json()["error"] == protocol.ERROR_NOT_FOUND
    assert "withdrawn" in refused.json()["message"]
    assert of(agent).status == "Cancelled"
    assert settled(command).status == "Cancelled"
    assert not cancel_messages()


def test_a_message_not_yet_fetched_is_withdrawn_and_never_delivered(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    cancel(admin, command)
    assert fetch(agent, kind=None) == []
    assert settled(command).status == "Cancelled"


def test_a_delayed_invocation_of_an_offline_node_is_withdrawn(admin, agent):
    ManagedNode.objects.filter(pk=agent.node_id).update(status="ConnectionLost")
    command = send(admin, instance_ids=[agent.node_id])
    assert of(agent).status == "Delayed"
    cancel(admin, command)
    assert of(agent).status == "Cancelled"
    assert settled(command).status == "Cancelled"


def test_a_running_invocation_is_told_to_stop_and_its_cancelled_reply_ends_it(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    running = start(agent)
    cancel(admin, command)
    assert (of(agent).status, of(agent).status_details) == ("Cancelling", "Cancelling")
    command = settled(command)
    assert (command.status, command.status_details) == ("Cancelling", "Cancelling")
    [stop] = fetch(agent, kind=protocol.MESSAGE_CANCEL_COMMAND)
    assert stop["payload"] == {
        "message_id": running["message_id"],
        "command_id": command.command_id,
    }
    [stop_row] = cancel_messages()
    assert stop_row.created_by_arn == command.requested_by_arn
    assert stop_row.deliver_before is not None
    # The agent kills the run; the run's reply says so, and the cancel's own reply too.
    reply(agent, running["message_id"], result("Cancelled", [step("Cancelled", response_code=-1)]))
    reply(agent, stop["message_id"], {"cancelled": True}, status="Success")
    assert (of(agent).status, of(agent).status_details) == ("Cancelled", "Cancelled")
    command = settled(command)
    assert (command.status, command.status_details) == ("Cancelled", "Cancelled")
    assert command.finished_at is not None


def test_a_run_that_finished_before_the_cancel_reached_it_keeps_its_result(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    running = start(agent)
    cancel(admin, command)
    reply(agent, running["message_id"], result("Success"))
    assert of(agent).status == "Success"
    # The command was cancelled, so it ends Cancelled even though the one run succeeded.
    assert settled(command).status == "Cancelled"


def test_a_command_with_runs_in_every_state_is_cancelled_in_each_way(admin, three):
    command = send(admin, instance_ids=[a.node_id for a in three], max_concurrency="2")
    running, waiting = busy(three)
    [never] = [a for a in three if a not in (running, waiting)]
    started = start(running)
    assert cancel(admin, command) == 3
    assert of(never).status == "Cancelled" and of(never).dispatched_at is None
    assert of(waiting).status == "Cancelled"
    assert of(running).status == "Cancelling"
    assert len(cancel_messages()) == 1
    assert settled(command).status == "Cancelling"
    reply(running, started["message_id"], result("Cancelled"))
    assert settled(command).status == "Cancelled"


def test_cancelling_is_audited(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    cancel(admin, command)
    event = AuditEvent.objects.get(action="ssm:CancelCommand")
    assert event.outcome == "success"
    assert event.params == {"CommandId": command.command_id, "InstanceIds": []}


def test_a_cancelled_command_stays_cancelled_through_the_sweep(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    cancel(admin, command)
    commands_sweep()
    assert settled(command).status == "Cancelled"


# --- Refusals -------------------------------------------------------------------------------


def test_a_finished_command_cannot_be_cancelled(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    run(agent)
    with pytest.raises(InvalidCommandId, match="already ended"):
        cancel(admin, command)
    assert not AuditEvent.objects.filter(action="ssm:CancelCommand").exists()


def test_a_cancelled_command_cannot_be_cancelled_again(admin, agent):
    command = send(admin, instance_ids=[agent.node_id])
    cancel(admin, command)
    with pytest.raises(InvalidCommandId):
        cancel(admin, command)


def test_an_unknown_command_is_invalid_command_id(admin, db):
    with pytest.raises(InvalidCommandId):
        command_cancel(principal=admin, command_id="00000000-0000-0000-0000-000000000000")


def test_a_user_without_cancel_command_is_denied_and_the_denial_audited(
    admin, agent, outsider_user
):
    command = send(admin, instance_ids=[agent.node_id])
    with pytest.raises(AccessDenied):
        cancel(Principal(user=outsider_user), command)
    assert of(agent).status == "Pending"
    assert AuditEvent.objects.get(action="ssm:CancelCommand").outcome == "denied"


# --- Some nodes -----------------------------------------------------------------------------


def test_cancelling_some_nodes_leaves_the_others_running(admin, three):
    first, second, third = three
    command = send(admin, instance_ids=[a.node_id for a in three])
    runs = {a.node_id: start(a)["message_id"] for a in three}
    assert cancel(admin, command, instance_ids=[first.node_id]) == 1
    assert of(first).status == "Cancelling"
    assert of(second).status == of(third).status == "InProgress"
    command = settled(command)
    assert command.cancel_requested_at is None
    assert command.status == "InProgress"
    [stop] = fetch(first, kind=protocol.MESSAGE_CANCEL_COMMAND)
    assert stop["payload"]["message_id"] == runs[first.node_id]
    assert fetch(second, kind=protocol.MESSAGE_CANCEL_COMMAND) == []
    reply(first, runs[first.node_id], result("Cancelled"))
    reply(second, runs[second.node_id], result("Success"))
    reply(third, runs[third.node_id], result("Success"))
    assert of(first).status == "Cancelled"
    command = settled(command)
    # One node did not succeed, and no error passed MaxErrors: the command is incomplete.
    assert (command.status, command.status_details) == ("Failed", "Incomplete")


def test_a_never_sent_node_cancelled_alone_is_skipped_by_rate_control(admin, three):
    command = send(admin, instance_ids=[a.node_id for a in three], max_concurrency="1")
    order = list(command.invocations.order_by("sequence").values_list("node_id", flat=True))
    by_node = {a.node_id: a for a in three}
    last = by_node[order[2]]
    cancel(admin, command, instance_ids=[last.node_id])
    assert of(last).status == "Cancelled"
    run(by_node[order[0]])
    run(by_node[order[1]])
    assert not NodeMessage.objects.filter(node_id=last.node_id).exists()
    command = settled(command)
    assert command.status == "Failed" and command.completed_count == 3


# May cancel commands, but only on Env=dev nodes.
DEV_CANCELLER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:CancelCommand"],
            "Resource": "arn:aws:ssm:*:*:command/*",
        },
        {
            "Effect": "Allow",
            "Action": ["ssm:CancelCommand"],
            "Resource": "arn:aws:ssm:*:*:managed-instance/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        },
    ],
}


def test_a_tag_scoped_user_cancels_only_the_nodes_they_may(admin, three):
    dev, prod, _ = three
    NodeTagFactory(node_id=dev.node_id, key="Env", value="dev")
    NodeTagFactory(node_id=prod.node_id, key="Env", value="prod")
    command = send(admin, instance_ids=[dev.node_id, prod.node_id])
    scoped = Principal(user=user_with_policy("carl", DEV_CANCELLER_POLICY))
    assert cancel(scoped, command, instance_ids=[dev.node_id, prod.node_id]) == 1
    assert of(dev).status == "Cancelled"
    assert of(prod).status == "Pending"
    assert NodeMessage.objects.get(node_id=prod.node_id, kind="RunCommand").state == "pending"


def test_a_tag_scoped_users_whole_cancel_leaves_the_nodes_they_may_not_see_alone(admin, three):
    dev, *prod = three
    for agent, env in zip(three, ("dev", "prod", "prod"), strict=True):
        NodeTagFactory(node_id=agent.node_id, key="Env", value=env)
    command = send(admin, instance_ids=[a.node_id for a in three], max_concurrency="1")
    scoped = Principal(user=user_with_policy("carl", DEV_CANCELLER_POLICY))
    cancel(scoped, command)
    assert of(dev).status == "Cancelled"
    while waiting := busy(three):
        run(waiting[0])
    assert [of(agent).status for agent in prod] == ["Success", "Success"]
