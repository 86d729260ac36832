"""Writing a recording: the header, the chain of chunks, retries and refusals, the seal, .cast."""

from __future__ import annotations

import hashlib
import json

import pytest

from audit.models import AuditEvent
from audit.verification import verify_chain
from sessions import chain
from sessions.asciicast import CastEncoder
from sessions.codes import SEAL_RECORDING, session_arn
from sessions.exceptions import (
    RecordingAlreadyStarted,
    RecordingError,
    RecordingInvalid,
    RecordingNotStarted,
    RecordingSealed,
    RecordingSequenceConflict,
    RecordingSequenceGap,
)
from sessions.models import RecordingChunk, Session, SessionStatus
from sessions.services.recording import (
    CHUNK_MAX_BYTES,
    recording_append,
    recording_cast,
    recording_seal,
    recording_start,
)
from tests.shell_sessions.conftest import SessionFactory, output_lines

pytestmark = pytest.mark.django_db


def start(session: Session, **terminal) -> Session:
    terminal = {
        "width": 80,
        "height": 24,
        "term": "xterm-256color",
        "login_shell": "bash",
        **terminal,
    }
    return recording_start(session=session, **terminal)


def stored(session: Session) -> Session:
    return Session.objects.get(pk=session.pk)


def cast(session: Session) -> bytes:
    return b"".join(recording_cast(session=session))


def utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --- Starting -------------------------------------------------------------------------------


def test_starting_writes_an_asciicast_v2_header_and_the_chains_genesis(session):
    start(session, width=132, height=43)
    header = stored(session).recording_header_data
    assert header == {
        "version": 2,
        "width": 132,
        "height": 43,
        "timestamp": int(session.started_at.timestamp()),
        "env": {"TERM": "xterm-256color", "SHELL": "bash"},
        "title": f"ada on {session.node_id}",
    }
    assert stored(session).recording_last_hash == chain.genesis(
        session.session_id, session.recording_header
    )


def test_starting_again_with_the_same_terminal_is_a_harmless_retry(session):
    start(session)
    header = stored(session).recording_header
    start(session)
    assert stored(session).recording_header == header


def test_starting_again_with_another_terminal_is_refused(session):
    start(session)
    with pytest.raises(RecordingAlreadyStarted, match="started already"):
        start(session, width=100)


def test_a_recording_cannot_start_for_a_session_that_has_ended(session):
    session.status = SessionStatus.FAILED
    session.save()
    with pytest.raises(RecordingError, match="has ended"):
        start(session)


@pytest.mark.parametrize(
    ("terminal", "message"),
    [
        ({"width": 0}, "width must be 1 to 10000"),
        ({"height": 10_001}, "height must be 1 to 10000"),
        ({"width": True}, "width"),
        ({"term": ""}, "term must be"),
        ({"login_shell": "bash\n"}, "login shell must be"),
    ],
)
def test_a_terminal_out_of_range_is_refused(session, terminal, message):
    with pytest.raises(RecordingInvalid, match=message):
        start(session, **terminal)


# --- Appending ------------------------------------------------------------------------------


def test_each_chunk_hashes_the_previous_hash_its_sequence_and_its_data(session):
    start(session)
    first, second = output_lines("one"), output_lines("two", start=1)
    recording_append(session=session, sequence=0, events=first)
    recording_append(session=session, sequence=1, events=second)
    genesis = hashlib.sha256(
        b"bosun-session-recording/1\n"
        + session.session_id.encode()
        + b"\n"
        + session.recording_header.encode()
    ).hexdigest()
    expected_0 = hashlib.sha256(bytes.fromhex(genesis) + (0).to_bytes(8, "big") + first)
    expected_1 = hashlib.sha256(expected_0.digest() + (1).to_bytes(8, "big") + second)
    chunks = list(RecordingChunk.objects.filter(session=session).order_by("sequence"))
    assert [chunk.sha256 for chunk in chunks] == [expected_0.hexdigest(), expected_1.hexdigest()]
    assert [bytes(chunk.data) for chunk in chunks] == [first, second]


