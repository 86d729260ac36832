"""Managing endpoints: validation, the secret shown once and kept sealed, who may do what."""

from __future__ import annotations

import json

import pytest

from access.authorization import Principal
from access.models import ManagedPolicy
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from tests.factories import UserFactory
from webhooks import services
from webhooks.exceptions import (
    DeliveryNotFound,
    DeliveryNotRetryable,
    WebhookDisabled,
    WebhookNameTaken,
    WebhookNotFound,
    WebhookValidationError,
)
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.sealing import secret_open

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/bosun"


def create(principal, **overrides):
    arguments = {"name": "ops", "url": URL, "events": ["parameter.*"], **overrides}
    return services.webhook_endpoint_create(principal=principal, **arguments)


def test_creating_returns_a_fresh_secret_once_and_keeps_it_only_sealed(admin):
    endpoint, secret = create(admin)
    assert secret.startswith("whsec_") and len(secret) > 40
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert secret.encode() not in bytes(stored.secret_ciphertext)
    assert secret_open(stored) == secret
    assert stored.created_by == admin.user
    assert stored.events == ["parameter.*"] and stored.enabled
    assert create(admin, name="other").secret != secret


def test_creating_is_audited_without_the_secret(admin):
    endpoint, secret = create(admin)
    event = AuditEvent.objects.get(action="bosun:CreateWebhook")
    assert event.outcome == "success"
    assert event.params["Name"] == "ops" and event.params["Url"] == URL
    assert event.resources == [endpoint.arn]
    assert secret not in event.params_json


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": ""}, "Give the webhook a name"),
        ({"name": "has space"}, "letters, digits"),
        ({"name": "x" * 129}, "at most 128"),
        ({"url": "ftp://example.com/"}, "http:// or https://"),
        ({"url": "https:///path"}, "must name a host"),
        ({"url": "https://user:pw@example.com/"}, "Leave credentials out"),
        ({"url": "https://example.com/a b"}, "spaces"),
        ({"url": "https://example.com:99999/"}, "not a valid URL"),
        ({"events": []}, "at least one"),
        ({"events": "parameter.*"}, "a list"),
        ({"events": ["Parameter.Created"]}, "not an event pattern"),
        ({"events": [""]}, "cannot be empty"),
    ],
)
def test_invalid_endpoints_are_refused_with_a_clear_message(admin, arguments, message):
    with pytest.raises(WebhookValidationError) as refused:
        create(admin, **arguments)
    assert message in refused.value.message
    assert not WebhookEndpoint.objects.exists()


def test_single_label_hosts_and_ports_are_fine(admin):
    endpoint, _ = create(admin, url="http://alert-relay:9000/bosun")
    assert endpoint.url == "http://alert-relay:9000/bosun"


def test_names_are_unique(admin):
    create(admin)
    with pytest.raises(WebhookNameTaken):
        create(admin)


def test_patterns_are_kept_once_each_in_order(admin):
    endpoint, _ = create(admin, events=["parameter.created", " * ", "parameter.created"])
    assert endpoint.events == ["parameter.created", "*"]


def test_updating_changes_only_what_is_given_and_audits_what_changed(admin):
    endpoint, secret = create(admin)
    updated, new_secret = services.webhook_endpoint_update(
        principal=admin, endpoint_id=endpoint.pk, url="https://hooks.example.com/v2"
    )
    assert new_secret is None
    assert updated.url.endswith("/v2") and updated.events == ["parameter.*"]
    assert secret_open(updated) == secret
    event = AuditEvent.objects.get(action="bosun:UpdateWebhook")
    assert event.params["Changed"] == ["url"]


def test_renaming_reseals_the_secret_under_the_new_name(admin):
    endpoint, secret = create(admin)
    renamed, _ = services.webhook_endpoint_update(
        principal=admin, endpoint_id=endpoint.pk, name="platform"
    )
    assert renamed.name == "platform"
    assert secret_open(WebhookEndpoint.objects.get(pk=endpoint.pk)) == secret


def test_renaming_onto_a_taken_name_is_refused(admin):
    create(admin, name="taken")
    endpoint, _ = create(admin)
    with pytest.raises(WebhookNameTaken):
        services.webhook_endpoint_update(principal=admin, endpoint_id=endpoint.pk, name="taken")


def test_regenerating_returns_a_new_secret_once_and_the_old_one_stops(admin):
    endpoint, old = create(admin)
    _, new = services.webhook_endpoint_update(
        principal=admin, endpoint_id=endpoint.pk, regenerate_secret=True
    )
    assert new and new != old
    assert secret_open(WebhookEndpoint.objects.get(pk=endpoint.pk)) == new
    event = AuditEvent.objects.get(action="bosun:UpdateWebhook")
    assert event.params["Changed"] == ["secret"]
    assert new not in event.params_json and old not in event.params_json


