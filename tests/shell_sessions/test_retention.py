"""Deleting recordings past BOSUN_SESSION_RECORDING_RETENTION_DAYS, and the setting itself."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from audit.models import AuditEvent
from bosun.celery import app as celery_app
from bosun.lib.config import ConfigError, load
from sessions import tasks
from sessions.codes import EXPIRE_RECORDINGS, session_arn
from sessions.exceptions import RecordingExpired
from sessions.models import RecordingChunk, Session
from sessions.services.recording import (
    recording_append,
    recording_cast,
    recording_verify,
    recordings_expire,
)
from tests.shell_sessions.conftest import SessionFactory, output_lines

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def thirty_days(settings):
    settings.BOSUN_SESSION_RECORDING_RETENTION_DAYS = 30


def ended(recorded, days_ago: float) -> Session:
    session = recorded(chunks=3)
    Session.objects.filter(pk=session.pk).update(ended_at=NOW - timedelta(days=days_ago))
    return session


def chunks(session: Session) -> int:
    return RecordingChunk.objects.filter(session=session).count()


def test_recordings_of_sessions_that_ended_before_the_retention_lose_their_chunks(recorded):
    old, recent = ended(recorded, 31), ended(recorded, 29)
    result = recordings_expire(now=NOW)
    assert (result.sessions, result.chunks) == (1, 3)
    assert chunks(old) == 0
    assert chunks(recent) == 3


def test_an_expired_session_keeps_its_header_counters_and_seal(recorded):
    old = ended(recorded, 40)
    before = Session.objects.get(pk=old.pk)
    recordings_expire(now=NOW)
    after = Session.objects.get(pk=old.pk)
    assert after.recording_expired_at == NOW
    assert (after.recording_header, after.recording_final_hash, after.recording_chunks) == (
        before.recording_header,
        before.recording_final_hash,
        3,
    )


def test_sessions_still_running_are_never_expired(recorded):
    running = recorded(chunks=2, sealed=False)
    Session.objects.filter(pk=running.pk).update(started_at=NOW - timedelta(days=400))
    assert recordings_expire(now=NOW).sessions == 0
    assert chunks(running) == 2


def test_a_retention_of_zero_keeps_recordings_forever(recorded, settings):
    settings.BOSUN_SESSION_RECORDING_RETENTION_DAYS = 0
    old = ended(recorded, 10_000)
    assert recordings_expire(now=NOW).chunks == 0
    assert chunks(old) == 3


def test_expiring_is_recorded_in_the_audit_trail_and_done_once(recorded):
    old = ended(recorded, 31)
    recordings_expire(now=NOW)
    event = AuditEvent.objects.get(action=EXPIRE_RECORDINGS)
    assert event.resources == [session_arn(old.session_id)]
    assert event.params["Chunks"] == 3
    assert recordings_expire(now=NOW).sessions == 0
    assert AuditEvent.objects.filter(action=EXPIRE_RECORDINGS).count() == 1


def test_an_expired_recording_has_no_cast_file_takes_no_chunks_and_does_not_verify(recorded):
    old = ended(recorded, 31)
    recordings_expire(now=NOW)
    with pytest.raises(RecordingExpired, match="deleted by the retention setting"):
        recording_cast(session=old)
    with pytest.raises(RecordingExpired):
        recording_append(session=old, sequence=3, events=output_lines("late"))
    report = recording_verify(session=old)
    assert report.problem is not None
    assert report.problem.kind == "expired"


def test_sessions_that_never_recorded_are_left_alone(db):
    session = SessionFactory(ended_at=NOW - timedelta(days=90))
    assert recordings_expire(now=NOW).sessions == 0
    assert Session.objects.get(pk=session.pk).recording_expired_at is None


def test_the_daily_task_expires_with_the_setting(recorded):
    ended(recorded, 45)
    assert tasks.expire_recordings() == 3


def test_beat_runs_the_expiry_daily_and_the_worker_knows_the_task():
    entry = django_settings.CELERY_BEAT_SCHEDULE["sessions-expire-recordings"]
    assert entry["task"] == "sessions.tasks.expire_recordings"
    assert tasks.expire_recordings.name == entry["task"]
    celery_app.loader.import_default_modules()
    assert entry["task"] in celery_app.tasks


def test_the_retention_defaults_to_a_year_and_reads_the_environment(tmp_path: Path):
    base = {"BOSUN_DATA_DIR": str(tmp_path)}
    assert load(base, base_dir=tmp_path).session_recording_retention_days == 365
    env = {**base, "BOSUN_SESSION_RECORDING_RETENTION_DAYS": "0"}
    assert load(env, base_dir=tmp_path).session_recording_retention_days == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a year", "expected a whole number, got 'a year'"),
        ("-1", "must be between 0 and 36500, got -1"),
    ],
)
def test_an_invalid_retention_fails_at_start_naming_the_variable(tmp_path: Path, raw, message):
    env = {"BOSUN_DATA_DIR": str(tmp_path), "BOSUN_SESSION_RECORDING_RETENTION_DAYS": raw}
    with pytest.raises(ConfigError) as error:
        load(env, base_dir=tmp_path)
    assert str(error.value) == f"BOSUN_SESSION_RECORDING_RETENTION_DAYS: {message}"
