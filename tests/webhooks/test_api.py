"""The webhooks REST API: the services behind JSON, the secret returned once, errors as
{detail, code}, and the whole of it in the OpenAPI document."""

from __future__ import annotations

import pytest

from access.services import access_key_create
from audit.models import AuditEvent
from webhooks import delivery, services
from webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from webhooks.sealing import secret_open

pytestmark = pytest.mark.django_db

BASE = "/api/v1/webhooks/"
NEW = {"name": "ops-alerts", "url": "https://hooks.example.com/b", "events": ["parameter.*"]}


@pytest.fixture
def bearer(admin):
    key, secret = access_key_create(principal=admin, user=admin.user)
    return {"Authorization": f"Bearer {key.access_key_id}:{secret}"}


def test_the_api_needs_credentials(client):
    assert client.get(BASE).status_code == 401


def test_creating_returns_the_secret_once(client, bearer):
    created = client.post(BASE, NEW, content_type="application/json", headers=bearer)
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    endpoint = WebhookEndpoint.objects.get()
    assert body["secret"] == secret_open(endpoint)
    assert body["id"] == endpoint.pk and body["events"] == ["parameter.*"]
    assert body["enabled"] is True and body["created_by"] == "ada"
    assert body["last_state"] is None and body["pending_count"] == 0
    listed = client.get(BASE, headers=bearer).json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    shown = client.get(f"{BASE}{endpoint.pk}/", headers=bearer).json()
    assert "secret" not in shown and body["secret"] not in str(shown)
    event = AuditEvent.objects.get(action="bosun:CreateWebhook")
    assert event.face == "api" and body["secret"] not in event.params_json


def test_validation_errors_are_a_400_with_detail_and_code(admin_client):
    shape = admin_client.post(BASE, {"name": "x"}, content_type="application/json")
    assert shape.status_code == 400 and shape.json()["code"] == "validation_error"
    meaning = admin_client.post(
        BASE, {**NEW, "url": "ftp://example.com/"}, content_type="application/json"
    )
    assert meaning.status_code == 400
    assert meaning.json() == {
        "detail": "The URL must start with http:// or https://.",
        "code": "validation_error",
    }


def test_a_taken_name_is_a_409(admin_client, hook):
    response = admin_client.post(BASE, NEW, content_type="application/json")
    assert response.status_code == 409 and response.json()["code"] == "webhook_name_taken"


def test_patch_changes_what_is_given_and_can_regenerate_the_secret(admin_client, hook, receiver):
    url = f"{BASE}{hook.pk}/"
    patched = admin_client.patch(url, {"enabled": False}, content_type="application/json")
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["secret"] is None
    assert patched.json()["url"] == receiver.url
    regenerated = admin_client.patch(
        url, {"regenerate_secret": True}, content_type="application/json"
    ).json()
    hook.refresh_from_db()
    assert regenerated["secret"] == secret_open(hook) != receiver.secret


def test_delete_is_a_204_then_a_404(admin_client, hook):
    url = f"{BASE}{hook.pk}/"
    assert admin_client.delete(url).status_code == 204
    gone = admin_client.get(url)
    assert gone.status_code == 404 and gone.json()["code"] == "webhook_not_found"


def test_deliveries_are_listed_newest_first_paginated_and_filtered(admin_client, hook, receiver):
    receiver.statuses = [500]
    for number in range(3):
        services.webhook_event_emit(event_type="parameter.created", data={"n": number})
    delivery.deliver_due()
    url = f"{BASE}{hook.pk}/deliveries/"
    page = admin_client.get(url, {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    first = page["results"][0]
    assert set(first) >= {"id", "event_type", "state", "attempts", "last_status_code", "body"}
    pending = admin_client.get(url, {"state": "Pending"}).json()
    assert pending["count"] == 1 and pending["results"][0]["last_status_code"] == 500
    assert admin_client.get(url, {"state": "Lost"}).status_code == 400


def test_a_test_event_is_accepted_and_then_delivered(admin_client, hook, receiver):
    response = admin_client.post(f"{BASE}{hook.pk}/test/")
    assert response.status_code == 202
    assert response.json()["event_type"] == "webhook.test"
    assert response.json()["state"] == "Pending"
    delivery.deliver_due()
    assert receiver.requests[0].verified


def test_a_failed_delivery_is_retried_through_the_api(admin_client, hook):
    services.webhook_event_emit(event_type="parameter.created", data={})
    row = WebhookDelivery.objects.get()
    url = f"{BASE}{hook.pk}/deliveries/{row.delivery_id}/retry/"
    refused = admin_client.post(url)
    assert refused.status_code == 409 and refused.json()["code"] == "delivery_not_retryable"
    WebhookDelivery.objects.update(state=DeliveryState.FAILED, next_attempt_at=None)
    assert admin_client.post(url).json()["state"] == "Pending"


def test_the_outsider_gets_403_in_the_api_shape_and_the_denial_is_audited(outsider_client, hook):
    for response in (
        outsider_client.get(BASE),
        outsider_client.post(BASE, NEW, content_type="application/json"),
        outsider_client.get(f"{BASE}{hook.pk}/"),
        outsider_client.delete(f"{BASE}{hook.pk}/"),
        outsider_client.post(f"{BASE}{hook.pk}/test/"),
    ):
        assert response.status_code == 403
        assert set(response.json()) == {"detail", "code"}
    assert AuditEvent.objects.filter(principal="oscar", outcome="denied").count() == 5
    assert WebhookEndpoint.objects.count() == 1


def test_the_reader_lists_but_cannot_change(client, reader_user, hook):
    client.force_login(reader_user)
    assert client.get(BASE).json()["count"] == 1
    assert client.get(f"{BASE}{hook.pk}/deliveries/").status_code == 200
    assert client.patch(f"{BASE}{hook.pk}/", {}, content_type="application/json").status_code == 403


def test_the_openapi_document_describes_the_webhooks_api(admin_client):
    schema = admin_client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/webhooks/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/webhooks/{endpoint_id}/"])
    assert "get" in paths["/api/v1/webhooks/{endpoint_id}/deliveries/"]
    assert "post" in paths["/api/v1/webhooks/{endpoint_id}/test/"]
    components = schema["components"]["schemas"]
    assert "secret" in components["WebhookWithSecret"]["properties"]
    assert "results" in components["PaginatedWebhookList"]["properties"]
