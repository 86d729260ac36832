"""Emitting events: rows queued in the emitter's transaction, the worker woken after commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import transaction

from webhooks import services
from webhooks.exceptions import WebhookValidationError
from webhooks.models import DeliveryState, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """The tasks sent to the broker, by name."""
    names: list[str] = []
    monkeypatch.setattr(
        services.current_app, "send_task", lambda name, *args, **kwargs: names.append(name)
    )
    return names


def test_with_no_endpoint_emitting_costs_one_query_and_queues_nothing(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        django_assert_num_queries(1),
    ):
        queued = services.webhook_event_emit(
            event_type="parameter.created", data={"name": "/app/db/host"}
        )
    assert queued == 0
    assert not WebhookDelivery.objects.exists()
    assert callbacks == []


def test_an_endpoint_subscribed_elsewhere_still_costs_one_query(
    admin, hook, django_assert_num_queries
):
    services.webhook_endpoint_update(principal=admin, endpoint_id=hook.pk, events=["automation.*"])
    with django_assert_num_queries(1):
        assert services.webhook_event_emit(event_type="parameter.created", data={}) == 0


def test_a_subscribed_endpoint_gets_one_delivery_with_the_documented_body(hook, sent):
    occurred = datetime(2026, 11, 26, 12, 30, 5, 123000, tzinfo=UTC)
    queued = services.webhook_event_emit(
        event_type="parameter.policy.expired",
        data={"name": "/app/token", "version": 3},
        occurred_at=occurred,
    )
    assert queued == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.endpoint == hook
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 0
    assert json.loads(delivery.payload) == {
        "id": str(delivery.delivery_id),
        "type": "parameter.policy.expired",
        "time": "2026-11-26T12:30:05.123Z",
        "data": {"name": "/app/token", "version": 3},
    }


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "parameter.created", True),
        (["parameter.*"], "parameter.policy.no_change_notification", True),
        (["parameter.created"], "parameter.created", True),
        (["parameter.created"], "parameter.updated", False),
        (["parameter.policy.*"], "parameter.labeled", False),
        (["automation.*", "parameter.deleted"], "parameter.deleted", True),
        (["param*"], "parameters.x", True),
    ],
)
def test_patterns_choose_the_endpoints(admin, receiver, patterns, event_type, expected):
    services.webhook_endpoint_create(principal=admin, name="w", url=receiver.url, events=patterns)
    assert services.webhook_event_emit(event_type=event_type, data={}) == int(expected)


def test_a_disabled_endpoint_gets_nothing(admin, hook):
    services.webhook_endpoint_update(principal=admin, endpoint_id=hook.pk, enabled=False)
    assert services.webhook_event_emit(event_type="parameter.created", data={}) == 0


def test_each_subscribed_endpoint_gets_its_own_delivery_id(admin, hook, receiver):
    services.webhook_endpoint_create(principal=admin, name="all", url=receiver.url, events=["*"])
    assert services.webhook_event_emit(event_type="parameter.deleted", data={"n": 1}) == 2
    bodies = [json.loads(row.payload) for row in WebhookDelivery.objects.all()]
    assert len({body["id"] for body in bodies}) == 2
    assert {body["data"]["n"] for body in bodies} == {1}


def test_the_worker_is_woken_once_per_transaction_and_only_after_commit(
    hook, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        for name in ("/a", "/b", "/c"):
            services.webhook_event_emit(event_type="parameter.created", data={"name": name})
        assert sent == []
    assert len(callbacks) == 1
    assert sent == [services.DELIVER_TASK]
    assert WebhookDelivery.objects.count() == 3


def test_a_rolled_back_emitter_leaves_no_delivery_and_no_wake_up(
    hook, sent, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.webhook_event_emit(event_type="parameter.updated", data={"name": "/x"})
        raise RuntimeError("the parameter write failed")
    assert not WebhookDelivery.objects.exists()
    assert callbacks == [] and sent == []


def test_a_broker_failure_after_commit_does_not_fail_the_emitter(
    hook, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(services.current_app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(event_type="parameter.created", data={})
    # The row stays Pending: the beat sweep delivers it.
    assert WebhookDelivery.objects.get().state == DeliveryState.PENDING


@pytest.mark.parametrize("event_type", ["", "Parameter.Created", "parameter..x", "a b", 7])
def test_a_malformed_event_type_is_refused(event_type):
    with pytest.raises(WebhookValidationError):
        services.webhook_event_emit(event_type=event_type, data={})


def test_data_that_is_not_json_is_refused_even_without_endpoints():
    with pytest.raises(WebhookValidationError, match="JSON"):
        services.webhook_event_emit(event_type="parameter.created", data={"x": object()})


def test_dates_in_data_are_written_as_iso_text(hook):
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    services.webhook_event_emit(event_type="parameter.created", data={"at": moment})
    body = json.loads(WebhookDelivery.objects.get().payload)
    assert body["data"]["at"].startswith("2026-01-02T03:04:05")
