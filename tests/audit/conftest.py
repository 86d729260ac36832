"""Audit fixtures: a trail of events, and raw SQL to tamper with it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.services import audit_record


@pytest.fixture
def trail(db) -> Callable[..., list[AuditEvent]]:
    """`trail(n, **fields)` appends n events and returns them oldest first."""

    def append(count: int, **fields) -> list[AuditEvent]:
        defaults = {
            "principal": "ada",
            "action": "ssm:PutParameter",
            "outcome": AuditEvent.Outcome.SUCCESS,
            "resources": ["arn:aws:ssm:us-east-1:000000000000:parameter/app/db-host"],
            "params": {"Name": "/app/db-host", "Type": "String"},
            "face": AuditEvent.Face.WEB,
        }
        return [audit_record(**{**defaults, **fields}) for _ in range(count)]

    return append


def execute(sql: str, params: tuple = ()) -> None:
    """Tamper as someone with database access would: plain SQL, no ORM safeguards."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
