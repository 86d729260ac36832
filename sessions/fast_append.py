"""Appending a recording chunk on PostgreSQL in one statement: the relay's common case.

sessions.services.recording.recording_append is a transaction of four statements (lock the
session, insert the chunk, update the counters, commit) with the chunk's bytes quoted into
the SQL text by Django's client-side binding. During a flood that cost ~35 ms per 512 KiB
chunk, and the relay's credit waits on the recording: `cat` of a large file crawled at a
third of what the relay could carry. Here the same write is one statement with the chunk
sent as a binary parameter (server-side binding): ~4 ms.

The statement only writes when the session's chain head is the one the caller knows: the
next sequence number and the last hash, on a started recording neither sealed nor expired.
Anything else (a retry, another writer ahead, a sealed recording) writes nothing and the
caller takes the full path, which says exactly what is wrong. So this is an optimisation of
the common case, never a second set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.db import connection

# The tables are sessions.models' (Session, RecordingChunk), spelled out: SQL is not built here.
_APPEND = """
WITH head AS (
    SELECT id FROM shell_sessions_session
    WHERE id = %(session)s
      AND recording_chunks = %(sequence)s
      AND recording_last_hash = %(previous)s
      AND recording_header <> ''
      AND recording_sealed_at IS NULL
      AND recording_expired_at IS NULL
    FOR UPDATE
), chunk AS (
    INSERT INTO shell_sessions_recordingchunk (session_id, sequence, data, sha256, created_at)
    SELECT id, %(sequence)s, %(data)s, %(digest)s, %(now)s FROM head
    RETURNING id
)
UPDATE shell_sessions_session AS s
SET recording_chunks = %(sequence)s + 1,
    recording_last_hash = %(digest)s,
    recording_events = s.recording_events + %(events)s,
    recording_output_bytes = s.recording_output_bytes + %(output_bytes)s
FROM head, chunk
WHERE s.id = head.id
RETURNING chunk.id, s.recording_events, s.recording_output_bytes
"""


@dataclass(frozen=True)
class Appended:
    chunk_id: int
    events: int  # the session's counters after the append
    output_bytes: int


def available() -> bool:
    """Only on PostgreSQL, and not inside a transaction the caller holds: the statement
    commits on its own, as the full path's transaction does."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def append_if_head(
    *,
    session_pk: int,
    sequence: int,
    previous: str,
    data: bytes,
    digest: str,
    events: int,
    output_bytes: int,
    now: datetime,
) -> Appended | None:
    """Write the chunk if the chain's head is (`sequence`, `previous`); None if it is not."""
    connection.ensure_connection()
    # A plain psycopg cursor binds on the server, where Django's cursors quote client-side.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _APPEND,
            {
                "session": session_pk,
                "sequence": sequence,
                "previous": previous,
                "data": data,
                "digest": digest,
                "events": events,
                "output_bytes": output_bytes,
                "now": now,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    chunk_id, total_events, total_output = row
    return Appended(chunk_id=chunk_id, events=total_events, output_bytes=total_output)
