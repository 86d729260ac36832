"""The per-node message queue: what the server asks agents to do, delivered at least once.

Rows are the record (DESIGN.md §2). A connected agent is pushed its new messages through its
websocket (at most once: a lost push is only a delay); any agent fetches deliverable messages
under a lease. It acks what it has journaled and replies once per message
(fleet.protocol.answers): the first terminal reply wins, later ones are answered
`accepted: False`.

Later apps put work in with `message_enqueue()` and react to acks and replies of their own
kinds by `register_ack_handler` / `register_reply_handler` (at import of their module, e.g.
in AppConfig.ready).
"""

from __future__ import annotations

import json
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

from fleet.models import ManagedNode, MessageState, NodeMessage
from fleet.protocol.facts import node_facts_store
from fleet.protocol.validation import facts_clean
from fleet.realtime import wake_agents_on_commit
from fleet.timeline import node_event_record

logger = logging.getLogger(__name__)

LEASE = timedelta(seconds=protocol.LEASE_SECONDS)
# States a message can still move out of by the agent's doing.
OPEN_STATES = (MessageState.PENDING, MessageState.LEASED, MessageState.ACKED)
# A message this large is not pushed: the wake-up says "fetch" instead, so a big payload does
# not travel through the channel layer once per node.
MAX_PUSHED_PAYLOAD_BYTES = 16 * 1024

# Handlers take every message of their kind in one batch of answers (fleet.protocol.answers)
# and run inside its transaction: what they write commits or rolls back with the answers.
# A reply handler's messages already hold their terminal state and result.
BatchHandler = Callable[[list[NodeMessage]], None]
_REPLY_HANDLERS: dict[str, BatchHandler] = {}
_ACK_HANDLERS: dict[str, BatchHandler] = {}


def register_reply_handler(kind: str, handler: BatchHandler) -> None:
    """Have `handler` called with the accepted terminal replies to messages of `kind`."""
    _REPLY_HANDLERS[kind] = handler


def register_ack_handler(kind: str, handler: BatchHandler) -> None:
    """Have `handler` called with the messages of `kind` the agent has just started (first
    acks only)."""
    _ACK_HANDLERS[kind] = handler


def _handlers_run(registry: dict[str, BatchHandler], messages: list[NodeMessage]) -> None:
    by_kind: dict[str, list[NodeMessage]] = {}
    for message in messages:
        by_kind.setdefault(message.kind, []).append(message)
    for kind, batch in by_kind.items():
        handler = registry.get(kind)
        if handler is not None:
            handler(batch)


def ack_handlers_run(messages: list[NodeMessage]) -> None:
    _handlers_run(_ACK_HANDLERS, messages)


def reply_handlers_run(messages: list[NodeMessage]) -> None:
    _handlers_run(_REPLY_HANDLERS, messages)


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
    pushable = len(json.dumps(payload, separators=(",", ":"))) <= MAX_PUSHED_PAYLOAD_BYTES
    # A pushed message's delivery is the push (counted when the agent acks it).
    pushes = {m.node_id: {**message_wire(m), "delivery_count": 1} for m in messages}
    wake_agents_on_commit(ids, pushes=pushes if pushable else None)
    return messages


def message_wire(message: NodeMessage) -> dict[str, Any]:
    """A message as the agent receives it, fetched or pushed (agent/PROTOCOL.md)."""
    return {
        "message_id": str(message.message_id),
        "kind": message.kind,
        "payload": message.payload,
        "created_at": int(message.created_at.timestamp()),
        "lease_seconds": protocol.LEASE_SECONDS,
        "delivery_count": message.delivery_count,
    }


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


# --- Built-in kinds -------------------------------------------------------------------------


def _refreshed_facts_store(messages: list[NodeMessage]) -> None:
    for message in messages:
        if message.state == MessageState.SUCCEEDED:
            _refreshed_facts_store_one(message)


def _refreshed_facts_store_one(message: NodeMessage) -> None:
    """A RefreshHostFacts reply carries `{"facts": {...}}`; a malformed report is not stored."""
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
