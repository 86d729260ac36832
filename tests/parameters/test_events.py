"""Webhook events of parameter changes: one queued delivery per change, never a value, and
nothing at all when the change rolls back."""

from __future__ import annotations

import pytest
from django.db import transaction

from parameters import services
from parameters.models import Parameter
from tests.parameters.conftest import delivered, refused
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db

VALUE = "value-that-must-not-travel-8f2c"


def test_a_create_queues_parameter_created_without_the_value(put, hook):
    put("/ev/a", VALUE)
    [body] = delivered()
    assert body["type"] == "parameter.created"
    assert body["data"] == {
        "name": "/ev/a",
        "version": 1,
        "type": "String",
        "tier": "Standard",
        "actor": "ada",
    }
    assert set(body) == {"id", "type", "time", "data"}


def test_an_overwrite_queues_parameter_updated(put, hook):
    put("/ev/a", VALUE)
    put("/ev/a", VALUE + "-2", None, overwrite=True)
    [body] = delivered("parameter.updated")
    assert (body["data"]["name"], body["data"]["version"]) == ("/ev/a", 2)


def test_a_delete_queues_parameter_deleted(put, hook, admin):
    put("/ev/a", VALUE)
    services.parameter_delete(principal=admin, name="/ev/a")
    [body] = delivered("parameter.deleted")
    assert body["data"] == {
        "name": "/ev/a",
        "version": 1,
        "type": "String",
        "tier": "Standard",
        "actor": "ada",
    }


def test_deleting_several_queues_one_event_each(put, hook, admin):
    put("/ev/a", VALUE)
    put("/ev/b", VALUE)
    result = services.parameters_delete(principal=admin, names=["/ev/a", "/ev/b", "/ev/none"])
    assert (result.deleted, result.invalid) == (["/ev/a", "/ev/b"], ["/ev/none"])
    assert [body["data"]["name"] for body in delivered("parameter.deleted")] == ["/ev/a", "/ev/b"]


def test_labelling_and_unlabelling_queue_their_events(put, hook, admin):
    put("/ev/a", VALUE)
    services.parameter_label(principal=admin, name="/ev/a", labels=["prod", "9bad"])
    services.parameter_unlabel(principal=admin, name="/ev/a", version=1, labels=["prod"])
    [labeled] = delivered("parameter.labeled")
    assert labeled["data"] == {"name": "/ev/a", "version": 1, "labels": ["prod"], "actor": "ada"}
    [unlabeled] = delivered("parameter.unlabeled")
    assert unlabeled["data"]["labels"] == ["prod"]


def test_a_label_request_with_only_invalid_labels_queues_nothing(put, hook, admin):
    put("/ev/a", VALUE)
    services.parameter_label(principal=admin, name="/ev/a", labels=["1bad", "aws-x"])
    assert delivered("parameter.labeled") == []


def test_no_delivery_carries_a_value(put, hook, admin):
    put("/ev/s", VALUE, "SecureString")
    put("/ev/s", VALUE + "-next", None, overwrite=True)
    services.parameter_label(principal=admin, name="/ev/s", labels=["prod"])
    services.parameter_delete(principal=admin, name="/ev/s")
    payloads = list(WebhookDelivery.objects.values_list("payload", flat=True))
    assert len(payloads) == 4
    assert not any(VALUE in payload for payload in payloads)


def test_a_write_that_rolls_back_queues_nothing(put, hook):
    with pytest.raises(RuntimeError), transaction.atomic():
        put("/ev/rolled", VALUE)
        assert len(delivered()) == 1  # queued inside the transaction...
        raise RuntimeError("the caller's transaction fails after the write")
    assert delivered() == []  # ...and gone with it
    assert not Parameter.objects.exists()


def test_a_refused_write_queues_nothing(put, hook):
    put("/ev/a", VALUE)
    refused("ParameterAlreadyExists", lambda: put("/ev/a", VALUE))
    refused(
        "ParameterPatternMismatchException",
        lambda: put("/ev/a", VALUE, None, overwrite=True, allowed_pattern="^[0-9]+$"),
    )
    assert [body["type"] for body in delivered()] == ["parameter.created"]


def test_an_endpoint_gets_only_the_events_it_subscribed_to(put, admin):
    webhook_endpoint_create(
        principal=admin, name="deletes", url="http://127.0.0.1:9/d/", events=["parameter.deleted"]
    )
    put("/ev/a", VALUE)
    services.parameter_delete(principal=admin, name="/ev/a")
    assert [body["type"] for body in delivered()] == ["parameter.deleted"]


def test_without_endpoints_nothing_is_queued(put, admin):
    put("/ev/a", VALUE)
    services.parameter_delete(principal=admin, name="/ev/a")
    assert not WebhookDelivery.objects.exists()
