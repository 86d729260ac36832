"""Appending one event to the chain: the only code that assigns sequence numbers and hashes.

Writers serialize on the chain head row, so the chain never forks: whoever holds the lock
reads the newest sequence and hash, writes the next event and moves the head.

- PostgreSQL: one call of the server-side function `bosun_audit_append` (migration 0002)
  locks the head, takes the time, hashes, inserts and moves the head. The head stays locked
  until the transaction commits, so what keeps the lock short is that no network round trip
  happens while it is held (measured: 2-3 times the appends per second of doing the same from
  Python in four statements, bench/audit.py). Python supplies the canonical document around
  the three values only known under the lock (`chain.canonical_template`), so the hash is the
  one `chain.event_hash` gives and `verify` recomputes.
- SQLite (embedded): the same steps through the ORM. `SELECT … FOR UPDATE` is a no-op there;
  the settings' IMMEDIATE transactions take the database's single write lock at BEGIN, which
  serializes writers across threads and processes.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import chain
from audit.models import AuditEvent, ChainHead

_POSTGRES_APPEND = """
SELECT sequence, time, prev_hash, hash FROM bosun_audit_append(
    %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s
)
"""


def append_event(fields: dict[str, Any]) -> AuditEvent:
    """Append an event with `fields` (the model's, less sequence, time and the hashes)."""
    if connection.vendor == "postgresql":
        return _append_postgres(fields)
    # No savepoint: if the append fails, the caller's transaction must not commit without it.
    with transaction.atomic(savepoint=False):
        return _append_orm(fields)


def _append_postgres(fields: dict[str, Any]) -> AuditEvent:
    template = chain.canonical_template(
        {**_document(fields), "prev_hash": "", "sequence": 0, "time": ""}
    )
    params = [
        *template,
        fields["principal"],
        fields["user_id"],
        fields["source_ip"],
        fields["user_agent"],
        fields["action"],
        chain.canonical_json(fields["resources"]),
        fields["params_json"],
        fields["outcome"],
        fields["error_code"],
        fields["request_id"],
        fields["face"],
    ]
    # Outside a transaction the one statement is its own; inside one it joins the caller's,
    # and a failure must roll the caller back (atomic without a savepoint marks it so).
    joined = transaction.atomic(savepoint=False) if connection.in_atomic_block else nullcontext()
    with joined, connection.cursor() as cursor:
        cursor.execute(_POSTGRES_APPEND, params)
        sequence, moment, prev_hash, event_hash = cursor.fetchone()
    event = AuditEvent(
        sequence=sequence, time=moment, prev_hash=prev_hash, hash=event_hash, **fields
    )
    event._state.adding = False
    event._state.db = connection.alias
    return event


def _append_orm(fields: dict[str, Any]) -> AuditEvent:
    head = _locked_head()
    event = AuditEvent(
        sequence=head.sequence + 1, time=timezone.now(), prev_hash=head.hash, **fields
    )
    event.hash = chain.event_hash(
        {
            **_document(fields),
            "sequence": event.sequence,
            "time": chain.format_time(event.time),
            "prev_hash": event.prev_hash,
        }
    )
    event.save()
    ChainHead.objects.filter(pk=ChainHead.ROW_ID).update(sequence=event.sequence, hash=event.hash)
    return event


def _document(fields: dict[str, Any]) -> dict[str, Any]:
    """The hashed document's fields that are known before the lock."""
    return {
        "principal": fields["principal"],
        "user_id": fields["user_id"],
        "source_ip": fields["source_ip"],
        "user_agent": fields["user_agent"],
        "action": fields["action"],
        "resources": fields["resources"],
        "params": fields["params_json"],
        "outcome": fields["outcome"],
        "error_code": fields["error_code"],
        "request_id": fields["request_id"],
        "face": fields["face"],
    }


def _locked_head() -> ChainHead:
    """The chain head, locked until the surrounding transaction ends; created on first use.

    Created lazily rather than by a data migration so that a flushed database (tests, a
    restore into an empty schema) still starts from whatever events it holds.
    """
    head = ChainHead.objects.select_for_update().filter(pk=ChainHead.ROW_ID).first()
    if head is not None:
        return head
    newest = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    sequence, head_hash = newest or (0, chain.GENESIS)
    try:
        with transaction.atomic():  # a savepoint: a concurrent first append may win the insert
            ChainHead.objects.create(id=ChainHead.ROW_ID, sequence=sequence, hash=head_hash)
    except IntegrityError:
        pass
    return ChainHead.objects.select_for_update().get(pk=ChainHead.ROW_ID)