def test_appending_counts_chunks_events_and_output_bytes_and_moves_the_head(session):
    start(session)
    chunk = recording_append(
        session=session, sequence=0, events=output_lines("grüß", "\r\n") + b'[0.5, "r", "100x30"]\n'
    )
    for current in (session, stored(session)):
        assert current.recording_chunks == 1
        assert current.recording_events == 3
        assert current.recording_output_bytes == len("grüß\r\n".encode())
        assert current.recording_last_hash == chunk.sha256


def test_a_repeated_chunk_with_the_same_data_is_accepted_once_and_changes_nothing(session):
    start(session)
    first = recording_append(session=session, sequence=0, events=output_lines("a"))
    again = recording_append(session=session, sequence=0, events=output_lines("a"))
    assert again.pk == first.pk
    assert RecordingChunk.objects.filter(session=session).count() == 1
    assert stored(session).recording_events == 1


def test_a_repeated_sequence_with_other_data_is_refused_and_the_first_kept(session):
    start(session)
    recording_append(session=session, sequence=0, events=output_lines("a"))
    with pytest.raises(RecordingSequenceConflict, match="written before with other data") as error:
        recording_append(session=session, sequence=0, events=output_lines("b"))
    assert error.value.sequence == 0
    assert bytes(RecordingChunk.objects.get(session=session).data) == output_lines("a")


def test_a_chunk_ahead_of_a_missing_one_is_refused_naming_the_one_expected(session):
    start(session)
    recording_append(session=session, sequence=0, events=output_lines("a"))
    with pytest.raises(RecordingSequenceGap, match="expects chunk 1 next, not 3") as error:
        recording_append(session=session, sequence=3, events=output_lines("d"))
    assert (error.value.expected, error.value.received) == (1, 3)
    assert stored(session).recording_chunks == 1


def test_a_chunk_before_the_header_is_refused(session):
    with pytest.raises(RecordingNotStarted, match="no header yet"):
        recording_append(session=session, sequence=0, events=output_lines("a"))


@pytest.mark.parametrize(
    ("sequence", "events", "message"),
    [
        (-1, output_lines("a"), "number from 0"),
        (True, output_lines("a"), "number from 0"),
        (0, b"", "at least one event"),
        (0, b"not json\n", "Chunk 0 of .*line 1: not a JSON event"),
        (0, b'[0, "o", "a"]', "whole lines"),
    ],
)
def test_a_malformed_chunk_is_refused_before_anything_is_written(
    session, sequence, events, message
):
    start(session)
    with pytest.raises(RecordingInvalid, match=message):
        recording_append(session=session, sequence=sequence, events=events)
    assert not RecordingChunk.objects.exists()


