"""`manage.py sessions verify SESSION_ID`: its messages and exit codes."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from audit.chain import format_time
from sessions.models import RecordingChunk
from tests.shell_sessions.conftest import execute
from tests.support.processes import bosun_env, manage

pytestmark = pytest.mark.django_db


def verify(session_id: str) -> str:
    out = io.StringIO()
    call_command("sessions", "verify", session_id, stdout=out)
    return out.getvalue()


def test_verify_reports_an_intact_recording_with_its_seal_and_exits_0(recorded):
    session = recorded(chunks=4)
    assert verify(session.session_id) == (
        f"verified: 4 chunks, sealed at {format_time(session.recording_sealed_at)}, "
        f"final hash {session.recording_final_hash}, as audit event 1 recorded\n"
    )


def test_verify_names_the_first_problem_of_a_tampered_recording_and_exits_1(recorded):
    session = recorded(chunks=4)
    chunk = RecordingChunk.objects.get(session=session, sequence=1)
    execute(
        "UPDATE shell_sessions_recordingchunk SET data = %s WHERE id = %s",
        (bytes(chunk.data).replace(b"chunk", b"CHUNK"), chunk.pk),
    )
    with pytest.raises(CommandError) as failure:
        verify(session.session_id)
    assert failure.value.returncode == 1
    assert str(failure.value) == (
        f"recording of {session.session_id} failed verification: "
        "chunk 1 (edited): its data no longer matches its hash"
    )


def test_verify_of_an_unknown_session_says_so_and_exits_2(db):
    with pytest.raises(CommandError) as failure:
        verify("nobody-0123456789abcdef0")
    assert failure.value.returncode == 2
    assert str(failure.value) == "There is no session nobody-0123456789abcdef0."


def test_verify_without_a_session_id_is_a_usage_error():
    with pytest.raises(CommandError, match="SESSION_ID"):
        call_command("sessions", "verify")


def test_verify_on_a_database_that_was_never_migrated_says_so_in_one_line_and_exits_3(tmp_path):
    done = manage(
        "sessions", "verify", "ghost-0123456789abcdef0", env=bosun_env(BOSUN_DATA_DIR=str(tmp_path))
    )
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "CommandError: cannot read the sessions (no such table: shell_sessions_session); "
        "is the database migrated?"
    ]
