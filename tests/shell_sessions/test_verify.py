"""Tampering with a stored recording in plain SQL, and verify naming the first problem."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessions import chain
from sessions.models import RecordingChunk, Session, SessionStatus
from sessions.services.recording import recording_verify
from tests.shell_sessions.conftest import SessionFactory, execute, output_lines

pytestmark = pytest.mark.django_db

CHUNKS = "shell_sessions_recordingchunk"


@pytest.fixture
def sealed(recorded) -> Session:
    return recorded(chunks=5)


@pytest.fixture
def running(recorded) -> Session:
    return recorded(chunks=5, sealed=False)


def problem(session: Session) -> tuple[int | None, str]:
    report = recording_verify(session=session)
    assert not report.ok, "verify passed a tampered recording"
    assert report.problem is not None
    return report.problem.sequence, report.problem.kind


def describe(session: Session) -> str:
    return recording_verify(session=session).describe()


def data_of(session: Session, sequence: int) -> bytes:
    return bytes(RecordingChunk.objects.get(session=session, sequence=sequence).data)


def set_data(session: Session, sequence: int, data: bytes) -> None:
    execute(
        f"UPDATE {CHUNKS} SET data = %s WHERE session_id = %s AND sequence = %s",  # noqa: S608
        (data, session.pk, sequence),
    )


def renumber(session: Session, old: int, new: int) -> None:
    execute(
        f"UPDATE {CHUNKS} SET sequence = %s WHERE session_id = %s AND sequence = %s",  # noqa: S608
        (new, session.pk, old),
    )


def delete_chunk(session: Session, sequence: int) -> None:
    execute(
        f"DELETE FROM {CHUNKS} WHERE session_id = %s AND sequence = %s",  # noqa: S608
        (session.pk, sequence),
    )


def set_session(session: Session, field: str, value) -> None:
    """A queryset update: no save(), no services, just the new value in the row."""
    Session.objects.filter(pk=session.pk).update(**{field: value})


# --- Intact ---------------------------------------------------------------------------------


def test_an_intact_sealed_recording_verifies_with_its_seal_and_audit_anchor(sealed):
    report = recording_verify(session=sealed)
    assert report.ok
    assert (report.chunks, report.events) == (5, 5)
    assert report.output_bytes == sealed.recording_output_bytes
    assert report.anchor is not None
    assert report.anchor.final_hash == sealed.recording_final_hash
    assert report.describe().startswith("5 chunks, sealed at ")
    assert f"final hash {sealed.recording_final_hash}, as audit event" in report.describe()


def test_a_recording_still_being_written_verifies_up_to_its_head(running):
    report = recording_verify(session=running)
    assert report.ok
    assert report.describe() == "5 chunks, not sealed yet (the session is Connected)"


def test_a_session_that_never_recorded_has_nothing_to_verify(session):
    report = recording_verify(session=session)
    assert report.ok
    assert not report.recorded
    assert report.describe() == "no recording (the session never started one)"


# --- Chunks ---------------------------------------------------------------------------------


def test_a_byte_changed_in_a_chunk_is_named_as_an_edit_of_that_chunk(sealed):
    data = bytearray(data_of(sealed, 2))
    data[data.index(b"chunk") + 1] = ord("H")  # "cHunk 2"
    set_data(sealed, 2, bytes(data))
    assert problem(sealed) == (2, "edited")
    assert describe(sealed) == "chunk 2 (edited): its data no longer matches its hash"


def test_a_changed_stored_hash_is_named_as_such(sealed):
    execute(
        f"UPDATE {CHUNKS} SET sha256 = %s WHERE session_id = %s AND sequence = 1",  # noqa: S608
        ("0" * 64, sealed.pk),
    )
    assert problem(sealed) == (1, "edited")
    assert "its stored hash was changed" in describe(sealed)


def test_a_chunk_deleted_from_the_middle_is_named_as_missing(sealed):
    delete_chunk(sealed, 2)
    assert problem(sealed) == (2, "missing")
    assert describe(sealed) == "chunk 2 (missing): chunk 2 is missing"


def test_several_deleted_chunks_are_named_as_a_range(sealed):
    delete_chunk(sealed, 1)
    delete_chunk(sealed, 2)
    assert "chunks 1 to 2 are missing" in describe(sealed)


def test_a_chunk_cut_from_the_end_of_a_sealed_recording_is_named_as_missing(sealed):
    delete_chunk(sealed, 4)
    assert problem(sealed) == (4, "missing")
    assert "(cut from the end)" in describe(sealed)


def test_cutting_the_end_and_the_count_of_a_sealed_recording_breaks_the_seal(sealed):
    delete_chunk(sealed, 4)
    set_session(sealed, "recording_chunks", 4)
    assert problem(sealed) == (None, "seal")


def test_cutting_the_end_of_a_recording_still_being_written_breaks_its_head(running):
    delete_chunk(running, 4)
    set_session(running, "recording_chunks", 4)
    assert problem(running) == (None, "head")


def test_two_swapped_chunks_are_named_as_reordered(sealed):
    renumber(sealed, 2, 1_000_000)
    renumber(sealed, 3, 2)
    renumber(sealed, 1_000_000, 3)
    assert problem(sealed) == (2, "reordered")
    assert "the content that belongs here is stored as chunk 3" in describe(sealed)


def test_a_chunk_added_after_the_seal_is_named(sealed):
    head = RecordingChunk.objects.get(session=sealed, sequence=4).sha256
    data = output_lines("rm -rf evidence")
    RecordingChunk.objects.create(
        session=sealed, sequence=5, data=data, sha256=chain.chunk_hash(head, 5, data)
    )
    assert problem(sealed) == (5, "added")


def test_a_chunk_copied_from_another_sessions_recording_does_not_chain(sealed, recorded):
    other = recorded(chunks=5)
    row = RecordingChunk.objects.get(session=other, sequence=0)
    execute(
        f"UPDATE {CHUNKS} SET data = %s, sha256 = %s "  # noqa: S608
        "WHERE session_id = %s AND sequence = 0",
        (bytes(row.data), row.sha256, sealed.pk),
    )
    assert problem(sealed) == (0, "edited")


def test_a_changed_header_breaks_the_first_chunk(sealed):
    set_session(sealed, "recording_header", sealed.recording_header.replace("80", "81", 1))
    assert problem(sealed) == (0, "edited")
    assert "does not chain from the header" in describe(sealed)


def test_changed_counters_are_named(sealed):
    set_session(sealed, "recording_output_bytes", 1)
    assert problem(sealed) == (None, "counters")


# --- The seal -------------------------------------------------------------------------------


def test_a_changed_final_hash_is_named_as_a_broken_seal(sealed):
    set_session(sealed, "recording_final_hash", "f" * 64)
    assert problem(sealed) == (None, "seal")
    assert "does not match the chunks, their count and the seal time" in describe(sealed)


def test_a_seal_moved_in_time_is_named_as_a_broken_seal(sealed):
    set_session(sealed, "recording_sealed_at", sealed.recording_sealed_at + timedelta(days=1))
    assert problem(sealed) == (None, "seal")


def test_a_removed_seal_is_caught_by_the_seal_the_audit_trail_recorded(sealed):
    set_session(sealed, "recording_sealed_at", None)
    set_session(sealed, "recording_final_hash", "")
    assert problem(sealed) == (None, "unsealed")
    assert "recorded its seal, but the session shows none" in describe(sealed)


def test_half_a_seal_is_named(sealed):
    set_session(sealed, "recording_sealed_at", None)
    assert problem(sealed) == (None, "seal")


def test_a_recording_rewritten_and_resealed_with_correct_hashes_is_caught_by_the_audit_trail(
    sealed,
):
    """A forger with database access who read sessions.chain: every hash recomputes, and the
    counters still add up (the edit keeps the length)."""
    set_data(sealed, 2, data_of(sealed, 2).replace(b"chunk 2", b"chunk X"))
    head = chain.genesis(sealed.session_id, sealed.recording_header)
    for sequence in range(5):
        head = chain.chunk_hash(head, sequence, data_of(sealed, sequence))
        execute(
            f"UPDATE {CHUNKS} SET sha256 = %s WHERE session_id = %s AND sequence = %s",  # noqa: S608
            (head, sealed.pk, sequence),
        )
    stored = Session.objects.get(pk=sealed.pk)
    set_session(sealed, "recording_last_hash", head)
    set_session(
        sealed, "recording_final_hash", chain.seal_hash(head, 5, stored.recording_sealed_at)
    )
    assert problem(sealed) == (None, "seal")
    assert "differs from the one audit event" in describe(sealed)


def test_a_session_that_ended_without_sealing_its_recording_is_named(running):
    Session.objects.filter(pk=running.pk).update(status=SessionStatus.TERMINATED)
    assert problem(running) == (None, "unsealed")
    assert "never sealed" in describe(running)


def test_chunks_without_a_header_are_named(db):
    session = SessionFactory()
    RecordingChunk.objects.create(session=session, sequence=0, data=b"x", sha256="0" * 64)
    assert problem(session) == (None, "header")
