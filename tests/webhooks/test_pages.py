"""The webhook pages: list, create with the secret shown once, detail, edit, delete."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from webhooks import delivery, services
from webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from webhooks.sealing import secret_open

pytestmark = pytest.mark.django_db

LIST = reverse("webhooks:endpoints")
CREATE = reverse("webhooks:create")
FORM = {"name": "ops-alerts", "url": "https://hooks.example.com/b", "events": "parameter.*"}


def detail(endpoint):
    return reverse("webhooks:endpoint", args=[endpoint.pk])


def test_the_list_shows_each_webhook_with_its_last_delivery_state(admin_client, hook, receiver):
    receiver.default_status = 500
    services.webhook_event_emit(event_type="parameter.created", data={})
    delivery.deliver_due()
    page = admin_client.get(LIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert "ops-alerts" in html and receiver.url in html
    assert "parameter.*" in html and "Pending" in html
    assert 'href="/webhooks/new/"' in html


def test_the_list_never_shows_a_secret(admin, admin_client, receiver):
    _, secret = services.webhook_endpoint_create(
        principal=admin, name="one", url=receiver.url, events=["*"]
    )
    page = admin_client.get(LIST).content.decode()
    assert "one" in page and secret not in page


def test_the_menu_lists_webhooks_for_those_who_may_list_them(admin_client, client, reader_user):
    assert 'href="/webhooks/"' in admin_client.get("/").content.decode()
    client.force_login(reader_user)
    page = client.get(LIST)
    assert page.status_code == 200
    assert 'href="/webhooks/"' in page.content.decode()
    assert 'href="/webhooks/new/"' not in page.content.decode()  # may read, not create


def test_the_outsider_gets_a_403_and_no_menu_entry(outsider_client):
    assert outsider_client.get(LIST).status_code == 403
    assert 'href="/webhooks/"' not in outsider_client.get("/").content.decode()
    assert AuditEvent.objects.filter(action="bosun:ListWebhooks", outcome="denied").exists()


def test_the_list_is_for_signed_in_people(client):
    response = client.get(LIST)
    assert response.status_code == 302 and "login" in response["Location"]


def test_creating_shows_the_secret_once_with_a_verification_snippet(admin_client):
    assert admin_client.get(CREATE).status_code == 200
    response = admin_client.post(CREATE, FORM)
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get(name="ops-alerts")
    secret = secret_open(endpoint)
    html = response.content.decode()
    assert secret in html and "X-Bosun-Signature" in html and "hmac.compare_digest" in html
    assert secret not in admin_client.get(detail(endpoint)).content.decode()


def test_a_bad_form_shows_its_errors_inline(admin_client):
    response = admin_client.post(CREATE, {**FORM, "url": "ftp://x", "events": "Bad!"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "http:// or https://" in html and "not an event pattern" in html
    assert "is-invalid" in html
    assert not WebhookEndpoint.objects.exists()


def test_a_taken_name_is_shown_on_the_form(admin_client, hook):
    response = admin_client.post(CREATE, FORM)
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_the_reader_may_not_open_the_create_form(client, reader_user):
    client.force_login(reader_user)
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, FORM).status_code == 403


def test_the_detail_shows_recent_deliveries_with_their_outcome(admin_client, hook, receiver):
    receiver.default_status = 503
    services.webhook_event_emit(event_type="parameter.labeled", data={"name": "/a"})
    delivery.deliver_due()
    WebhookDelivery.objects.update(state=DeliveryState.FAILED, next_attempt_at=None)
    html = admin_client.get(detail(hook)).content.decode()
    assert "parameter.labeled" in html and "Failed" in html
    assert "503" in html and "HTTP 503" in html
    assert "Send test event" in html and "Retry" in html
    assert reverse("webhooks:delete", args=[hook.pk]) in html


def test_the_detail_paginates_deliveries(admin_client, hook):
    for number in range(30):
        services.webhook_event_emit(event_type="parameter.created", data={"n": number})
    first = admin_client.get(detail(hook)).content.decode()
    assert "Page 1 of 2" in first
    second = admin_client.get(detail(hook), {"page": 2}).content.decode()
    assert "Page 2 of 2" in second


def test_htmx_refreshes_only_the_deliveries(admin_client, hook):
    services.webhook_event_emit(event_type="parameter.created", data={})
    page = admin_client.get(detail(hook)).content.decode()
    assert 'hx-trigger="every 5s"' in page  # a delivery is pending: the table refreshes
    fragment = admin_client.get(detail(hook), headers={"HX-Request": "true"}).content.decode()
    assert 'id="webhook-deliveries"' in fragment and "<html" not in fragment


def test_the_reader_sees_the_detail_without_buttons(client, reader_user, hook):
    client.force_login(reader_user)
    html = client.get(detail(hook)).content.decode()
    assert "ops-alerts" in html and "Send test event" not in html and "Edit" not in html


def test_sending_a_test_event_queues_it(admin_client, hook):
    response = admin_client.post(reverse("webhooks:test", args=[hook.pk]), follow=True)
    assert "Test event queued" in response.content.decode()
    assert WebhookDelivery.objects.get().event_type == "webhook.test"


def test_a_test_event_to_a_disabled_webhook_comes_back_as_a_message(admin, admin_client, hook):
    services.webhook_endpoint_update(principal=admin, endpoint_id=hook.pk, enabled=False)
    response = admin_client.post(reverse("webhooks:test", args=[hook.pk]), follow=True)
    assert "is disabled" in response.content.decode()
    assert not WebhookDelivery.objects.exists()


def test_retrying_a_failed_delivery(admin_client, hook):
    services.webhook_event_emit(event_type="parameter.created", data={})
    row = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(state=DeliveryState.FAILED, attempts=8, next_attempt_at=None)
    url = reverse("webhooks:retry", args=[hook.pk, row.delivery_id])
    response = admin_client.post(url, follow=True)
    assert "queued again" in response.content.decode()
    row.refresh_from_db()
    assert row.state == DeliveryState.PENDING


def test_editing_saves_and_can_regenerate_the_secret(admin_client, hook, receiver):
    edit = reverse("webhooks:edit", args=[hook.pk])
    form = admin_client.get(edit).content.decode()
    assert "parameter.*" in form and receiver.url in form
    saved = admin_client.post(edit, {**FORM, "url": receiver.url, "enabled": "on"})
    assert saved.status_code == 302
    hook.refresh_from_db()
    assert hook.name == "ops-alerts" and hook.enabled
    regenerated = admin_client.post(
        edit, {**FORM, "url": receiver.url, "enabled": "on", "regenerate_secret": "on"}
    )
    assert regenerated.status_code == 200 and "no-store" in regenerated["Cache-Control"]
    hook.refresh_from_db()
    new_secret = secret_open(hook)
    assert new_secret != receiver.secret and new_secret in regenerated.content.decode()


def test_disabling_through_the_form(admin_client, hook):
    admin_client.post(reverse("webhooks:edit", args=[hook.pk]), {**FORM})
    hook.refresh_from_db()
    assert hook.enabled is False


def test_deleting_asks_first_then_deletes(admin_client, hook):
    url = reverse("webhooks:delete", args=[hook.pk])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Delete webhook" in confirm.content.decode()
    assert WebhookEndpoint.objects.exists()
    done = admin_client.post(url)
    assert done.status_code == 302 and done["Location"] == LIST
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_webhook_is_a_404(admin_client):
    assert admin_client.get("/webhooks/999/").status_code == 404
