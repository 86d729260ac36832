"""Parameter change and policy events for webhook subscribers (never a value in them)."""

from __future__ import annotations

from typing import Any

from webhooks.services import webhook_event_emit


def emit(event_type: str, **data: Any) -> None:
    """Queue `event_type` inside the caller's transaction (delivered after it commits)."""
    webhook_event_emit(event_type=event_type, data=data)
