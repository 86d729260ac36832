"""Recomputing a recording's chain from its header and naming the first thing that breaks it.

The chunks stream through in sequence order as plain tuples. In turn:

- a recording whose chunks retention deleted cannot be verified, and says so; chunks or a seal
  without a header are a problem, nothing at all is a session that never recorded;
- each chunk must carry the next sequence number (else chunks are missing), hash to what it
  stores from the previous hash (else it was edited, or reordered when the chunk that belongs
  there turns up further on), and hold well-formed event lines;
- at the end, the count and the counters on the session must agree with the chunks; a sealed
  recording's final hash must recompute and equal the one the audit trail recorded at the
  seal; an unsealed one must match the chain head kept on the session (chunks cut from the
  end), must not belong to a session that has ended, and must have no seal in the audit trail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from audit.chain import format_time
from audit.models import AuditEvent
from sessions import asciicast, chain
from sessions.codes import SEAL_RECORDING, session_arn
from sessions.models import RecordingChunk, Session

CHUNK_BATCH = 200
# How far past a broken chunk to look for the content that belongs there (a reorder).
REORDER_SEARCH = 1000


@dataclass(frozen=True)
class Problem:
    # The first bad chunk; None when the problem is the recording's as a whole (its seal).
    sequence: int | None
    # expired, header, missing, edited, reordered, malformed, added, head, counters, seal,
    # unsealed
    kind: str
    detail: str


@dataclass(frozen=True)
class Anchor:
    """The seal as the audit trail recorded it."""

    event: int  # the audit event's sequence number
    final_hash: str


@dataclass(frozen=True)
class VerifyReport:
    session_id: str
    status: str
    recorded: bool  # a header was written: the session started a recording
    chunks: int  # chunks verified before the problem, if any
    events: int
    output_bytes: int
    sealed_at: datetime | None
    final_hash: str
    anchor: Anchor | None
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        if self.problem is not None:
            problem = self.problem
            if problem.sequence is None:
                return f"{problem.kind}: {problem.detail}"
            return f"chunk {problem.sequence} ({problem.kind}): {problem.detail}"
        if not self.recorded:
            return "no recording (the session never started one)"
        if self.sealed_at is None:
            return f"{self.chunks} chunks, not sealed yet (the session is {self.status})"
        anchored = (
            f"as audit event {self.anchor.event} recorded"
            if self.anchor
            else "no seal event left in the audit trail (pruned)"
        )
        return (
            f"{self.chunks} chunk{'' if self.chunks == 1 else 's'}, "
            f"sealed at {format_time(self.sealed_at)}, "
            f"final hash {self.final_hash}, {anchored}"
        )


def verify_recording(session: Session) -> VerifyReport:
    session = Session.objects.get(pk=session.pk)  # as stored, not as the caller holds it
    anchor = seal_anchor(session)
    walk = _Walk(session, anchor)
    problem = walk.run()
    return VerifyReport(
        session_id=session.session_id,
        status=session.status,
        recorded=bool(session.recording_header),
        chunks=walk.chunks,
        events=walk.events,
        output_bytes=walk.output_bytes,
        sealed_at=session.recording_sealed_at,
        final_hash=session.recording_final_hash,
        anchor=anchor,
        problem=problem,
    )


def seal_anchor(session: Session) -> Anchor | None:
    """The first seal the audit trail recorded for this session (a later one would be a
    reseal, which is itself the problem), or None."""
    arn = session_arn(session.session_id)
    events = (
        AuditEvent.objects.filter(action=SEAL_RECORDING, resources__icontains=arn)
        .order_by("sequence")
        .values_list("sequence", "resources", "params_json")
    )
    for sequence, resources, params_json in events:
        if arn in resources:  # icontains also matches longer ids that start with this one
            return Anchor(event=sequence, final_hash=str(json.loads(params_json)["FinalHash"]))
    return None


def _missing(first: int, up_to: int) -> str:
    """Chunks first to up_to-1 are missing, in words."""
    if up_to - first == 1:
        return f"chunk {first} is missing"
    return f"chunks {first} to {up_to - 1} are missing"


class _Walk:
    def __init__(self, session: Session, anchor: Anchor | None) -> None:
        self.session = session
        self.anchor = anchor
        self.head = ""
        self.chunks = self.events = self.output_bytes = 0

    def run(self) -> Problem | None:
        session = self.session
        if session.recording_expired_at is not None:
            return Problem(
                None,
                "expired",
                "its chunks were deleted by the retention setting on "
                f"{format_time(session.recording_expired_at)}; nothing is left to verify",
            )
        if not session.recording_header:
            if session.chunks.exists() or session.recording_sealed_at or self.anchor:
                return Problem(None, "header", "the recording has chunks or a seal but no header")
            return None
        self.head = chain.genesis(session.session_id, session.recording_header)
        rows = (
            RecordingChunk.objects.filter(session=session)
            .order_by("sequence")
            .values_list("sequence", "data", "sha256")
        )
        for sequence, data, stored in rows.iterator(chunk_size=CHUNK_BATCH):
            problem = self._chunk(sequence, bytes(data), stored)
            if problem is not None:
                return problem
        return self._end()

    def _chunk(self, sequence: int, data: bytes, stored: str) -> Problem | None:
        if sequence != self.chunks:
            return Problem(self.chunks, "missing", _missing(self.chunks, sequence))
        computed = chain.chunk_hash(self.head, sequence, data)
        if computed != stored:
            return self._mismatch(sequence, data, computed)
        try:
            counts = asciicast.parse_events(data, input_allowed=self.session.input_recorded)
        except ValueError as error:
            return Problem(sequence, "malformed", str(error))
        self.head = computed
        self.chunks += 1
        self.events += counts.events
        self.output_bytes += counts.output_bytes
        return None

    def _mismatch(self, sequence: int, data: bytes, computed: str) -> Problem:
        later = list(
            RecordingChunk.objects.filter(session=self.session, sequence__gt=sequence)
            .order_by("sequence")
            .values_list("sequence", "data", "sha256")[:REORDER_SEARCH]
        )
        for other, other_data, other_stored in later:
            if chain.chunk_hash(self.head, sequence, bytes(other_data)) == other_stored:
                return Problem(
                    sequence,
                    "reordered",
                    f"it holds other content; the content that belongs here is stored as "
                    f"chunk {other}",
                )
        # Data intact and only the stored hash changed: the next chunk still chains from it.
        if later and later[0][0] == sequence + 1:
            _, next_data, next_stored = later[0]
            if chain.chunk_hash(computed, sequence + 1, bytes(next_data)) == next_stored:
                return Problem(sequence, "edited", "its stored hash was changed")
        if sequence == 0:
            return Problem(
                0, "edited", "it does not chain from the header: the header or the chunk changed"
            )
        return Problem(sequence, "edited", "its data no longer matches its hash")

    def _end(self) -> Problem | None:
        session = self.session
        if self.chunks < session.recording_chunks:
            return Problem(
                self.chunks,
                "missing",
                f"{_missing(self.chunks, session.recording_chunks)} (cut from the end)",
            )
        if self.chunks > session.recording_chunks:
            return Problem(
                session.recording_chunks,
                "added",
                f"the session counts {session.recording_chunks} chunks; this one and any "
                "after it were added since",
            )
        if session.recording_sealed_at or session.recording_final_hash:
            problem = self._seal()
        else:
            problem = self._unsealed()
        if problem is None and (self.events, self.output_bytes) != (
            session.recording_events,
            session.recording_output_bytes,
        ):
            problem = Problem(
                None,
                "counters",
                f"the session counts {session.recording_events} events and "
                f"{session.recording_output_bytes} output bytes; the chunks hold {self.events} "
                f"and {self.output_bytes}",
            )
        return problem

    def _seal(self) -> Problem | None:
        session = self.session
        if session.recording_sealed_at is None or not session.recording_final_hash:
            return Problem(None, "seal", "the seal is incomplete (its time or its hash is gone)")
        expected = chain.seal_hash(self.head, self.chunks, session.recording_sealed_at)
        if expected != session.recording_final_hash:
            return Problem(
                None,
                "seal",
                "the final hash does not match the chunks, their count and the seal time",
            )
        if self.anchor is not None and self.anchor.final_hash != session.recording_final_hash:
            return Problem(
                None,
                "seal",
                f"the final hash differs from the one audit event {self.anchor.event} recorded "
                "at the seal: the recording was rewritten and sealed again",
            )
        return None

    def _unsealed(self) -> Problem | None:
        session = self.session
        if self.anchor is not None:
            return Problem(
                None,
                "unsealed",
                f"audit event {self.anchor.event} recorded its seal, but the session shows none",
            )
        if session.recording_last_hash != self.head:
            return Problem(
                None, "head", "the chain head kept on the session does not match the last chunk"
            )
        if session.is_ended:
            return Problem(
                None,
                "unsealed",
                f"the session ended ({session.status}) but its recording was never sealed",
            )
        return None
