"""The one-statement append on PostgreSQL (sessions.fast_append) and its way back to the full path.

The relay's appends take the fast path when its instance knows the chain's head; everything
else (a repeat, a conflict, a gap, a stale instance, a sealed recording) must behave exactly as
the full path does, and the recording must verify. The chunk column is lz4-compressed.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.support.cluster import shell_on_postgresql

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import json
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from sessions import exceptions
    from sessions.models import RecordingChunk, Session, SessionStatus
    from sessions.services.recording import (
        recording_append, recording_seal, recording_start, recording_verify,
    )
    from tests.shell_sessions.conftest import SessionFactory, output_lines

    result = {}
    session = SessionFactory()
    recording_start(session=session, width=80, height=24, term="xterm", login_shell="bash")
    with CaptureQueriesContext(connection) as queries:
        chunks = [
            recording_append(session=session, sequence=n, events=output_lines(f"é{n}\\r\\n"))
            for n in range(3)
        ]
    # The fast path's statement goes around Django's cursors: no ORM query at all.
    result["orm_queries"] = len(queries)
    result["chunk_pks"] = all(chunk.pk for chunk in chunks)
    stored = Session.objects.get(pk=session.pk)
    result["counters"] = [stored.recording_chunks, stored.recording_events,
                          stored.recording_output_bytes]
    result["instance_in_step"] = (session.recording_last_hash == stored.recording_last_hash)

    def outcome(call):
        try:
            call()
            return "ok"
        except exceptions.RecordingError as error:
            return type(error).__name__

    result["repeat"] = outcome(
        lambda: recording_append(session=session, sequence=1, events=output_lines("é1\\r\\n")))
    result["conflict"] = outcome(
        lambda: recording_append(session=session, sequence=2, events=output_lines("other\\r\\n")))
    result["gap"] = outcome(
        lambda: recording_append(session=session, sequence=9, events=output_lines("x\\r\\n")))
    # Another writer moved the head on: this stale instance's next chunk is a conflict...
    other = Session.objects.get(pk=session.pk)
    recording_append(session=other, sequence=3, events=output_lines("from the other\\r\\n"))
    result["stale"] = outcome(
        lambda: recording_append(session=session, sequence=3, events=output_lines("mine\\r\\n")))
    # ... and after it, the full path brings the instance up to date.
    result["after_stale"] = outcome(
        lambda: recording_append(session=session, sequence=4, events=output_lines("mine\\r\\n")))
    session.status = SessionStatus.TERMINATED
    session.save(update_fields=["status"])
    recording_seal(session=session)
    result["sealed"] = outcome(
        lambda: recording_append(session=session, sequence=5, events=output_lines("late\\r\\n")))
    report = recording_verify(session=Session.objects.get(pk=session.pk))
    result["verified"] = report.ok
    result["chunks"] = RecordingChunk.objects.filter(session=session).count()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'shell_sessions_recordingchunk'::regclass AND attname = 'data'"
        )
        result["compression"] = cursor.fetchone()[0]
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def appended(tmp_path_factory) -> dict:
    return shell_on_postgresql(SCRIPT, tmp_path_factory.mktemp("bosun"))


def test_the_relays_appends_are_one_statement_each_with_the_counters_kept(appended):
    assert appended["orm_queries"] == 0
    assert appended["chunk_pks"]
    # Three chunks of one event each; "é0\r\n" is 5 bytes of UTF-8.
    assert appended["counters"] == [3, 3, 15]
    assert appended["instance_in_step"]


def test_whatever_the_fast_path_cannot_write_gets_the_full_paths_answer(appended):
    assert appended["repeat"] == "ok"
    assert appended["conflict"] == "RecordingSequenceConflict"
    assert appended["gap"] == "RecordingSequenceGap"
    assert appended["stale"] == "RecordingSequenceConflict"
    assert appended["after_stale"] == "ok"
    assert appended["sealed"] == "RecordingSealed"


def test_the_recording_verifies_and_its_chunks_are_lz4_compressed(appended):
    assert appended["verified"]
    assert appended["chunks"] == 5
    assert appended["compression"] == "l"
