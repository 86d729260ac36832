"""Celery tasks of Session Manager: the daily recording expiry (beat)."""

from __future__ import annotations

from celery import shared_task

from sessions.services.recording import recordings_expire


@shared_task(name="sessions.tasks.expire_recordings", ignore_result=True)
def expire_recordings() -> int:
    """Delete recordings past BOSUN_SESSION_RECORDING_RETENTION_DAYS; returns the chunks."""
    return recordings_expire().chunks
