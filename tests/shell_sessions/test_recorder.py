"""The relay's recording buffer: whole lines in chunks, numbered, resynced after a takeover."""

from __future__ import annotations

import asyncio

import pytest

from sessions.exceptions import RecordingSequenceConflict
from sessions.relay import Recorder
from sessions.services.recording import CHUNK_MAX_BYTES, recording_start

pytestmark = pytest.mark.django_db


def recorder_of(session, writes, *, head=7, conflict_once=False):
    state = {"conflict": conflict_once}

    async def writer(sequence: int, events: bytes) -> None:
        if state["conflict"]:
            state["conflict"] = False
            raise RecordingSequenceConflict("taken", sequence=sequence)
        writes.append((sequence, events))

    async def chain_head() -> int:
        return head

    return Recorder(session=session, writer=writer, head=chain_head, enabled=True)


def test_a_flood_is_written_in_numbered_chunks_of_whole_lines(session):
    recording_start(session=session, width=80, height=24, term="xterm", login_shell="bash")
    writes: list[tuple[int, bytes]] = []
    recorder = recorder_of(session, writes)
    for _ in range(400):
        recorder.output(b"y\r\n" * 1000)
    assert recorder.due()
    assert asyncio.run(recorder.flush())
    assert [sequence for sequence, _ in writes] == list(range(len(writes)))
    assert len(writes) > 1
    for _, events in writes:
        assert events.endswith(b"\n")
        assert len(events) <= CHUNK_MAX_BYTES
    assert not recorder.due()


def test_a_chunk_refused_as_written_before_goes_after_the_chains_head(session):
    recording_start(session=session, width=80, height=24, term="xterm", login_shell="bash")
    writes: list[tuple[int, bytes]] = []
    recorder = recorder_of(session, writes, head=7, conflict_once=True)
    recorder.output(b"hello")
    assert asyncio.run(recorder.flush())
    assert [sequence for sequence, _ in writes] == [7]


def test_a_failed_write_stops_the_recording(session):
    async def writer(sequence: int, events: bytes) -> None:
        raise OSError("disk full")

    async def chain_head() -> int:
        return 0

    recorder = Recorder(session=session, writer=writer, head=chain_head, enabled=True)
    recorder.output(b"x")
    assert asyncio.run(recorder.flush()) is False
    assert recorder.failed and recorder.backlog == 0
    recorder.output(b"more")
    assert recorder.backlog == 0