def test_an_oversized_chunk_is_refused(session):
    start(session)
    line = output_lines("x" * 1000)
    with pytest.raises(RecordingInvalid, match="at most"):
        recording_append(
            session=session, sequence=0, events=line * (CHUNK_MAX_BYTES // len(line) + 1)
        )


def test_input_events_are_refused_when_the_session_does_not_record_input(db):
    session = SessionFactory(input_recorded=False)
    start(session)
    with pytest.raises(RecordingInvalid, match="input is not recorded"):
        recording_append(session=session, sequence=0, events=b'[0.1, "i", "hunter2"]\n')


# --- Sealing --------------------------------------------------------------------------------


def test_sealing_writes_the_final_hash_over_the_last_hash_the_count_and_the_time(recorded):
    session = recorded(chunks=3, sealed=False)
    recording_seal(session=session)
    sealed = stored(session)
    last = RecordingChunk.objects.get(session=session, sequence=2).sha256
    expected = hashlib.sha256(
        bytes.fromhex(last)
        + b"sealed"
        + (3).to_bytes(8, "big")
        + sealed.recording_sealed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
    ).hexdigest()
    assert sealed.recording_final_hash == expected == session.recording_final_hash
    assert sealed.is_sealed


def test_the_seal_is_anchored_in_the_audit_trail(recorded):
    session = recorded(chunks=2)
    event = AuditEvent.objects.get(action=SEAL_RECORDING)
    assert event.principal == "system"
    assert event.resources[0] == session_arn(session.session_id)
    assert event.params["FinalHash"] == session.recording_final_hash
    assert event.params["Chunks"] == 2
    assert verify_chain().ok


def test_sealing_twice_changes_nothing_and_records_one_event(recorded):
    session = recorded(chunks=2)
    before = stored(session)
    recording_seal(session=session)
    after = stored(session)
    assert (after.recording_sealed_at, after.recording_final_hash) == (
        before.recording_sealed_at,
        before.recording_final_hash,
    )
    assert AuditEvent.objects.filter(action=SEAL_RECORDING).count() == 1


def test_an_empty_recording_can_be_sealed(session):
    start(session)
    recording_seal(session=session)
    assert stored(session).recording_chunks == 0
    assert stored(session).is_sealed


def test_a_recording_that_never_started_cannot_be_sealed(session):
    with pytest.raises(RecordingNotStarted, match="nothing to seal"):
        recording_seal(session=session)


def test_a_new_chunk_after_the_seal_is_refused_but_a_late_retry_of_an_old_one_is_accepted(
    recorded,
):
    session = recorded(chunks=2)
    with pytest.raises(RecordingSealed, match="came too late"):
        recording_append(session=session, sequence=2, events=output_lines("late"))
    old = RecordingChunk.objects.get(session=session, sequence=1)
    assert recording_append(session=session, sequence=1, events=bytes(old.data)).pk == old.pk


# --- The .cast file -------------------------------------------------------------------------


def test_the_cast_file_is_the_header_line_then_every_event_line_in_order(recorded):
    session = recorded(chunks=3)
    lines = cast(session).decode("utf-8").splitlines()
    header, events = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    assert header["version"] == 2
    assert (header["width"], header["height"]) == (80, 24)
    assert [event[2] for event in events] == ["chunk 0\r\n", "chunk 1\r\n", "chunk 2\r\n"]
    assert all(isinstance(event[0], float) and event[1] == "o" for event in events)


def test_the_output_in_the_cast_file_is_exactly_the_bytes_that_came_from_the_shell(session):
    """Reads cut mid-character, as a PTY delivers them, and each read its own chunk."""
    start(session)
    shell_output = "héllo wörld € 😀 ascii\r\n".encode() * 3 + b"\x1b[31mred\x1b[0m\r\n"
    reads = [shell_output[offset : offset + 5] for offset in range(0, len(shell_output), 5)]
    assert sum(not utf8(read) for read in reads) >= 5, "the reads should cut characters"
    encoder = CastEncoder(input_recorded=True)
    for sequence, read in enumerate(reads):
        at = sequence / 100
        events = encoder.output(at, read) + encoder.input(at, b"k") + encoder.resize(at, 80, 24)
        recording_append(session=session, sequence=sequence, events=events)
    tail = encoder.finish(1.0)
    assert tail == b""
    recording_seal(session=session)

    lines = cast(session).decode("utf-8").splitlines()
    assert json.loads(lines[0])["version"] == 2
    written = [json.loads(line) for line in lines[1:]]
    output = "".join(data for _, code, data in written if code == "o")
    assert output.encode("utf-8") == shell_output
    assert stored(session).recording_output_bytes == len(shell_output)
    times = [event[0] for event in written]
    assert times == sorted(times)


def test_a_recording_that_never_started_has_no_cast_file(session):
    with pytest.raises(RecordingNotStarted, match="has no recording"):
        recording_cast(session=session)
