"""The periodic backstop (beat, every few seconds): ends what nobody else will end.

- Delivery timeouts: invocations not started on their node by the command's deadline
  (sent or never sent) end DeliveryTimedOut, their messages withdrawn.
- Lost messages: a message expired or cancelled by the fleet (the node was deregistered)
  ends its invocation DeliveryTimedOut or Undeliverable.
- Lost agents: an invocation started but silent past its execution timeout plus a grace
  ends ExecutionTimedOut (a reply arriving later is ignored: the first end stands).
- Rate control and settling, for commands a crash left mid-way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from commands import statuses
from commands.models import (
    OPEN_INVOCATION_STATUSES,
    TERMINAL_COMMAND_STATUSES,
    Command,
    Invocation,
    InvocationStatus,
)
from commands.services.dispatch import command_dispatch
from commands.services.settle import command_settle
from fleet.models import MessageState, NodeMessage

# How long past its execution timeout a silent running invocation is given.
EXECUTION_GRACE = timedelta(minutes=5)
BATCH = 1000


def commands_sweep(*, now: datetime | None = None) -> int:
    """Run every backstop once; returns how many invocations it ended."""
    now = now or timezone.now()
    touched: set[int] = set()
    ended = _delivery_timeouts(now, touched)
    ended += _lost_messages(now, touched)
    ended += _silent_runs(now, touched)
    for command_pk in (
        Command.objects.filter(dispatch_complete=False)
        .exclude(status__in=TERMINAL_COMMAND_STATUSES)
        .values_list("pk", flat=True)
    ):
        with transaction.atomic():
            command = Command.objects.select_for_update().get(pk=command_pk)
            command_dispatch(command, now=now)
        touched.add(command_pk)
    for command_pk in touched | set(
        Command.objects.exclude(status__in=TERMINAL_COMMAND_STATUSES).values_list("pk", flat=True)
    ):
        command_settle(command_pk)
    return ended


def _end(pks: list[int], details: str, status: str, reason: str, now: datetime) -> int:
    return Invocation.objects.filter(pk__in=pks, status__in=OPEN_INVOCATION_STATUSES).update(
        status=status, status_details=details, reason=reason, finished_at=now
    )


def _delivery_timeouts(now: datetime, touched: set[int]) -> int:
    late = Invocation.objects.filter(
        status__in=OPEN_INVOCATION_STATUSES,
        started_at__isnull=True,
        command__expires_after__lte=now,
    ).values_list("pk", "command_id", "message_id", "dispatched_at")[:BATCH]
    rows = list(late)
    if not rows:
        return 0
    with transaction.atomic():
        sent = [message_id for _, _, message_id, dispatched in rows if dispatched is not None]
        taken = set(
            NodeMessage.objects.select_for_update()
            .filter(message_id__in=sent, state__in=(MessageState.PENDING, MessageState.LEASED))
            .values_list("message_id", flat=True)
        )
        NodeMessage.objects.filter(message_id__in=taken).update(
            state=MessageState.EXPIRED, completed_at=now
        )
        # Never sent, or sent and withdrawn now; a message acked meanwhile is running.
        pks = [
            pk
            for pk, _, message_id, dispatched in rows
            if dispatched is None or message_id in taken
        ]
        ended = _end(
            pks,
            statuses.DELIVERY_TIMED_OUT,
            InvocationStatus.TIMED_OUT,
            "The node did not start the command before its delivery timeout.",
            now,
        )
    touched.update(command_pk for _, command_pk, _, _ in rows)
    return ended


def _lost_messages(now: datetime, touched: set[int]) -> int:
    rows = list(
        Invocation.objects.filter(status__in=OPEN_INVOCATION_STATUSES, dispatched_at__isnull=False)
        .filter(
            message_id__in=NodeMessage.objects.filter(
                state__in=(MessageState.EXPIRED, MessageState.CANCELLED), kind="RunCommand"
            ).values("message_id")
        )
        .values_list("pk", "command_id", "message_id", "started_at")[:BATCH]
    )
    if not rows:
        return 0
    states = dict(
        NodeMessage.objects.filter(message_id__in=[m for _, _, m, _ in rows]).values_list(
            "message_id", "state"
        )
    )
    expired = [pk for pk, _, m, _ in rows if states.get(m) == MessageState.EXPIRED]
    cancelled = [
        pk for pk, _, m, started in rows if states.get(m) == MessageState.CANCELLED and not started
    ]
    # Cancelled under a running command: the node was deregistered while it ran.
    cut_off = [
        pk for pk, _, m, started in rows if states.get(m) == MessageState.CANCELLED and started
    ]
    ended = _end(
        expired,
        statuses.DELIVERY_TIMED_OUT,
        InvocationStatus.TIMED_OUT,
        "The node did not start the command before its delivery timeout.",
        now,
    )
    ended += _end(
        cancelled,
        statuses.UNDELIVERABLE,
        InvocationStatus.FAILED,
        "The command could not be delivered: the node was deregistered.",
        now,
    )
    ended += _end(
        cut_off,
        statuses.FAILED,
        InvocationStatus.FAILED,
        "The node was deregistered while it ran the command; its result will never come.",
        now,
    )
    touched.update(command_pk for _, command_pk, _, _ in rows)
    return ended


def _silent_runs(now: datetime, touched: set[int]) -> int:
    candidates = Invocation.objects.filter(
        status__in=OPEN_INVOCATION_STATUSES, started_at__lt=now - EXECUTION_GRACE
    ).values_list("pk", "command_id", "started_at", "command__execution_timeout")[:BATCH]
    rows = [
        (pk, command_pk)
        for pk, command_pk, started_at, timeout in candidates
        if started_at is not None
        and started_at + EXECUTION_GRACE + timedelta(seconds=timeout) < now
    ]
    if not rows:
        return 0
    ended = _end(
        [pk for pk, _ in rows],
        statuses.EXECUTION_TIMED_OUT,
        InvocationStatus.TIMED_OUT,
        "No result from the agent within the execution timeout (plus 5 minutes): the agent "
        "or its node stopped while running the command.",
        now,
    )
    touched.update(command_pk for _, command_pk in rows)
    return ended
