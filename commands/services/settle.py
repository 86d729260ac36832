"""A command's status and counts, worked out from its invocations (the record).

Run after each commit that ends invocations: the reply that ends the last open invocation
cannot see the others' uncommitted ends, so settling happens after commit, from fresh rows;
whichever settle runs last sees them all. The sweep settles too, as a backstop.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from commands import statuses
from commands.models import (
    OPEN_INVOCATION_STATUSES,
    TERMINAL_INVOCATION_STATUSES,
    Command,
    CommandStatus,
    Invocation,
    InvocationStatus,
)


def command_settle(command_pk: int) -> None:
    rows = (
        Invocation.objects.filter(command_id=command_pk)
        .order_by()
        .values_list("status", "status_details")
        .annotate(n=Count("pk"))
    )
    total = completed = errors = delivery_timed_out = succeeded = started = 0
    for status, details, n in rows:
        total += n
        if status in TERMINAL_INVOCATION_STATUSES:
            completed += n
        if (status == InvocationStatus.FAILED and details != statuses.UNDELIVERABLE) or (
            details == statuses.EXECUTION_TIMED_OUT
        ):
            errors += n
        if details == statuses.DELIVERY_TIMED_OUT:
            delivery_timed_out += n
        if status == InvocationStatus.SUCCESS:
            succeeded += n
        if status != InvocationStatus.PENDING:
            started += n
    command = Command.objects.filter(pk=command_pk).first()
    if command is None:
        return
    status, details = _status(
        command, total, completed, errors, delivery_timed_out, succeeded, started
    )
    changes = {
        "status": status,
        "status_details": details,
        "completed_count": completed,
        "error_count": errors,
        "delivery_timed_out_count": delivery_timed_out,
    }
    if all(getattr(command, name) == value for name, value in changes.items()):
        return
    if status in (
        CommandStatus.SUCCESS,
        CommandStatus.FAILED,
        CommandStatus.CANCELLED,
        CommandStatus.TIMED_OUT,
    ):
        changes["finished_at"] = command.finished_at or timezone.now()
    Command.objects.filter(pk=command_pk).update(**changes)


def command_settle_on_commit(command_pk: int, *, known_running: bool = False) -> None:
    """`known_running`: the caller read the command InProgress with no cancel requested, so
    only its end can change its status (one query saved on every reply)."""
    transaction.on_commit(lambda: _settle_if_due(command_pk, known_running))


def _settle_if_due(command_pk: int, known_running: bool = False) -> None:
    """Settle when the command may have ended, or has just begun; in between, counts are
    refreshed by the sweep every few seconds (pages count invocations live), so a thousand
    replies do not queue a thousand updates on one command row."""
    still_open = Invocation.objects.filter(
        command_id=command_pk, status__in=OPEN_INVOCATION_STATUSES
    ).exists()
    if still_open and known_running:
        return
    # A cancel request is a change of the command's own status (InProgress → Cancelling).
    running = Q(status=CommandStatus.IN_PROGRESS, cancel_requested_at__isnull=True) | Q(
        status=CommandStatus.CANCELLING
    )
    if still_open and Command.objects.filter(running, pk=command_pk).exists():
        return
    command_settle(command_pk)


def _status(
    command: Command,
    total: int,
    completed: int,
    errors: int,
    delivery_timed_out: int,
    succeeded: int,
    started: int,
) -> tuple[str, str]:
    if completed < total:
        if command.cancel_requested_at is not None:
            return CommandStatus.CANCELLING, statuses.CANCELLING
        if started == 0:
            return CommandStatus.PENDING, statuses.PENDING
        return CommandStatus.IN_PROGRESS, statuses.IN_PROGRESS
    if command.cancel_requested_at is not None:
        return CommandStatus.CANCELLED, statuses.CANCELLED
    if errors > command.error_limit:
        return CommandStatus.FAILED, statuses.FAILED
    if succeeded == total:
        return CommandStatus.SUCCESS, statuses.SUCCESS
    if delivery_timed_out and delivery_timed_out + errors > command.error_limit:
        return CommandStatus.TIMED_OUT, statuses.DELIVERY_TIMED_OUT
    return CommandStatus.FAILED, statuses.INCOMPLETE
