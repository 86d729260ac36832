"""Delivery to a real HTTP receiver: signed, retried with backoff, failed after the cap."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from access import kms, reencrypt
from webhooks import delivery, services, tasks
from webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from webhooks.sealing import secret_seal

pytestmark = pytest.mark.django_db


def emit(event_type: str = "parameter.created", **data) -> None:
    services.webhook_event_emit(event_type=event_type, data=data or {"name": "/app/db/host"})


def test_a_delivery_reaches_the_receiver_signed_with_the_endpoints_secret(hook, receiver):
    emit("parameter.updated", name="/app/db/host", version=2)
    assert delivery.deliver_due() == 1
    [got] = receiver.requests
    row = WebhookDelivery.objects.get()
    assert got.verified
    assert got.path == "/hook/"
    assert got.body == row.payload.encode()
    assert got.json["data"] == {"name": "/app/db/host", "version": 2}
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "Bosun-Webhooks/1"
    assert got.headers["X-Bosun-Event"] == "parameter.updated"
    assert got.headers["X-Bosun-Delivery"] == str(row.delivery_id) == got.json["id"]
    assert got.headers["X-Bosun-Signature"].startswith("sha256=")
    assert row.state == DeliveryState.DELIVERED
    assert (row.attempts, row.last_status_code, row.last_error) == (1, 200, "")
    assert row.delivered_at is not None and row.next_attempt_at is None


def test_a_receiver_with_another_secret_would_refuse_it(hook, receiver):
    receiver.secret = "whsec_not-the-right-one"
    emit()
    delivery.deliver_due()
    assert receiver.requests[0].verified is False


def test_a_500_is_retried_after_about_30_seconds_then_delivered(hook, receiver):
    receiver.statuses = [500]
    emit()
    now = timezone.now()
    delivery.deliver_due(now=now)
    row = WebhookDelivery.objects.get()
    assert row.state == DeliveryState.PENDING
    assert (row.attempts, row.last_status_code) == (1, 500)
    assert row.last_error.startswith("HTTP 500")
    wait = (row.next_attempt_at - now).total_seconds()
    assert 27 <= wait <= 33

    assert delivery.deliver_due(now=now + timedelta(seconds=20)) == 0  # not due yet
    assert delivery.deliver_due(now=row.next_attempt_at) == 1
    row.refresh_from_db()
    assert row.state == DeliveryState.DELIVERED and row.attempts == 2
    assert [request.verified for request in receiver.requests] == [True, True]
    # Every attempt sends the very same body, and so the same delivery id.
    assert receiver.requests[0].body == receiver.requests[1].body


def test_a_delivery_fails_for_good_after_eight_attempts(hook, receiver):
    receiver.default_status = 503
    emit()
    row = WebhookDelivery.objects.get()
    now = timezone.now()
    waits = []
    for _ in range(delivery.MAX_ATTEMPTS):
        assert delivery.deliver_due(now=now) == 1
        row.refresh_from_db()
        if row.next_attempt_at:
            waits.append((row.next_attempt_at - now).total_seconds())
            now = row.next_attempt_at
    assert row.state == DeliveryState.FAILED
    assert row.attempts == 8 and row.next_attempt_at is None
    assert len(receiver.requests) == 8
    # 30 s doubling: 30, 60, 120, 240, 480, 960, 1920, each within ±10%.
    for wait, base in zip(waits, [30, 60, 120, 240, 480, 960, 1920], strict=True):
        assert base * 0.9 <= wait <= base * 1.1
    assert delivery.deliver_due(now=now + timedelta(days=1)) == 0


def test_backoff_doubles_from_30_seconds_and_stops_at_an_hour():
    for failed, base in [(1, 30), (2, 60), (5, 480), (8, 3600), (40, 3600)]:
        seconds = delivery.backoff(failed).total_seconds()
        assert base * 0.9 <= seconds <= base * 1.1


def test_a_redirect_is_not_followed(hook, receiver):
    receiver.statuses = [302]
    emit()
    delivery.deliver_due()
    row = WebhookDelivery.objects.get()
    assert len(receiver.requests) == 1  # the Location was never asked for
    assert row.state == DeliveryState.PENDING and row.last_status_code == 302
    assert "redirect not followed" in row.last_error


def test_a_slow_receiver_times_out(hook, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.2)
    receiver.delay = 1.0
    emit()
    delivery.deliver_due()
    row = WebhookDelivery.objects.get()
    assert row.state == DeliveryState.PENDING and row.attempts == 1
    assert row.last_status_code is None and "No answer within" in row.last_error


def test_an_unreachable_receiver_is_a_failed_attempt(admin):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    services.webhook_endpoint_create(
        principal=admin, name="gone", url=f"http://127.0.0.1:{port}/", events=["*"]
    )
    emit()
    delivery.deliver_due()
    row = WebhookDelivery.objects.get()
    assert row.attempts == 1 and row.last_error.startswith("Cannot connect")


def test_nothing_is_delivered_when_the_emitters_transaction_rolls_back(hook, receiver):
    with pytest.raises(RuntimeError), transaction.atomic():
        emit()
        raise RuntimeError("rolled back")
    assert delivery.deliver_due() == 0
    assert receiver.requests == []


def test_a_disabled_endpoint_keeps_its_queued_deliveries_until_enabled(admin, hook, receiver):
    emit()
    services.webhook_endpoint_update(principal=admin, endpoint_id=hook.pk, enabled=False)
    assert delivery.deliver_due() == 0
    services.webhook_endpoint_update(principal=admin, endpoint_id=hook.pk, enabled=True)
    assert delivery.deliver_due() == 1
    assert receiver.requests[0].verified


def test_a_claimed_delivery_is_not_claimed_twice(hook):
    emit()
    now = timezone.now()
    assert len(delivery.claim_due(now=now)) == 1
    assert delivery.claim_due(now=now) == []


def test_a_claim_left_by_a_dead_worker_lapses_and_the_delivery_is_made(hook, receiver):
    emit()
    now = timezone.now()
    [abandoned] = delivery.claim_due(now=now)  # the worker dies before posting
    later = now + timedelta(seconds=delivery.CLAIM_SECONDS + 1)
    assert delivery.deliver_due(now=later) == 1
    row = WebhookDelivery.objects.get()
    assert row.state == DeliveryState.DELIVERED
    # Should the first worker wake up after all, its outcome is not written over the row.
    delivery.record(abandoned, delivery.Outcome(False, 500, "HTTP 500"), now=later)
    row.refresh_from_db()
    assert row.state == DeliveryState.DELIVERED and row.last_status_code == 200


def test_a_failed_delivery_is_retried_on_request_once_more(admin, hook, receiver):
    receiver.default_status = 500
    emit()
    row = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=row.pk).update(
        state=DeliveryState.FAILED, attempts=8, next_attempt_at=None
    )
    receiver.default_status = 204
    services.webhook_delivery_retry(
        principal=admin, endpoint_id=hook.pk, delivery_id=row.delivery_id
    )
    assert delivery.deliver_due() == 1
    row.refresh_from_db()
    assert row.state == DeliveryState.DELIVERED and row.attempts == 9
    assert row.last_status_code == 204


def test_a_test_event_goes_to_that_endpoint_only(admin, hook, receiver):
    other, _ = services.webhook_endpoint_create(
        principal=admin, name="everything", url=receiver.url + "other", events=["*"]
    )
    services.webhook_endpoint_test(principal=admin, endpoint_id=hook.pk)
    assert not other.deliveries.exists()
    delivery.deliver_due()
    [got] = receiver.requests
    assert got.verified and got.headers["X-Bosun-Event"] == "webhook.test"
    assert got.json["data"]["webhook"] == "ops-alerts"
    assert got.json["data"]["requested_by"] == admin.name


def test_deliveries_are_made_in_parallel_within_a_batch(admin, receiver):
    for number in range(6):
        services.webhook_endpoint_create(
            principal=admin, name=f"w{number}", url=receiver.url, events=["*"]
        )
    emit()
    receiver.delay = 0.3
    started = timezone.now()
    assert delivery.deliver_due() == 6
    assert (timezone.now() - started).total_seconds() < 1.5
    assert WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).count() == 6


def test_the_secret_never_reaches_the_logs(hook, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.statuses = [500]
    emit()
    now = timezone.now()
    delivery.deliver_due(now=now)
    delivery.deliver_due(now=now + timedelta(minutes=1))
    assert "ops-alerts" in caplog.text  # the log names the endpoint and the outcome
    assert receiver.secret not in caplog.text


def test_key_rotation_reseals_the_secret_and_deliveries_still_verify(hook, receiver):
    before = bytes(hook.secret_ciphertext)
    key = kms.default_key()
    kms.key_rotate(key=key)
    assert reencrypt.reencrypt_key(key=key) >= 1
    hook.refresh_from_db()
    assert bytes(hook.secret_ciphertext) != before
    emit()
    delivery.deliver_due()
    assert receiver.requests[0].verified


def test_finished_deliveries_are_pruned_after_the_retention(hook, receiver):
    emit()
    emit()
    delivery.deliver_due()
    old = timezone.now() - delivery.RETENTION - timedelta(days=1)
    WebhookDelivery.objects.filter(pk=WebhookDelivery.objects.first().pk).update(created_at=old)
    assert delivery.finished_prune() == 1
    assert WebhookDelivery.objects.count() == 1


def test_the_task_delivers_what_is_due(hook, receiver):
    emit()
    assert tasks.deliver_due() == 1
    assert json.loads(receiver.requests[0].body)["type"] == "parameter.created"


def test_a_secret_that_cannot_be_opened_is_never_sent_unsigned(hook, receiver, caplog):
    # Sealed for another webhook's name: the key service refuses to open it here.
    WebhookEndpoint.objects.filter(pk=hook.pk).update(
        secret_ciphertext=secret_seal(name="someone-else", secret="whsec_x")
    )
    emit()
    assert delivery.deliver_due() == 0
    row = WebhookDelivery.objects.get()
    assert receiver.requests == []
    assert row.attempts == 1 and row.state == DeliveryState.PENDING
    assert row.last_error == "The signing secret cannot be opened."
    assert "cannot be opened" in caplog.text
