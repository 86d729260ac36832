"""Workers claiming at once never share a delivery (PostgreSQL: FOR UPDATE SKIP LOCKED; the
embedded stack's SQLite file: the write lock every transaction takes at BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from access.authorization import Principal
from webhooks import delivery, services
from webhooks.models import WebhookDelivery


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_take_each_delivery_once(admin_user, monkeypatch):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip(
            "the in-memory SQLite test database locks whole tables across threads, unlike a "
            "WAL file; runs on PostgreSQL or a file-based test database"
        )
    # Autocommit here: each emit would wake a worker through the broker at once.
    monkeypatch.setattr(services.current_app, "send_task", lambda *args, **kwargs: None)
    services.webhook_endpoint_create(
        principal=Principal(user=admin_user),
        name="busy",
        url="http://127.0.0.1:9/",
        events=["*"],
    )
    for number in range(60):
        services.webhook_event_emit(event_type="parameter.created", data={"n": number})
    now = timezone.now()
    claimed: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def worker(mine: list[int]) -> None:
        try:
            while batch := delivery.claim_due(now=now, size=7):
                mine.extend(attempt.pk for attempt in batch)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    everything = [pk for mine in claimed for pk in mine]
    assert len(everything) == len(set(everything)) == 60
    assert set(everything) == set(WebhookDelivery.objects.values_list("pk", flat=True))
