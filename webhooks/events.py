"""Event types, the patterns endpoints subscribe with, and the body every delivery carries."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from webhooks.exceptions import WebhookValidationError

TEST_EVENT = "webhook.test"
EVENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
# A pattern is an event type in which `*` stands for any run of characters, dots included:
# "parameter.*" takes "parameter.policy.expired" too.
PATTERN = re.compile(r"^[a-z0-9_.*-]+$")
MAX_EVENT_TYPE = 128
MAX_PATTERNS = 50
# What the create form offers; any other type an app emits can be subscribed to by name.
KNOWN_EVENTS = (
    "parameter.created",
    "parameter.updated",
    "parameter.deleted",
    "parameter.labeled",
    "parameter.unlabeled",
    "parameter.policy.expiration_notification",
    "parameter.policy.expired",
    "parameter.policy.no_change_notification",
)


def event_type_validated(event_type: object) -> str:
    if (
        not isinstance(event_type, str)
        or len(event_type) > MAX_EVENT_TYPE
        or not EVENT_TYPE.match(event_type)
    ):
        raise WebhookValidationError(
            f"{event_type!r} is not an event type: lower-case words separated by dots, "
            f"at most {MAX_EVENT_TYPE} characters."
        )
    return event_type


def patterns_validated(patterns: object) -> list[str]:
    """Unique, ordered patterns; WebhookValidationError names the faulty one."""
    if isinstance(patterns, str) or not isinstance(patterns, Iterable):
        raise WebhookValidationError('Events are a list of patterns, such as ["parameter.*"].')
    cleaned: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise WebhookValidationError("An event pattern cannot be empty.")
        pattern = pattern.strip()
        if len(pattern) > MAX_EVENT_TYPE or not PATTERN.match(pattern):
            raise WebhookValidationError(
                f'"{pattern}" is not an event pattern: use lower-case letters, digits, '
                '". _ -" and * (any characters), such as "parameter.*" or "*".'
            )
        if pattern not in cleaned:
            cleaned.append(pattern)
    if not cleaned:
        raise WebhookValidationError('Subscribe to at least one event pattern, such as "*".')
    if len(cleaned) > MAX_PATTERNS:
        raise WebhookValidationError(f"At most {MAX_PATTERNS} event patterns.")
    return cleaned


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z")


def subscribed(patterns: Iterable[str], event_type: str) -> bool:
    return any(_compiled(pattern).match(event_type) for pattern in patterns)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body_json(*, delivery_id: str, event_type: str, occurred_at: datetime, data_json: str) -> str:
    """The exact JSON text POSTed, stored as is so every attempt sends the same bytes. The
    data comes serialised already: an event going to many endpoints is serialised once."""
    head = json.dumps(
        {"id": delivery_id, "type": event_type, "time": iso_utc(occurred_at)},
        separators=(",", ":"),
    )
    return f'{head[:-1]},"data":{data_json}}}'
