"""Cancelling a command, on all its nodes or some.

What was never sent is cancelled outright. What was sent but not started is withdrawn from
the node's queue (the agent's ack is then refused, so it never runs). What is running is
marked Cancelling and the agent is told to kill its process group; its reply ends it
Cancelled (or with its real result, if it finished first).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from bosun_agent import protocol
from django.db import transaction
from django.utils import timezone

from access.authorization import Principal, authorize
from commands import statuses
from commands.exceptions import CommandAlreadyEnded, InvalidCommandId
from commands.models import OPEN_INVOCATION_STATUSES, Command, Invocation, InvocationStatus
from commands.scope import command_arn
from commands.selectors import invocations_visible
from commands.services.dispatch import command_dispatch
from commands.services.settle import command_settle_on_commit
from fleet.models import MessageState, NodeMessage
from fleet.protocol.messages import message_enqueue

CANCEL = "ssm:CancelCommand"
CANCEL_DELIVER_WITHIN = timedelta(minutes=10)


def command_cancel(
    *, principal: Principal, command_id: str, instance_ids: Sequence[str] | None = None
) -> int:
    """Cancel the command (or its invocations on `instance_ids`); returns how many
    invocations were still open. Nodes the principal may not see are left alone."""
    authorize(principal, CANCEL, command_arn(str(command_id)[:36]))
    now = timezone.now()
    with transaction.atomic():
        command = (
            Command.objects.select_for_update().filter(command_id=str(command_id)[:36]).first()
        )
        if command is None:
            raise InvalidCommandId(f"There is no command {command_id!s:.40}.")
        if command.is_terminal:
            raise CommandAlreadyEnded(
                f"Command {command.command_id} has already ended ({command.status}); there is "
                "nothing left to cancel."
            )
        invocations = invocations_visible(principal=principal, command=command, action=CANCEL)
        if instance_ids:
            invocations = invocations.filter(node_id__in=list(instance_ids))
        elif invocations.count() < command.invocations.count():
            # Some nodes are beyond this principal's reach: cancelling "the command" means
            # the invocations they may touch; the rest go on (and may still be sent).
            instance_ids = list(invocations.values_list("node_id", flat=True))
        else:
            Command.objects.filter(pk=command.pk).update(cancel_requested_at=now)
            command.cancel_requested_at = now
        open_rows = list(
            invocations.filter(status__in=OPEN_INVOCATION_STATUSES).values_list(
                "pk", "node_id", "message_id", "dispatched_at", "started_at"
            )
        )
        never_sent = [pk for pk, _, _, dispatched, _ in open_rows if dispatched is None]
        sent = {
            message_id: pk
            for pk, _, message_id, dispatched, started in open_rows
            if dispatched is not None and started is None
        }
        running = [
            (pk, node_id, message_id)
            for pk, node_id, message_id, _, started in open_rows
            if started is not None
        ]
        withdrawn = _withdraw_messages(list(sent), now)
        ended = never_sent + [sent[message_id] for message_id in withdrawn]
        Invocation.objects.filter(pk__in=ended, status__in=OPEN_INVOCATION_STATUSES).update(
            status=InvocationStatus.CANCELLED,
            status_details=statuses.CANCELLED,
            reason="Cancelled before it started on the node.",
            finished_at=now,
        )
        # Sent ones the agent acked meanwhile are running now: they join the running ones.
        running += [
            (pk, node_id, message_id)
            for pk, node_id, message_id, dispatched, started in open_rows
            if dispatched is not None and started is None and message_id not in withdrawn
        ]
        _stop_running(command, running, now)
        if instance_ids:
            # The cancelled ones freed their slots: the rest of the command goes on.
            command_dispatch(command, now=now)
        else:
            Command.objects.filter(pk=command.pk).update(dispatch_complete=True)
        principal.record(
            CANCEL,
            resources=[command_arn(command.command_id)],
            params={"CommandId": command.command_id, "InstanceIds": list(instance_ids or [])},
        )
        command_settle_on_commit(command.pk)
    return len(open_rows)


def _withdraw_messages(message_ids: list[uuid.UUID], now: datetime) -> set[uuid.UUID]:
    """Take back messages no agent has acked; returns the ids actually withdrawn (an agent
    that acked first keeps its message: that invocation is running)."""
    if not message_ids:
        return set()
    waiting = list(
        NodeMessage.objects.select_for_update()
        .filter(message_id__in=message_ids, state__in=(MessageState.PENDING, MessageState.LEASED))
        .values_list("message_id", flat=True)
    )
    NodeMessage.objects.filter(message_id__in=waiting).update(
        state=MessageState.CANCELLED, completed_at=now
    )
    return set(waiting)


def _stop_running(
    command: Command, running: list[tuple[int, str, uuid.UUID]], now: datetime
) -> None:
    if not running:
        return
    Invocation.objects.filter(
        pk__in=[pk for pk, _, _ in running], status__in=OPEN_INVOCATION_STATUSES
    ).update(status=InvocationStatus.CANCELLING, status_details=statuses.CANCELLING)
    for _, node_id, message_id in running:
        message_enqueue(
            node_ids=[node_id],
            kind=protocol.MESSAGE_CANCEL_COMMAND,
            payload={"message_id": str(message_id), "command_id": command.command_id},
            created_by_arn=command.requested_by_arn,
            deliver_before=now + CANCEL_DELIVER_WITHIN,
        )
