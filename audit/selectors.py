"""Reading the audit trail: who sees which events, filtering them, exporting them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from audit import chain
from audit.models import CHAINED_COLUMNS, AuditEvent

EXPORT_CHUNK_SIZE = 2000


def events_visible_to(user: Any) -> QuerySet[AuditEvent]:
    """Superusers see every event; anyone else the events they caused (sign-ins included).

    The one place the access app swaps for its `bosun:ReadAuditTrail` policy scope.
    """
    events = AuditEvent.objects.all()
    if not getattr(user, "is_authenticated", False):
        return events.none()
    if getattr(user, "is_superuser", False):
        return events
    return events.filter(user_id=user.pk)


@dataclass(frozen=True)
class EventFilter:
    """What the list page (and, later, the API) narrows the trail by; empty means any."""

    who: str = ""
    action: str = ""
    resource: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None


def events_filter(events: QuerySet[AuditEvent], criteria: EventFilter) -> QuerySet[AuditEvent]:
    """`who` and `resource` match substrings; `action` is exact, or a prefix with `*`
    (`ssm:*`, `ssm:Get*`); `since` is inclusive and `until` exclusive."""
    if criteria.who:
        events = events.filter(principal__icontains=criteria.who)
    if criteria.action:
        if criteria.action.endswith("*"):
            events = events.filter(action__startswith=criteria.action.rstrip("*"))
        else:
            events = events.filter(action=criteria.action)
    if criteria.resource:
        events = events.filter(resources__icontains=criteria.resource)
    if criteria.outcome:
        events = events.filter(outcome=criteria.outcome)
    if criteria.since is not None:
        events = events.filter(time__gte=criteria.since)
    if criteria.until is not None:
        events = events.filter(time__lt=criteria.until)
    return events


def export_records(
    *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Events oldest first as JSON-ready records, hashes included, streamed from the database.

    Each record holds everything `audit.chain.exported_hash` needs to recompute its hash, so
    an export can be checked away from Bosun.
    """
    events = events_filter(AuditEvent.objects.all(), EventFilter(since=since, until=until))
    rows = events.order_by("sequence").values_list(*CHAINED_COLUMNS)
    for row in rows.iterator(chunk_size=EXPORT_CHUNK_SIZE):
        record = dict(zip((*chain.HASHED_FIELDS, "hash"), row, strict=True))
        record["time"] = chain.format_time(record["time"])
        record["params"] = json.loads(record["params"])
        yield record
