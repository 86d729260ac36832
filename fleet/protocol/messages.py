"""The per-node message queue: what the server asks agents to do, delivered at least once.

Rows are the record (DESIGN.md §2); the agent's websocket is only told to look. An agent
fetches pending messages under a lease, acks the ones it has journaled, and replies once per
message: the first terminal reply wins and later ones are answered `accepted: False`.

Later apps put work in with `message_enqueue()` and react to replies of their own kinds by
`register_reply_handler(kind, handler)` (at import of their module, e.g. in AppConfig.ready).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bosun_agent import protocol
from bosun_agent.protocol import ProtocolError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from fleet.models import TERMINAL_MESSAGE_STATES, ManagedNode, MessageState, NodeMessage
from fleet.protocol.errors import refusal
from fleet.protocol.facts import node_facts_store
from fleet.protocol.validation import facts_clean
from fleet.realtime import wake_agents_on_commit
from fleet.timeline import node_event_record

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=protocol.LEASE_SECONDS)
# States a message can still move out of by the agent's doing.
OPEN_STATES = (MessageState.PENDING, MessageState.LEASED, MessageState.ACKED)
_WITHDRAWN = (MessageState.EXPIRED, MessageState.CANCELLED)

# Called inside the reply's transaction with the message already holding its terminal state
# and result; what it writes commits or rolls back with the reply.
ReplyHandler = Callable[[NodeMessage], None]
_REPLY_HANDLERS: dict[str, ReplyHandler] = {}
# Called inside the ack's transaction when a message moves to acked (the agent started it).
AckHandler = Callable[[NodeMessage], None]
_ACK_HANDLERS: dict[str, AckHandler] = {}


def register_reply_handler(kind: str, handler: ReplyHandler) -> None:
    """Have `handler` called with every accepted terminal reply to messages of `kind`."""
    _REPLY_HANDLERS[kind] = handler


def register_ack_handler(kind: str, handler: AckHandler) -> None:
    """Have `handler` called once per message of `kind`, when the agent first acks it."""
    _ACK_HANDLERS[kind] = handler


# --- Putting work in ------------------------------------------------------------------------


def message_enqueue(
    *,
    node_ids: Iterable[str],
    kind: str,
    payload: dict[str, Any],
    created_by_arn: str = "",
    deliver_before: datetime | None = None,
    message_ids: Sequence[uuid.UUID] | None = None,
) -> list[NodeMessage]:
    """One message per node, in the caller's transaction; connected agents are woken on commit.

    The caller has authorized the work and resolved the nodes (see fleet target resolution).
    `message_ids`, in the order of `node_ids`, are ids the caller has already recorded (a
    command's invocations know theirs before dispatch); by default each message gets a new one.
    """
    ids = list(node_ids)
    if message_ids is None:
        ids = list(dict.fromkeys(ids))
        message_ids = [uuid.uuid4() for _ in ids]
    elif len(message_ids) != len(ids) or len(set(ids)) != len(ids):
        raise ValueError("message_ids must pair one to one with distinct node_ids")
    messages = NodeMessage.objects.bulk_create(
        NodeMessage(
            message_id=message_id,
            node_id=node_id,
            kind=kind,
            payload=payload,
            created_by_arn=created_by_arn,
            deliver_before=deliver_before,
        )
        for node_id, message_id in zip(ids, message_ids, strict=True)
    )
    wake_agents_on_commit(ids)
    return messages


def node_messages_cancel(*, node_id: str) -> int:
    """Cancel what a node has not finished (it was deregistered): nothing is left waiting."""
    return NodeMessage.objects.filter(node_id=node_id, state__in=OPEN_STATES).update(
        state=MessageState.CANCELLED, completed_at=timezone.now()
    )


def messages_expire(*, now: datetime | None = None) -> int:
    """Messages never delivered before their deadline: expired, so nobody waits on them."""
    now = now or timezone.now()
    return NodeMessage.objects.filter(_deliverable(now), deliver_before__lte=now).update(
        state=MessageState.EXPIRED, completed_at=now
    )


# --- The agent's side -----------------------------------------------------------------------


def _deliverable(now: datetime) -> Q:
    # A leased message whose lease ran out unacked goes back to the queue.
    return Q(state=MessageState.PENDING) | Q(state=MessageState.LEASED, lease_expires_at__lt=now)


def node_messages_waiting_count(*, node_id: str, now: datetime | None = None) -> int:
    return NodeMessage.objects.filter(_deliverable(now or timezone.now()), node_id=node_id).count()


def messages_fetch(
    *, node: ManagedNode, max_count: int, reclaim: bool = False
) -> list[NodeMessage]:
    """Lease up to `max_count` deliverable messages of `node`, oldest first.

    Rows another fetch holds are skipped (PostgreSQL; SQLite serializes writers), so two
    concurrent fetches never lease one message twice. `reclaim`: the agent has just started,
    so messages leased to its previous run and never acked come back now rather than when
    their lease ends (its journal still keeps any of them from running twice).
    """
    now = timezone.now()
    deliverable = _deliverable(now)
    if reclaim:
        deliverable |= Q(state=MessageState.LEASED)
    with transaction.atomic():
        rows = list(
            NodeMessage.objects.select_for_update(skip_locked=True)
            .filter(deliverable, node_id=node.pk)
            .order_by("id")[:max_count]
        )
        late = [m.pk for m in rows if m.deliver_before is not None and m.deliver_before <= now]
        if late:
            NodeMessage.objects.filter(pk__in=late).update(
                state=MessageState.EXPIRED, completed_at=now
            )
        leased = [m for m in rows if m.pk not in late]
        lease_expires_at = now + LEASE
        NodeMessage.objects.filter(pk__in=[m.pk for m in leased]).update(
            state=MessageState.LEASED,
            lease_expires_at=lease_expires_at,
            delivery_count=F("delivery_count") + 1,
        )
    for message in leased:
        message.state = MessageState.LEASED
        message.lease_expires_at = lease_expires_at
        message.delivery_count += 1
    return leased


def _node_message(node: ManagedNode, message_id: str) -> NodeMessage:
    """The node's own message; another node's is as unknown as a missing one."""
    try:
        parsed = uuid.UUID(message_id)
    except ValueError:
        parsed = None
    message = (
        NodeMessage.objects.filter(message_id=parsed, node_id=node.pk).first() if parsed else None
    )
    if message is None:
        raise refusal(protocol.ERROR_NOT_FOUND, f"no message {message_id[:40]} for this node")
    return message


def message_ack(*, node: ManagedNode, message_id: str) -> NodeMessage:
    """The agent has journaled the message and will not run it twice (idempotent).

    A message withdrawn before it was acked (expired, cancelled) is refused as not found,
    which tells the agent not to run it.
    """
    message = _node_message(node, message_id)
    if message.state in _WITHDRAWN and message.acked_at is None:
        raise refusal(
            protocol.ERROR_NOT_FOUND,
            f"message {message.message_id} was withdrawn ({message.state}); do not run it",
        )
    if message.state in (MessageState.PENDING, MessageState.LEASED):
        now = timezone.now()
        with transaction.atomic():
            moved = NodeMessage.objects.filter(
                pk=message.pk, state__in=(MessageState.PENDING, MessageState.LEASED)
            ).update(state=MessageState.ACKED, acked_at=now)
            if moved:
                message.state, message.acked_at = MessageState.ACKED, now
            else:
                message.refresh_from_db(fields=["state", "acked_at"])
            handler = _ACK_HANDLERS.get(message.kind)
            if moved and handler is not None:
                handler(message)
        if not moved and message.state in _WITHDRAWN and message.acked_at is None:
            # Withdrawn between our read and the update (a cancel, a delivery timeout).
            raise refusal(
                protocol.ERROR_NOT_FOUND,
                f"message {message.message_id} was withdrawn ({message.state}); do not run it",
            )
    return message


def message_reply(
    *, node: ManagedNode, message_id: str, status: str, result: dict[str, Any]
) -> tuple[NodeMessage, bool]:
    """Record the terminal reply; returns (message, accepted). The first reply wins."""
    if status not in protocol.REPLY_STATUSES:
        raise ValueError(f"unknown reply status {status!r}")
    message = _node_message(node, message_id)
    if message.state in TERMINAL_MESSAGE_STATES:
        return message, False
    now = timezone.now()
    state = MessageState.SUCCEEDED if status == protocol.REPLY_SUCCESS else MessageState.FAILED
    with transaction.atomic():
        # The state condition makes concurrent duplicates race safely: one UPDATE matches.
        won = NodeMessage.objects.filter(pk=message.pk, state__in=OPEN_STATES).update(
            state=state,
            result=result,
            completed_at=now,
            acked_at=message.acked_at or now,
        )
        if won:
            message.state, message.result, message.completed_at = state, result, now
            handler = _REPLY_HANDLERS.get(message.kind)
            if handler is not None:
                handler(message)
    if not won:
        message.refresh_from_db()
    return message, bool(won)


# --- Built-in kinds -------------------------------------------------------------------------


def _refreshed_facts_store(message: NodeMessage) -> None:
    """A RefreshHostFacts reply carries `{"facts": {...}}`; a malformed report is not stored."""
    if message.state != MessageState.SUCCEEDED:
        return
    try:
        facts = facts_clean((message.result or {}).get("facts"))
    except ProtocolError as error:
        logger.info("facts of reply %s ignored: %s", message.message_id, error.message)
        return
    node_facts_store(node_id=message.node_id, facts=facts)
    node_event_record(
        message.node_id, kind="facts_refreshed", summary="Host facts refreshed by the agent"
    )


register_reply_handler(protocol.MESSAGE_REFRESH_HOST_FACTS, _refreshed_facts_store)
