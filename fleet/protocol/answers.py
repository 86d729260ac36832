"""What agents answer to messages: the ack (journaled, about to run) and the terminal reply.

Both come in batches: the agent websocket's consumers gather the acks and replies of every
agent connected to one process and record each batch in one transaction of a few statements
(fleet.protocol.socket_batches), while an HTTP ack or reply is a batch of one. Each entry gets
its own outcome; one entry's refusal never spoils another's.

Rows are locked in primary-key order, so two batches touching the same messages wait for
each other instead of deadlocking; the handlers registered by later apps
(fleet.protocol.messages) run in the batch's transaction with every message of their kind.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from django.db import transaction
from django.db.models import Case, F, PositiveIntegerField, When
from django.utils import timezone

from bosun.lib.bulk_update import bulk_update_rows
from fleet.models import TERMINAL_MESSAGE_STATES, MessageState, NodeMessage
from fleet.protocol.errors import refusal
from fleet.protocol.messages import ack_handlers_run, reply_handlers_run

_WITHDRAWN = (MessageState.EXPIRED, MessageState.CANCELLED)
_STARTABLE = (MessageState.PENDING, MessageState.LEASED)


@dataclass(frozen=True)
class Ack:
    node_id: str
    message_id: str


@dataclass(frozen=True)
class Reply:
    node_id: str
    message_id: str
    status: str
    result: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """One entry's answer: the message's state (and for a reply, whether it was the first),
    or the refusal the agent must hear."""

    message_id: str
    state: str = ""
    accepted: bool = False
    error: ProtocolError | None = None

    def answer(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"message_id": self.message_id, "state": self.state}


def _not_found(message_id: str) -> ProtocolError:
    return refusal(protocol.ERROR_NOT_FOUND, f"no message {message_id[:40]} for this node")


def _withdrawn(message: NodeMessage) -> ProtocolError:
    return refusal(
        protocol.ERROR_NOT_FOUND,
        f"message {message.message_id} was withdrawn ({message.state}); do not run it",
    )


def _parsed(message_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(message_id)
    except ValueError:
        return None


def _locked_rows(entries: Sequence[Ack | Reply]) -> dict[uuid.UUID, NodeMessage]:
    """The named messages, locked until the caller's transaction ends, by id."""
    ids = {parsed for entry in entries if (parsed := _parsed(entry.message_id)) is not None}
    if not ids:
        return {}
    rows = NodeMessage.objects.select_for_update().filter(message_id__in=ids).order_by("pk")
    return {row.message_id: row for row in rows}


def _own(rows: dict[uuid.UUID, NodeMessage], entry: Ack | Reply) -> NodeMessage | None:
    """The node's own message; another node's is as unknown as a missing one."""
    parsed = _parsed(entry.message_id)
    message = rows.get(parsed) if parsed is not None else None
    return message if message is not None and message.node_id == entry.node_id else None


def messages_ack(acks: Sequence[Ack]) -> list[Outcome]:
    """The agents have journaled these messages and will not run them twice (idempotent).

    A message withdrawn before it was acked (expired, cancelled, or past its delivery
    deadline now) is refused as not found, which tells the agent not to run it.
    """
    now = timezone.now()
    outcomes: list[Outcome] = []
    with transaction.atomic():
        rows = _locked_rows(acks)
        starting: dict[int, NodeMessage] = {}
        pushed: list[int] = []  # acked without a fetch: the push was their delivery
        late: list[int] = []
        for entry in acks:
            message = _own(rows, entry)
            if message is None:
                outcomes.append(Outcome(entry.message_id, error=_not_found(entry.message_id)))
                continue
            if message.state in _STARTABLE and message.pk not in starting:
                if message.deliver_before is not None and message.deliver_before <= now:
                    # Pushed or fetched in time, acked too late: the sender gave up on it.
                    message.state, message.completed_at = MessageState.EXPIRED, now
                    late.append(message.pk)
                else:
                    if message.state == MessageState.PENDING:
                        pushed.append(message.pk)
                        message.delivery_count += 1
                    message.state, message.acked_at = MessageState.ACKED, now
                    starting[message.pk] = message
            if message.state in _WITHDRAWN and message.acked_at is None:
                outcomes.append(Outcome(entry.message_id, error=_withdrawn(message)))
            else:
                outcomes.append(Outcome(str(message.message_id), state=message.state))
        if late:
            NodeMessage.objects.filter(pk__in=late).update(
                state=MessageState.EXPIRED, completed_at=now
            )
        if starting:
            NodeMessage.objects.filter(pk__in=list(starting)).update(
                state=MessageState.ACKED,
                acked_at=now,
                delivery_count=Case(
                    When(pk__in=pushed, then=F("delivery_count") + 1),
                    default=F("delivery_count"),
                    output_field=PositiveIntegerField(),
                ),
            )
            ack_handlers_run(list(starting.values()))
    return outcomes


def messages_reply(replies: Sequence[Reply]) -> list[Outcome]:
    """Record terminal replies; the first reply to a message wins, later ones are answered
    `accepted: False` with the state the message already has."""
    for entry in replies:
        if entry.status not in protocol.REPLY_STATUSES:
            raise ValueError(f"unknown reply status {entry.status!r}")
    now = timezone.now()
    outcomes: list[Outcome] = []
    with transaction.atomic():
        rows = _locked_rows(replies)
        ending: dict[int, NodeMessage] = {}
        for entry in replies:
            message = _own(rows, entry)
            if message is None:
                outcomes.append(Outcome(entry.message_id, error=_not_found(entry.message_id)))
                continue
            won = message.state not in TERMINAL_MESSAGE_STATES and message.pk not in ending
            if won:
                message.state = (
                    MessageState.SUCCEEDED
                    if entry.status == protocol.REPLY_SUCCESS
                    else MessageState.FAILED
                )
                message.result, message.completed_at = entry.result, now
                message.acked_at = message.acked_at or now
                ending[message.pk] = message
            outcomes.append(Outcome(str(message.message_id), state=message.state, accepted=won))
        if ending:
            bulk_update_rows(list(ending.values()), ["state", "result", "completed_at", "acked_at"])
            reply_handlers_run(list(ending.values()))
    return outcomes


def message_ack(*, node_id: str, message_id: str) -> Outcome:
    (outcome,) = messages_ack([Ack(node_id, message_id)])
    return outcome


def message_reply(*, node_id: str, message_id: str, status: str, result: dict[str, Any]) -> Outcome:
    (outcome,) = messages_reply([Reply(node_id, message_id, status, result)])
    return outcome
