"""Celery tasks of Session Manager (beat): the sweep of stuck sessions, the recording expiry."""

from __future__ import annotations

from celery import shared_task

from sessions.services.recording import recordings_expire
from sessions.services.sweep import sessions_sweep


@shared_task(name="sessions.tasks.expire_recordings", ignore_result=True)
def expire_recordings() -> int:
    """Delete recordings past BOSUN_SESSION_RECORDING_RETENTION_DAYS; returns the chunks."""
    return recordings_expire().chunks


@shared_task(name="sessions.tasks.sweep", ignore_result=True)
def sweep() -> int:
    """End sessions no live party will end (sessions.services.sweep); returns how many."""
    return sessions_sweep()
