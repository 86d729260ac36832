"""Writing, sealing, verifying, serving and expiring a session's recording.

The relay writes the recording while the session runs, in this order: `recording_start` once
the terminal's size is known (the asciicast header, and the chain's genesis), then
`recording_append` for each chunk of event lines with sequence numbers 0, 1, 2, …, and
`recording_seal` when the session ends. Each call is one transaction holding the session's
row, so the chain cannot fork under concurrent writers. Appends are safe to retry: a chunk
written before is accepted again if it is the same and refused if it is not, and a chunk
ahead of a missing one is refused, so a recording never has a hole or two versions of a
chunk. sessions.chain documents the hashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.chain import format_time
from audit.models import AuditEvent
from audit.services import SYSTEM_PRINCIPAL, audit_record
from fleet.codes import node_arn
from sessions import asciicast, chain, fast_append
from sessions.codes import EXPIRE_RECORDINGS, SEAL_RECORDING, session_arn
from sessions.exceptions import (
    RecordingAlreadyStarted,
    RecordingError,
    RecordingExpired,
    RecordingInvalid,
    RecordingNotStarted,
    RecordingSealed,
    RecordingSequenceConflict,
    RecordingSequenceGap,
)
from sessions.models import RecordingChunk, Session
from sessions.verification import VerifyReport, verify_recording

# A chunk is what the relay gathered in a fraction of a second; far more means a relay
# that stopped flushing, and one row that large would hold up every reader of the table.
CHUNK_MAX_BYTES = 1024 * 1024
TERMINAL_MAX = 10_000  # columns or rows
CAST_BATCH = 100
EXPIRE_BATCH = 100

# What the chain writes on the session, copied back onto the caller's instance.
_RECORDING_FIELDS = (
    "recording_header",
    "recording_chunks",
    "recording_last_hash",
    "recording_events",
    "recording_output_bytes",
    "recording_sealed_at",
    "recording_final_hash",
    "recording_expired_at",
)


def recording_start(
    *, session: Session, width: int, height: int, term: str, login_shell: str
) -> Session:
    """Write the header (and so the chain's genesis). Starting again with the same terminal
    is a retry and changes nothing; with another it is refused."""
    _check_size(width, height)
    _check_text("term", term, 64)
    _check_text("login shell", login_shell, 256)
    with transaction.atomic():
        locked = _locked(session)
        if locked.recording_header:
            started = locked.recording_header_data or {}
            wanted = (width, height, {"TERM": term, "SHELL": login_shell})
            if (started.get("width"), started.get("height"), started.get("env")) != wanted:
                raise RecordingAlreadyStarted(
                    f"The recording of {locked.session_id} has started already, with another "
                    "terminal."
                )
            return _copied(locked, session)
        if locked.is_ended:
            raise RecordingError(
                f"Session {locked.session_id} has ended ({locked.status}); a recording cannot "
                "start now."
            )
        header = asciicast.header_line(
            width=width,
            height=height,
            timestamp=int(locked.started_at.timestamp()),
            term=term,
            login_shell=login_shell,
            title=f"{locked.principal_name} on {locked.node_id}",
        )
        locked.recording_header = header
        locked.recording_last_hash = chain.genesis(locked.session_id, header)
        locked.save(update_fields=["recording_header", "recording_last_hash"])
    return _copied(locked, session)


def recording_append(*, session: Session, sequence: int, events: bytes) -> RecordingChunk:
    """Write chunk `sequence` (the next one) holding `events`, whole asciicast v2 event lines
    (see sessions.asciicast.CastEncoder), and update the counters. A repeat of a chunk
    written before returns it unchanged if its data is the same."""
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise RecordingInvalid(f"A chunk's sequence is a number from 0, not {sequence!r}.")
    data = bytes(events)
    if not data:
        raise RecordingInvalid("A chunk holds at least one event.")
    if len(data) > CHUNK_MAX_BYTES:
        raise RecordingInvalid(
            f"Chunk {sequence} is {len(data)} bytes; a chunk holds at most {CHUNK_MAX_BYTES}."
        )
    # Checked before the session's row is locked: parsing is the slow part of an append.
    try:
        counts = asciicast.parse_events(data, input_allowed=session.input_recorded)
    except ValueError as error:
        raise RecordingInvalid(f"Chunk {sequence} of {session.session_id}: {error}.") from None
    appended = _append_at_known_head(session, sequence, data, counts)
    if appended is not None:
        return appended
    with transaction.atomic():
        locked = _locked(session)
        if locked.recording_expired_at is not None:
            raise RecordingExpired(f"The recording of {locked.session_id} has expired.")
        if sequence < locked.recording_chunks:
            return _repeated(locked, sequence, data)
        if not locked.recording_header:
            raise RecordingNotStarted(
                f"The recording of {locked.session_id} has not started: no header yet."
            )
        if locked.is_sealed:
            raise RecordingSealed(
                f"The recording of {locked.session_id} is sealed; chunk {sequence} came too late."
            )
        if sequence > locked.recording_chunks:
            raise RecordingSequenceGap(
                f"The recording of {locked.session_id} expects chunk {locked.recording_chunks} "
                f"next, not {sequence}.",
                expected=locked.recording_chunks,
                received=sequence,
            )
        digest = chain.chunk_hash(locked.recording_last_hash, sequence, data)
        chunk = RecordingChunk.objects.create(
            session=locked, sequence=sequence, data=data, sha256=digest
        )
        locked.recording_chunks = sequence + 1
        locked.recording_last_hash = digest
        locked.recording_events += counts.events
        locked.recording_output_bytes += counts.output_bytes
        locked.save(
            update_fields=[
                "recording_chunks",
                "recording_last_hash",
                "recording_events",
                "recording_output_bytes",
            ]
        )
    _copied(locked, session)
    return chunk


def recording_seal(*, session: Session, face: str = AuditEvent.Face.WS) -> Session:
    """Seal the recording with its final hash, and anchor that hash in the audit trail.
    Sealing a sealed recording changes nothing (and writes no second event)."""
    with transaction.atomic():
        locked = _locked(session)
        if locked.is_sealed:
            return _copied(locked, session)
        if not locked.recording_header:
            raise RecordingNotStarted(
                f"The recording of {locked.session_id} never started; there is nothing to seal."
            )
        sealed_at = timezone.now()
        locked.recording_sealed_at = sealed_at
        locked.recording_final_hash = chain.seal_hash(
            locked.recording_last_hash, locked.recording_chunks, sealed_at
        )
        locked.save(update_fields=["recording_sealed_at", "recording_final_hash"])
        audit_record(
            principal=SYSTEM_PRINCIPAL,
            action=SEAL_RECORDING,
            outcome=AuditEvent.Outcome.SUCCESS,
            resources=[session_arn(locked.session_id), node_arn(locked.node_id)],
            params={
                "SessionId": locked.session_id,
                "Chunks": locked.recording_chunks,
                "Events": locked.recording_events,
                "OutputBytes": locked.recording_output_bytes,
                "SealedAt": format_time(sealed_at),
                "FinalHash": locked.recording_final_hash,
            },
            face=face,
        )
    return _copied(locked, session)


def recording_verify(*, session: Session) -> VerifyReport:
    """Recompute the chain from the header; the report names the first problem, if any."""
    return verify_recording(session)


def recording_cast(*, session: Session) -> Iterator[bytes]:
    """The recording as a .cast file (asciicast v2), streamed: the header line, then the
    chunks' event lines in order. Refused at once when there is nothing to serve."""
    stored = Session.objects.get(pk=session.pk)
    if stored.recording_expired_at is not None:
        raise RecordingExpired(
            f"The recording of {stored.session_id} was deleted by the retention setting on "
            f"{format_time(stored.recording_expired_at)}."
        )
    if not stored.recording_header:
        raise RecordingNotStarted(f"Session {stored.session_id} has no recording.")
    return _cast_lines(stored)


@dataclass(frozen=True)
class ExpireResult:
    sessions: int
    chunks: int


def retention_days() -> int:
    """BOSUN_SESSION_RECORDING_RETENTION_DAYS; 0 keeps recordings forever."""
    return int(settings.BOSUN_SESSION_RECORDING_RETENTION_DAYS)


def recordings_expire(*, now: datetime | None = None) -> ExpireResult:
    """Delete the chunks of recordings whose session ended longer ago than the retention
    setting. The session keeps its header, counters and seal: the record that a recording
    existed, and what it hashed to, outlives the recording."""
    days = retention_days()
    if days <= 0:
        return ExpireResult(sessions=0, chunks=0)
    now = now or timezone.now()
    before = now - timedelta(days=days)
    due = (
        Session.objects.filter(ended_at__lt=before, recording_expired_at__isnull=True)
        .exclude(recording_header="")
        .order_by("ended_at", "pk")
    )
    sessions = chunks = 0
    # In batches, each its own transaction: a year of recordings must not be one long lock.
    while batch := list(due.values_list("pk", "session_id")[:EXPIRE_BATCH]):
        pks = [pk for pk, _ in batch]
        with transaction.atomic():
            deleted, _ = RecordingChunk.objects.filter(session_id__in=pks).delete()
            Session.objects.filter(pk__in=pks).update(recording_expired_at=now)
            audit_record(
                principal=SYSTEM_PRINCIPAL,
                action=EXPIRE_RECORDINGS,
                outcome=AuditEvent.Outcome.SUCCESS,
                resources=[session_arn(session_id) for _, session_id in batch],
                params={"Before": format_time(before), "Sessions": len(pks), "Chunks": deleted},
                face=AuditEvent.Face.TASK,
            )
        sessions += len(pks)
        chunks += deleted
    return ExpireResult(sessions=sessions, chunks=chunks)


# --- Internals ------------------------------------------------------------------------------


def _locked(session: Session) -> Session:
    return Session.objects.select_for_update().get(pk=session.pk)


def _append_at_known_head(
    session: Session, sequence: int, data: bytes, counts: asciicast.EventCounts
) -> RecordingChunk | None:
    """The relay's common case in one statement (sessions.fast_append): the caller's
    instance knows the chain's head, and `sequence` is the next chunk. None when that does
    not hold or the database is not PostgreSQL: the full path then decides."""
    if not (
        fast_append.available()
        and session.recording_header
        and not session.is_sealed
        and sequence == session.recording_chunks
    ):
        return None
    digest = chain.chunk_hash(session.recording_last_hash, sequence, data)
    now = timezone.now()
    appended = fast_append.append_if_head(
        session_pk=session.pk,
        sequence=sequence,
        previous=session.recording_last_hash,
        data=data,
        digest=digest,
        events=counts.events,
        output_bytes=counts.output_bytes,
        now=now,
    )
    if appended is None:
        return None
    session.recording_chunks = sequence + 1
    session.recording_last_hash = digest
    session.recording_events = appended.events
    session.recording_output_bytes = appended.output_bytes
    return RecordingChunk.from_db(
        None,
        ["id", "session_id", "sequence", "data", "sha256", "created_at"],
        [appended.chunk_id, session.pk, sequence, data, digest, now],
    )


def _copied(locked: Session, session: Session) -> Session:
    """The caller's instance, brought up to date with what the chain wrote."""
    for name in _RECORDING_FIELDS:
        setattr(session, name, getattr(locked, name))
    return session


def _repeated(locked: Session, sequence: int, data: bytes) -> RecordingChunk:
    chunk = RecordingChunk.objects.filter(session=locked, sequence=sequence).first()
    if chunk is None:
        raise RecordingError(
            f"Chunk {sequence} of {locked.session_id} is counted but missing: the recording "
            "is damaged (see `manage.py sessions verify`)."
        )
    if bytes(chunk.data) != data:
        raise RecordingSequenceConflict(
            f"Chunk {sequence} of {locked.session_id} was written before with other data; "
            "a written chunk is never replaced.",
            sequence=sequence,
        )
    return chunk


def _cast_lines(session: Session) -> Iterator[bytes]:
    yield (session.recording_header + "\n").encode("utf-8")
    rows = (
        RecordingChunk.objects.filter(session=session)
        .order_by("sequence")
        .values_list("data", flat=True)
    )
    for data in rows.iterator(chunk_size=CAST_BATCH):
        yield bytes(data)


def _check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= TERMINAL_MAX:
            raise RecordingInvalid(
                f"The terminal's {name} must be 1 to {TERMINAL_MAX} characters, not {value!r}."
            )


def _check_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise RecordingInvalid(
            f"The {name} must be 1 to {limit} printable characters, not {value!r:.80}."
        )
