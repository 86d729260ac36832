"""Celery tasks of Run Command: the backstop sweep (beat)."""

from __future__ import annotations

from celery import shared_task

from commands.services.sweep import commands_sweep


@shared_task(name="commands.tasks.sweep", ignore_result=True)
def sweep() -> int:
    return commands_sweep()
