"""How Run Command reads on the pages: status colours, agent timestamps, output sizes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import template

from commands import statuses

register = template.Library()

# Fine statuses (AWS's StatusDetails) and command statuses → Bootstrap badge colours.
STATUS_CLASSES = {
    statuses.SUCCESS: "text-bg-success",
    statuses.FAILED: "text-bg-danger",
    "TimedOut": "text-bg-danger",
    statuses.EXECUTION_TIMED_OUT: "text-bg-danger",
    statuses.DELIVERY_TIMED_OUT: "text-bg-warning",
    statuses.UNDELIVERABLE: "text-bg-warning",
    statuses.INCOMPLETE: "text-bg-warning",
    statuses.IN_PROGRESS: "text-bg-primary",
    statuses.PENDING: "text-bg-secondary",
    statuses.DELAYED: "text-bg-info",
    statuses.CANCELLING: "text-bg-dark",
    statuses.CANCELLED: "text-bg-dark",
    statuses.TERMINATED: "text-bg-dark",
    "Skipped": "text-bg-light border",
}
STATUS_ICONS = {
    statuses.SUCCESS: "check-circle",
    statuses.FAILED: "x-circle",
    "TimedOut": "hourglass-bottom",
    statuses.EXECUTION_TIMED_OUT: "hourglass-bottom",
    statuses.DELIVERY_TIMED_OUT: "hourglass-bottom",
    statuses.UNDELIVERABLE: "exclamation-triangle",
    statuses.INCOMPLETE: "exclamation-triangle",
    statuses.IN_PROGRESS: "arrow-repeat",
    statuses.PENDING: "clock",
    statuses.DELAYED: "pause-circle",
    statuses.CANCELLING: "slash-circle",
    statuses.CANCELLED: "slash-circle",
    statuses.TERMINATED: "stop-circle",
}


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(str(status), "text-bg-secondary")


@register.filter
def status_icon(status: str) -> str:
    return STATUS_ICONS.get(str(status), "circle")


@register.filter
def epoch(seconds: Any) -> datetime | None:
    """An agent's timestamp (seconds since the epoch) as a date the `date` filter formats."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


@register.filter
def took(finished: Any, started: Any) -> str:
    """`finished|took:started`: how long between two moments (datetimes or epoch seconds)."""
    if isinstance(finished, int | float) and isinstance(started, int | float):
        seconds = float(finished) - float(started)
    elif isinstance(finished, datetime) and isinstance(started, datetime):
        seconds = (finished - started).total_seconds()
    else:
        return ""
    if seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def thousands(number: Any) -> str:
    """24000 → 24,000."""
    try:
        return f"{int(number):,}"
    except (TypeError, ValueError):
        return str(number)


@register.filter
def as_written(value: Any) -> str:
    """A parameter's value as a document writes it: true/false, JSON for maps and lists,
    "" for the empty text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    text = str(value)
    return text if text else '""'


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
