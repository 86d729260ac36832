"""Recomputing the hash chain and naming the first event that breaks it.

The events stream through in sequence order as plain tuples (no model instances), which keeps
100,000 events to a couple of seconds. Each event must carry the next sequence number, point
at the previous event's hash, hash to what it stores, and agree with any signed checkpoint at
its sequence. A trail that starts after event 1 must start right after a validly signed
checkpoint (retention pruning leaves one); the chain head, written with every append, catches
events deleted from the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from audit import chain, signing
from audit.models import CHAINED_COLUMNS, AuditEvent, ChainHead, Checkpoint

CHUNK_SIZE = 5000


@dataclass(frozen=True)
class Problem:
    sequence: int
    kind: str  # deleted, inserted, reordered, edited, unlinked, rewritten, checkpoint
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    first_sequence: int | None
    last_sequence: int | None
    anchor: str
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        if self.problem is not None:
            problem = self.problem
            return f"event {problem.sequence} ({problem.kind}): {problem.detail}"
        if not self.checked:
            return f"no events to verify ({self.anchor})"
        return (
            f"{self.checked} events verified, {self.first_sequence} to {self.last_sequence}, "
            f"chained from {self.anchor}"
        )


@dataclass(frozen=True)
class _Signed:
    hash: str
    valid: bool


def verify_chain(*, through: int | None = None) -> VerifyReport:
    """Verify the stored trail (up to event `through`, if given)."""
    head_before = _head()
    checkpoints = _checkpoints()
    rows = AuditEvent.objects.order_by("sequence").values_list(*CHAINED_COLUMNS)
    if through is not None:
        rows = rows.filter(sequence__lte=through)
    walk = _Walk(checkpoints)
    problem = walk.run(rows.iterator(chunk_size=CHUNK_SIZE))
    if problem is None and through is not None and walk.last < through:
        problem = Problem(
            walk.last + 1, "deleted", f"events {walk.last + 1} to {through} are missing"
        )
    if problem is None and through is None:
        problem = walk.tail_problem(head_before, _head())
    return VerifyReport(
        checked=walk.checked,
        first_sequence=walk.first,
        last_sequence=walk.last if walk.checked else None,
        anchor=walk.anchor,
        problem=problem,
    )


class _Walk:
    """The state of one pass over the events."""

    def __init__(self, checkpoints: dict[int, _Signed]) -> None:
        self.checkpoints = checkpoints
        self.checked = 0
        self.first: int | None = None
        self.last = 0  # the last sequence vouched for: by an event or the anchor checkpoint
        self.last_hash = chain.GENESIS
        self.anchor = "the start of the trail"

    def run(self, rows: Iterable[tuple[Any, ...]]) -> Problem | None:
        expected = None
        for row in rows:
            sequence, prev_hash, stored_hash = row[0], row[-2], row[-1]
            if expected is None:
                problem = self._start_at(sequence)
                if problem is not None:
                    return problem
                expected = sequence
            if sequence != expected:
                gone = (
                    f"events {expected} to {sequence - 1} are"
                    if sequence - 1 > expected
                    else f"event {expected} is"
                )
                return Problem(expected, "deleted", f"{gone} missing from the trail")
            if prev_hash != self.last_hash:
                return _unlinked(sequence, prev_hash)
            if chain.row_hash(row[:-1]) != stored_hash:
                return Problem(
                    sequence, "edited", "its content no longer matches its hash: a field was edited"
                )
            problem = self._check_signed(sequence, stored_hash)
            if problem is not None:
                return problem
            self.last, self.last_hash = sequence, stored_hash
            self.checked += 1
            expected = sequence + 1
        return None

    def _start_at(self, sequence: int) -> Problem | None:
        self.first = sequence
        if sequence < 1:
            return Problem(sequence, "inserted", "sequence numbers start at 1")
        if sequence == 1:
            return None
        anchor = self.checkpoints.get(sequence - 1)
        if anchor is not None and anchor.valid:
            self.last, self.last_hash = sequence - 1, anchor.hash
            self.anchor = f"the signed checkpoint at event {sequence - 1}"
            return None
        if anchor is not None:
            return Problem(
                sequence - 1,
                "checkpoint",
                "the checkpoint vouching for the pruning of the events before it has an invalid "
                "signature: forged, or signed with another master key",
            )
        valid_before = (s for s, c in self.checkpoints.items() if c.valid and s < sequence)
        covered = max(valid_before, default=0)
        return Problem(
            covered + 1,
            "deleted",
            f"events {covered + 1} to {sequence - 1} are missing and no signed checkpoint "
            "accounts for their pruning",
        )

    def _check_signed(self, sequence: int, stored_hash: str) -> Problem | None:
        signed = self.checkpoints.get(sequence)
        if signed is None:
            return None
        if not signed.valid:
            return Problem(
                sequence,
                "checkpoint",
                "its checkpoint has an invalid signature: forged, or signed with another "
                "master key",
            )
        if signed.hash != stored_hash:
            return Problem(
                sequence,
                "rewritten",
                "it differs from its signed checkpoint: the chain was recomputed from here or "
                "from an earlier event",
            )
        return None

    def tail_problem(
        self, head_before: tuple[int, str] | None, head_after: tuple[int, str] | None
    ) -> Problem | None:
        # Events up to the head read before the walk were committed before it started, so
        # the walk must have seen them; events past the head read after it were never appended.
        if head_before is not None:
            head_sequence, head_hash = head_before
            if head_sequence > self.last:
                return Problem(
                    self.last + 1,
                    "deleted",
                    f"events {self.last + 1} to {head_sequence} are missing from the end of the "
                    f"trail (the chain head records event {head_sequence})",
                )
            if head_sequence == self.last and head_hash != self.last_hash:
                return Problem(
                    head_sequence,
                    "rewritten",
                    "the newest event differs from the chain head's record of it",
                )
        if head_after is not None and self.last > head_after[0]:
            return Problem(
                head_after[0] + 1,
                "inserted",
                f"the chain head ends at event {head_after[0]}; later events were never appended",
            )
        beyond = [s for s, c in self.checkpoints.items() if c.valid and s > self.last]
        if beyond:
            return Problem(
                self.last + 1,
                "deleted",
                f"the trail ends at event {self.last}, yet a signed checkpoint vouches for "
                f"event {max(beyond)}",
            )
        return None


def _unlinked(sequence: int, prev_hash: str) -> Problem:
    """Why an event does not point at its predecessor, from where its prev_hash does point."""
    target = AuditEvent.objects.filter(hash=prev_hash).values_list("sequence", flat=True).first()
    if target is not None and target > sequence:
        return Problem(
            sequence,
            "reordered",
            f"it follows event {target} in the chain, which now comes after it",
        )
    if target is not None and target < sequence - 1:
        between = (
            f"event {target + 1} was"
            if target == sequence - 2
            else f"events {target + 1} to {sequence - 1} were"
        )
        return Problem(
            target + 1,
            "inserted",
            f"event {sequence} follows event {target} in the chain, so {between} inserted "
            "between them",
        )
    return Problem(
        sequence,
        "unlinked",
        f"its prev_hash matches neither event {sequence - 1} nor any other event: the event "
        "before it was replaced, or its prev_hash was edited",
    )


def _head() -> tuple[int, str] | None:
    return ChainHead.objects.filter(pk=ChainHead.ROW_ID).values_list("sequence", "hash").first()


def _checkpoints() -> dict[int, _Signed]:
    return {
        sequence: _Signed(
            hash=event_hash,
            valid=signing.signature_valid(sequence, event_hash, created_at, signature),
        )
        for sequence, event_hash, created_at, signature in Checkpoint.objects.values_list(
            "sequence", "hash", "created_at", "signature"
        )
    }
