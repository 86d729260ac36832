"""Rate control: which invocations of a command go out now, and when sending must stop.

Called with the command's row locked (select_for_update), from the send, from each reply
that frees a slot, and from the sweep; so two callers never send the same slot twice, and a
process dying between them loses nothing: the rows say what is left to send.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from bosun_agent import protocol
from django.db.models import Count, Q

from commands import statuses
from commands.models import OPEN_INVOCATION_STATUSES, Command, InvocationStatus
from fleet.models import NodeStatus
from fleet.protocol.messages import message_enqueue


def command_dispatch(command: Command, *, now: datetime) -> int:
    """Send what MaxConcurrency allows; after MaxErrors, withdraw the rest. Returns how many
    invocations were sent. The caller holds the command's row lock and owns the transaction."""
    if command.dispatch_complete:
        return 0
    invocations = command.invocations.all()
    counts = invocations.aggregate(
        in_flight=Count(
            "pk", filter=Q(dispatched_at__isnull=False, status__in=OPEN_INVOCATION_STATUSES)
        ),
        errors=Count("pk", filter=statuses.ERROR_Q),
    )
    undispatched = invocations.filter(dispatched_at__isnull=True, status=InvocationStatus.PENDING)
    if command.cancel_requested_at is not None or counts["errors"] > command.error_limit:
        _withdraw(command, now)
        return 0
    room = command.concurrency_limit - counts["in_flight"]
    sent = 0
    while room > 0:
        batch = list(
            undispatched.order_by("sequence").values_list(
                "pk", "node_id", "message_id", "node__status"
            )[:room]
        )
        if not batch:
            break
        gone = [pk for pk, _, _, status in batch if status == NodeStatus.DEREGISTERED]
        live = [row for row in batch if row[0] not in gone]
        _undeliverable(command, gone, now)
        _send(command, live, now)
        sent += len(live)
        room -= len(live)
        if len(batch) < room + len(live):
            break  # fewer were waiting than there was room for: all are out
    if not undispatched.exists():
        Command.objects.filter(pk=command.pk).update(dispatch_complete=True)
        command.dispatch_complete = True
    return sent


def _send(command: Command, batch: list[tuple[int, str, uuid.UUID, str]], now: datetime) -> None:
    if not batch:
        return
    offline = [pk for pk, _, _, status in batch if status != NodeStatus.ONLINE]
    online = [pk for pk, _, _, status in batch if status == NodeStatus.ONLINE]
    invocations = command.invocations.all()
    invocations.filter(pk__in=online).update(dispatched_at=now)
    # An offline node's message waits for it: AWS calls that Delayed.
    invocations.filter(pk__in=offline).update(
        dispatched_at=now, status=InvocationStatus.DELAYED, status_details=statuses.DELAYED
    )
    message_enqueue(
        node_ids=[node_id for _, node_id, _, _ in batch],
        message_ids=[message_id for _, _, message_id, _ in batch],
        kind=protocol.MESSAGE_RUN_COMMAND,
        payload=command.payload,
        created_by_arn=command.requested_by_arn,
        deliver_before=command.expires_after,
    )


def _undeliverable(command: Command, pks: list[int], now: datetime) -> None:
    """A node deregistered while its invocation waited its turn: nothing will ever run it.
    (AWS does not count undeliverable nodes against MaxErrors, and neither does Bosun.)"""
    if pks:
        command.invocations.filter(pk__in=pks).update(
            status=InvocationStatus.FAILED,
            status_details=statuses.UNDELIVERABLE,
            reason="Not sent: the node was deregistered before its turn came.",
            dispatched_at=now,
            finished_at=now,
        )


def _withdraw(command: Command, now: datetime) -> None:
    """No more sending: what was never sent ends Terminated (MaxErrors) or Cancelled."""
    if command.cancel_requested_at is not None:
        details, reason = statuses.CANCELLED, "Not sent: the command was cancelled."
    else:
        details = statuses.TERMINATED
        reason = (
            f"Not sent: the command's errors passed MaxErrors ({command.max_errors}), so "
            "no further node was sent the command."
        )
    command.invocations.filter(
        dispatched_at__isnull=True, status__in=OPEN_INVOCATION_STATUSES
    ).update(
        status=InvocationStatus.CANCELLED, status_details=details, reason=reason, finished_at=now
    )
    Command.objects.filter(pk=command.pk).update(dispatch_complete=True)
    command.dispatch_complete = True
