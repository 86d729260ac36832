"""Reads of the dashboard shell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone

from web.models import SystemCheck, WorkerHeartbeat

# Beat records a heartbeat every 10 s; three missed beats mean the worker or beat is down.
WORKER_STALE_AFTER = timedelta(seconds=30)


def system_checks_visible_to(user: User) -> QuerySet[SystemCheck]:
    """A user sees the checks they asked for; superusers see everyone's."""
    checks = SystemCheck.objects.select_related("requested_by")
    if getattr(user, "is_superuser", False):
        return checks
    return checks.filter(requested_by=user)


@dataclass(frozen=True)
class WorkerStatus:
    online: bool
    hostname: str | None
    seen_at: datetime | None

    @property
    def age_seconds(self) -> int | None:
        if self.seen_at is None:
            return None
        return max(0, int((timezone.now() - self.seen_at).total_seconds()))


def worker_status() -> WorkerStatus:
    latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if latest is None:
        return WorkerStatus(online=False, hostname=None, seen_at=None)
    online = timezone.now() - latest.seen_at < WORKER_STALE_AFTER
    return WorkerStatus(online=online, hostname=latest.hostname, seen_at=latest.seen_at)


@dataclass(frozen=True)
class StackPart:
    label: str
    icon: str
    name: str
    detail: str


def stack_summary() -> list[StackPart]:
    """What this installation runs on, for the dashboard's cards (no secrets: describe())."""
    config = settings.BOSUN
    if config.redis:
        return [
            StackPart("Stack", "hdd-stack", "Production", config.database.describe()),
            StackPart("Channel layer", "broadcast-pin", "Redis", config.redis.describe()),
            StackPart("Task broker", "inboxes", "Redis", "shared by every worker"),
        ]
    polling_ms = cast(float, settings.CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"]) * 1000
    return [
        StackPart("Stack", "hdd-stack", "Embedded", "SQLite database in the data directory"),
        StackPart("Channel layer", "broadcast-pin", "SQLite", "shared by web server and worker"),
        StackPart("Task broker", "inboxes", "File queue", f"polled every {polling_ms:g} ms"),
    ]