def test_deleting_removes_the_endpoint_and_its_deliveries(admin):
    endpoint, _ = create(admin)
    services.webhook_event_emit(event_type="parameter.created", data={})
    services.webhook_endpoint_delete(principal=admin, endpoint_id=endpoint.pk)
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
    event = AuditEvent.objects.get(action="bosun:DeleteWebhook")
    assert event.params["DroppedPendingDeliveries"] == 1


def test_an_unknown_endpoint_is_reported_unknown(admin):
    with pytest.raises(WebhookNotFound):
        services.webhook_endpoint_delete(principal=admin, endpoint_id=999)


def test_only_a_failed_delivery_can_be_retried(admin):
    endpoint, _ = create(admin)
    services.webhook_event_emit(event_type="parameter.created", data={})
    pending = WebhookDelivery.objects.get()
    with pytest.raises(DeliveryNotRetryable):
        services.webhook_delivery_retry(
            principal=admin, endpoint_id=endpoint.pk, delivery_id=pending.delivery_id
        )
    with pytest.raises(DeliveryNotFound):
        services.webhook_delivery_retry(
            principal=admin, endpoint_id=endpoint.pk, delivery_id="not-a-uuid"
        )


def test_a_disabled_endpoint_cannot_be_sent_a_test_event(admin):
    endpoint, _ = create(admin, enabled=False)
    with pytest.raises(WebhookDisabled):
        services.webhook_endpoint_test(principal=admin, endpoint_id=endpoint.pk)


@pytest.mark.parametrize("persona", ["operator", "auditor", "outsider", "reader"])
def test_only_whom_policy_allows_may_create_one_and_a_denial_is_audited(persona, request):
    principal = request.getfixturevalue(persona)
    with pytest.raises(AccessDenied):
        create(principal)
    assert not WebhookEndpoint.objects.exists()
    denial = AuditEvent.objects.get(action="bosun:ManageWebhooks")
    assert denial.outcome == "denied" and denial.principal == principal.name


@pytest.mark.parametrize(
    "act",
    [
        lambda principal, pk: services.webhook_endpoint_update(
            principal=principal, endpoint_id=pk, enabled=False
        ),
        lambda principal, pk: services.webhook_endpoint_delete(principal=principal, endpoint_id=pk),
        lambda principal, pk: services.webhook_endpoint_test(principal=principal, endpoint_id=pk),
    ],
    ids=["update", "delete", "test"],
)
def test_the_outsider_may_not_change_an_endpoint(admin, outsider, act):
    endpoint, _ = create(admin)
    with pytest.raises(AccessDenied):
        act(outsider, endpoint.pk)
    assert WebhookEndpoint.objects.get().enabled
    assert AuditEvent.objects.filter(outcome="denied", principal="oscar").count() == 1


def test_the_outsider_is_refused_an_unknown_id_before_learning_it_is_unknown(outsider):
    with pytest.raises(AccessDenied):
        services.webhook_endpoint_delete(principal=outsider, endpoint_id=12345)


def test_a_policy_may_scope_management_to_some_webhooks(admin):
    user = UserFactory(username="tina")
    policy = ManagedPolicy.objects.create(
        name="TeamHooks",
        document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["bosun:ManageWebhooks", "bosun:ListWebhooks"],
                        "Resource": "arn:aws:bosun:*:*:webhook/team-*",
                    }
                ],
            }
        ),
    )
    policy.users.add(user)
    team = Principal(user=user)
    mine, _ = create(team, name="team-a")
    theirs, _ = create(admin, name="ops")
    services.webhook_endpoint_update(principal=team, endpoint_id=mine.pk, enabled=False)
    with pytest.raises(AccessDenied):
        services.webhook_endpoint_update(principal=team, endpoint_id=theirs.pk, enabled=False)
    with pytest.raises(AccessDenied):  # a rename out of the team's names
        services.webhook_endpoint_update(principal=team, endpoint_id=mine.pk, name="ops-2")


def test_no_audit_row_ever_holds_a_secret(admin, receiver):
    endpoint, first = create(admin, url=receiver.url)
    _, second = services.webhook_endpoint_update(
        principal=admin, endpoint_id=endpoint.pk, name="renamed", regenerate_secret=True
    )
    services.webhook_endpoint_test(principal=admin, endpoint_id=endpoint.pk)
    services.webhook_endpoint_delete(principal=admin, endpoint_id=endpoint.pk)
    trail = " ".join(
        event.params_json + " ".join(event.resources) for event in AuditEvent.objects.all()
    )
    assert AuditEvent.objects.count() == 4
    assert first not in trail and second not in trail
