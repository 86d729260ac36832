"""What agents report about invocations: started (the ack) and the result (the reply).

Both run inside fleet's transaction for a batch of acks or replies (fleet.protocol.answers;
a batch of one over HTTP, many over the agents' websockets), so the invocations' new states
commit with the messages', or none does. The reply also frees a
rate-control slot, so the next invocations are sent in that same transaction: a process
dying between "one finished" and "the next sent" is impossible.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from django.utils import timezone

from bosun.lib.bulk_update import bulk_update_rows
from commands import statuses
from commands.models import (
    Command,
    CommandStatus,
    Invocation,
    InvocationStatus,
)
from commands.output import STREAMS, chunked_invocations, streams_finalize
from commands.services.dispatch import command_dispatch
from commands.services.settle import command_settle_on_commit
from fleet.models import MessageState, NodeMessage
from fleet.protocol.facts import node_facts_store
from fleet.protocol.messages import register_ack_handler, register_reply_handler
from fleet.protocol.validation import facts_clean
from fleet.timeline import node_event_record

logger = logging.getLogger(__name__)

# The run's outcome as the agent reports it → (status, fine status).
OUTCOMES = {
    protocol.STEP_SUCCESS: (InvocationStatus.SUCCESS, statuses.SUCCESS),
    protocol.STEP_FAILED: (InvocationStatus.FAILED, statuses.FAILED),
    protocol.STEP_TIMED_OUT: (InvocationStatus.TIMED_OUT, statuses.EXECUTION_TIMED_OUT),
    protocol.STEP_CANCELLED: (InvocationStatus.CANCELLED, statuses.CANCELLED),
}
STEP_STATUSES = (*protocol.RUN_OUTCOMES, protocol.STEP_SKIPPED)
_MAX_TEXT = 2000
# An agent's error can be longer than the column; what fits is kept.
_REASON_LENGTH = Invocation._meta.get_field("reason").max_length or _MAX_TEXT
# Offsets are stored as 32-bit integers (as the output endpoint bounds them).
MAX_OFFSET = 2**31


def register() -> None:
    register_ack_handler(protocol.MESSAGE_RUN_COMMAND, invocations_started)
    register_reply_handler(protocol.MESSAGE_RUN_COMMAND, invocations_replied)


def invocations_started(messages: list[NodeMessage]) -> None:
    """The agents acked these RunCommand messages: their invocations are InProgress."""
    waiting = Invocation.objects.filter(
        message_id__in=[m.message_id for m in messages],
        status__in=(InvocationStatus.PENDING, InvocationStatus.DELAYED),
    )
    # order_by(): the model's ordering ("command", ...) would JOIN the command table to sort.
    command_pks = set(waiting.order_by().values_list("command_id", flat=True))
    if not command_pks:
        return
    # One batch's acks share their time.
    acked_at = messages[0].acked_at or timezone.now()
    waiting.update(
        status=InvocationStatus.IN_PROGRESS,
        status_details=statuses.IN_PROGRESS,
        started_at=acked_at,
    )
    # A started invocation makes a Pending command InProgress (what settle would conclude);
    # nothing else about the command changes when a node starts.
    Command.objects.filter(pk__in=command_pks, status=CommandStatus.PENDING).update(
        status=CommandStatus.IN_PROGRESS, status_details=statuses.IN_PROGRESS
    )


def invocations_replied(messages: list[NodeMessage]) -> None:
    """End the invocations these replies answer, send what their freed slots allow, settle."""
    by_message = {m.message_id: m for m in messages}
    invocations = [
        invocation
        for invocation in Invocation.objects.select_related("command")
        .select_for_update(of=("self",))
        .filter(message_id__in=list(by_message))
        .order_by("pk")
        if not invocation.is_terminal  # ended on the server's side (a timeout): that stands
    ]
    if not invocations:
        return
    with_chunks = chunked_invocations(invocations)
    now = timezone.now()
    for invocation in invocations:
        _end(invocation, by_message[invocation.message_id], invocation.pk in with_chunks, now)
    bulk_update_rows(
        invocations,
        [
            "status",
            "status_details",
            "response_code",
            "reason",
            "steps",
            "finished_at",
            "started_at",
        ],
    )
    commands = {invocation.command_id: invocation.command for invocation in invocations}
    for command in commands.values():
        if not command.dispatch_complete:
            locked = Command.objects.select_for_update().get(pk=command.pk)
            command_dispatch(locked, now=now)
        # Read with the invocation: a command already running needs no settling until its end.
        running = (
            command.status == CommandStatus.IN_PROGRESS and command.cancel_requested_at is None
        )
        command_settle_on_commit(command.pk, known_running=running)


def _end(invocation: Invocation, message: NodeMessage, has_chunks: bool, now: datetime) -> None:
    """Fill in the invocation's end from its reply (saved by the caller)."""
    result = message.result if isinstance(message.result, dict) else {}
    status, details, response_code, reason, steps = _outcome(message.state, result)
    invocation.steps = streams_finalize(invocation, steps, has_chunks=has_chunks)
    invocation.status, invocation.status_details = status, details
    invocation.response_code, invocation.reason = response_code, reason[:_REASON_LENGTH]
    invocation.finished_at = now
    invocation.started_at = invocation.started_at or message.acked_at or now
    _store_facts(invocation, steps)


