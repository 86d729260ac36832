"""Enqueueing Celery work from services without importing the task modules.

Services schedule tasks by name, so `tasks.py` (which calls services) and `services.py` (which
schedules tasks) never import each other.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def enqueue_on_commit(task_name: str, **kwargs: Any) -> None:
    """Send the task once the current transaction commits, so it finds the rows it needs."""
    transaction.on_commit(lambda: current_app.send_task(task_name, kwargs=kwargs))