def _outcome(
    state: str, result: dict[str, Any]
) -> tuple[str, str, int | None, str, list[dict[str, Any]]]:
    """(status, fine status, response code, reason, steps) from a reply's result."""
    steps = result.get("steps")
    if state != MessageState.SUCCEEDED and not isinstance(steps, list):
        reason = _text(result.get("error")) or "The agent reported a failure without details."
        return InvocationStatus.FAILED, statuses.FAILED, None, reason, []
    try:
        clean = [_step(entry) for entry in steps] if isinstance(steps, list) else []
    except ProtocolError as exc:
        logger.warning("a RunCommand reply was malformed: %s", exc.message)
        return InvocationStatus.FAILED, statuses.FAILED, None, f"Malformed reply: {exc.message}", []
    outcome = result.get("outcome")
    if outcome not in OUTCOMES:
        outcome = protocol.STEP_SUCCESS if state == MessageState.SUCCEEDED else protocol.STEP_FAILED
    status, details = OUTCOMES[outcome]
    code = _number(result.get("response_code"))
    response_code = code if code is not None and -(2**31) <= code < 2**31 else None
    return status, details, response_code, _text(result.get("error")), clean


def _step(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ProtocolError(protocol.ERROR_BAD_REQUEST, "a step report is not an object")
    status = entry.get("status")
    if status not in STEP_STATUSES:
        raise ProtocolError(protocol.ERROR_BAD_REQUEST, f"unknown step status {status!r:.40}")
    step: dict[str, Any] = {
        "name": _text(entry.get("name"))[:100],
        "action": _text(entry.get("action"))[:64],
        "status": status,
        "status_details": _text(entry.get("status_details"))[:200],
        "response_code": _number(entry.get("response_code")),
        "started_at": _number(entry.get("started_at"), whole=False),
        "finished_at": _number(entry.get("finished_at"), whole=False),
    }
    for stream in STREAMS:
        raw = entry.get(stream)
        report: dict[str, Any] = raw if isinstance(raw, dict) else {}
        data = report.get("data")
        offset = max(0, _number(report.get("offset")) or 0)
        if offset >= MAX_OFFSET:
            raise ProtocolError(protocol.ERROR_BAD_REQUEST, f"the {stream} offset is out of range")
        length = _number(report.get("length"))
        step[stream] = {
            # None when the agent did not say: then stored chunks are looked for.
            "length": max(0, length) if isinstance(length, int) else None,
            "offset": offset,
            "data": data if isinstance(data, str) else "",
            "dropped_bytes": max(0, _number(report.get("dropped_bytes")) or 0),
        }
    if isinstance(entry.get("facts"), dict):
        step["facts"] = entry["facts"]
    return step


def _number(value: Any, *, whole: bool = True) -> Any:
    if isinstance(value, bool):
        return None
    if whole:
        return value if isinstance(value, int) else None
    if not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        raise ProtocolError(protocol.ERROR_BAD_REQUEST, "a time is out of range") from None


def _text(value: Any) -> str:
    return value[:_MAX_TEXT] if isinstance(value, str) else ""


def _store_facts(invocation: Invocation, steps: list[dict[str, Any]]) -> None:
    """A bosun:refreshHostFacts step reports the node's facts: Fleet Manager takes them."""
    for step in steps:
        if step.get("action") != protocol.ACTION_REFRESH_HOST_FACTS or "facts" not in step:
            continue
        try:
            facts = facts_clean(step["facts"])
        except ProtocolError as exc:
            logger.info("facts from command %s ignored: %s", invocation.command_id, exc.message)
            continue
        node_facts_store(node_id=invocation.node_id, facts=facts)
        node_event_record(
            invocation.node_id,
            kind="facts_refreshed",
            summary=f"Host facts refreshed by command {invocation.command.command_id}",
        )
