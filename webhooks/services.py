"""Writes of the webhooks app: queueing events for delivery, and managing endpoints.

`webhook_event_emit` is what other apps call, inside their own transaction: the delivery rows
commit or roll back with the change they report, and the worker is woken only after the
commit. The endpoint services take the acting principal, authorize first (before any
transaction, so a denial's audit event is never rolled back with it), own their transaction
and audit the change, never the secret (DESIGN.md §4).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from celery import current_app
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from access.authorization import Principal, authorize
from webhooks import signing
from webhooks.events import (
    TEST_EVENT,
    body_json,
    event_type_validated,
    patterns_validated,
    subscribed,
)
from webhooks.exceptions import (
    DeliveryNotFound,
    DeliveryNotRetryable,
    WebhookDisabled,
    WebhookNameTaken,
    WebhookNotFound,
    WebhookValidationError,
)
from webhooks.models import (
    MANAGE_WEBHOOKS,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
    webhook_arn,
)
from webhooks.sealing import secret_open, secret_seal
from webhooks.validation import name_validated, url_validated

DELIVER_TASK = "webhooks.tasks.deliver_due"


class NewWebhook(NamedTuple):
    endpoint: WebhookEndpoint
    secret: str  # the only copy in clear: Bosun keeps it sealed and never shows it again


class UpdatedWebhook(NamedTuple):
    endpoint: WebhookEndpoint
    secret: str | None  # set when regenerated: the only copy in clear


# --- Emitting -------------------------------------------------------------------------------


def webhook_event_emit(
    *, event_type: str, data: Mapping[str, Any], occurred_at: datetime | None = None
) -> int:
    """Queue `event_type` (e.g. "parameter.created", "parameter.updated", "parameter.deleted",
    "parameter.labeled", "parameter.policy.expiration_notification", "parameter.policy.expired",
    "parameter.policy.no_change_notification") for every enabled endpoint subscribed to it,
    inside the caller's transaction; schedules delivery after commit. Returns the number of
    deliveries queued. Costs one cheap query when no endpoint exists."""
    event_type_validated(event_type)
    data_json = _data_json(data)
    subscribers = [
        pk
        for pk, patterns in WebhookEndpoint.objects.filter(enabled=True).values_list("pk", "events")
        if subscribed(patterns, event_type)
    ]
    if not subscribers:
        return 0
    occurred = occurred_at or timezone.now()
    WebhookDelivery.objects.bulk_create(
        _delivery(endpoint_id, event_type, occurred, data_json) for endpoint_id in subscribers
    )
    wake_deliverer_on_commit()
    return len(subscribers)


def _data_json(data: Mapping[str, Any]) -> str:
    if not isinstance(data, Mapping):
        raise WebhookValidationError("Event data is a JSON object (a mapping).")
    try:
        return json.dumps(
            dict(data), cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":")
        )
    except (TypeError, ValueError) as error:
        raise WebhookValidationError(f"The event data is not JSON-serialisable: {error}") from None


def _delivery(
    endpoint_id: int, event_type: str, occurred_at: datetime, data_json: str
) -> WebhookDelivery:
    delivery_id = uuid.uuid4()
    return WebhookDelivery(
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
        event_type=event_type,
        payload=body_json(
            delivery_id=str(delivery_id),
            event_type=event_type,
            occurred_at=occurred_at,
            data_json=data_json,
        ),
        next_attempt_at=timezone.now(),
    )


def _wake_deliverer() -> None:
    current_app.send_task(DELIVER_TASK)


def wake_deliverer_on_commit() -> None:
    """Once per transaction, however many events it emits. Robust: a broker hiccup must not
    fail the emitter's request after its commit; the beat sweep delivers the rows anyway."""
    connection = transaction.get_connection()
    pending = getattr(connection, "run_on_commit", None) or ()
    if any(len(entry) > 1 and entry[1] is _wake_deliverer for entry in pending):
        return
    transaction.on_commit(_wake_deliverer, robust=True)


# --- Endpoints ------------------------------------------------------------------------------


def _audit(principal: Principal, action: str, *endpoint_names: str, **params: Any) -> None:
    resources = [webhook_arn(name) for name in endpoint_names]
    principal.record(action, resources=resources, params=params)


def _endpoint_authorized(principal: Principal, action: str, endpoint_id: object) -> WebhookEndpoint:
    """The endpoint, once `action` on it is allowed. An unknown id is authorized on `*`
    before it is reported unknown, so a refused caller learns nothing about ids."""
    endpoint = None
    if isinstance(endpoint_id, int) or (isinstance(endpoint_id, str) and endpoint_id.isdigit()):
        endpoint = WebhookEndpoint.objects.filter(pk=int(endpoint_id)).first()
    authorize(principal, action, endpoint.arn if endpoint else webhook_arn("*"))
    if endpoint is None:
        raise WebhookNotFound(f"There is no webhook {endpoint_id}.")
    return endpoint


def webhook_endpoint_create(
    *,
    principal: Principal,
    name: str,
    url: str,
    events: Iterable[str],
    enabled: bool = True,
) -> NewWebhook:
    """A new endpoint with a random signing secret, returned here once and kept sealed."""
    name = name_validated(name)
    authorize(principal, MANAGE_WEBHOOKS, webhook_arn(name))
    url = url_validated(url)
    patterns = _patterns(events)
    secret = signing.secret_new()
    try:
        with transaction.atomic():
            if WebhookEndpoint.objects.filter(name=name).exists():
                raise WebhookNameTaken(f"A webhook named {name} already exists.")
            endpoint = WebhookEndpoint.objects.create(
                name=name,
                url=url,
                events=patterns,
                enabled=bool(enabled),
                secret_ciphertext=secret_seal(name=name, secret=secret),
                created_by=principal.user,
            )
            _audit(
                principal,
                "bosun:CreateWebhook",
                name,
                Name=name,
                Url=url,
                Events=patterns,
                Enabled=bool(enabled),
            )
    except IntegrityError:  # created meanwhile by someone else: the unique name decides
        raise WebhookNameTaken(f"A webhook named {name} already exists.") from None
    return NewWebhook(endpoint, secret)


def webhook_endpoint_update(
    *,
    principal: Principal,
    endpoint_id: int,
    name: str | None = None,
    url: str | None = None,
    events: Iterable[str] | None = None,
    enabled: bool | None = None,
    regenerate_secret: bool = False,
) -> UpdatedWebhook:
    """Change what is given; a regenerated secret is returned once. Renaming needs the right
    on the new name too, and re-seals the secret (it is bound to the name)."""
    current = _endpoint_authorized(principal, MANAGE_WEBHOOKS, endpoint_id)
    new_name = current.name if name is None else name_validated(name)
    if new_name != current.name:
        authorize(principal, MANAGE_WEBHOOKS, webhook_arn(new_name))
    new_url = None if url is None else url_validated(url)
    patterns = None if events is None else _patterns(events)
    secret = signing.secret_new() if regenerate_secret else None
    try:
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=current.pk).first()
            if endpoint is None:
                raise WebhookNotFound(f"There is no webhook {endpoint_id}.")
            changed = _apply(endpoint, new_name, new_url, patterns, enabled, secret)
            endpoint.save()
            _audit(
                principal,
                "bosun:UpdateWebhook",
                *dict.fromkeys([current.name, endpoint.name]),
                Name=endpoint.name,
                Url=endpoint.url,
                Events=endpoint.events,
                Enabled=endpoint.enabled,
                Changed=changed,
            )
            if "enabled" in changed and endpoint.enabled:
                wake_deliverer_on_commit()  # what was queued while it was disabled goes now
    except IntegrityError:
        raise WebhookNameTaken(f"A webhook named {new_name} already exists.") from None
    return UpdatedWebhook(endpoint, secret)


def _apply(
    endpoint: WebhookEndpoint,
    name: str,
    url: str | None,
    patterns: list[str] | None,
    enabled: bool | None,
    secret: str | None,
) -> list[str]:
    """Set the new values on the locked row; returns the names of what changed."""
    changed = ["secret"] if secret is not None else []
    if name != endpoint.name:
        if WebhookEndpoint.objects.filter(name=name).exclude(pk=endpoint.pk).exists():
            raise WebhookNameTaken(f"A webhook named {name} already exists.")
        # The ciphertext is bound to the old name: open it under that, seal it under the new.
        secret = secret or secret_open(endpoint)
        endpoint.name = name
        changed.append("name")
    if secret is not None:
        endpoint.secret_ciphertext = secret_seal(name=endpoint.name, secret=secret)
    if url is not None and url != endpoint.url:
        endpoint.url = url
        changed.append("url")
    if patterns is not None and patterns != endpoint.events:
        endpoint.events = patterns
        changed.append("events")
    if enabled is not None and bool(enabled) != endpoint.enabled:
        endpoint.enabled = bool(enabled)
        changed.append("enabled")
    return changed


def _patterns(patterns: Iterable[str]) -> list[str]:
    return patterns_validated(patterns)


def webhook_endpoint_delete(*, principal: Principal, endpoint_id: int) -> None:
    """Removes the endpoint and its delivery history; queued deliveries are dropped."""
    endpoint = _endpoint_authorized(principal, MANAGE_WEBHOOKS, endpoint_id)
    with transaction.atomic():
        pending = endpoint.deliveries.filter(state=DeliveryState.PENDING).count()
        endpoint.delete()
        _audit(
            principal,
            "bosun:DeleteWebhook",
            endpoint.name,
            Name=endpoint.name,
            DroppedPendingDeliveries=pending,
        )


def webhook_delivery_retry(
    *, principal: Principal, endpoint_id: int, delivery_id: str | uuid.UUID
) -> WebhookDelivery:
    """A Failed delivery is queued again, now, for one more attempt (same id and body)."""
    endpoint = _endpoint_authorized(principal, MANAGE_WEBHOOKS, endpoint_id)
    parsed = _uuid(delivery_id)
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .filter(endpoint=endpoint, delivery_id=parsed)
            .first()
            if parsed
            else None
        )
        if delivery is None:
            raise DeliveryNotFound(
                f"There is no delivery {delivery_id} for webhook {endpoint.name}."
            )
        if delivery.state != DeliveryState.FAILED:
            raise DeliveryNotRetryable(
                f"Delivery {delivery.delivery_id} is {delivery.state}; only a failed one is "
                "retried."
            )
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.claim = None
        delivery.save(update_fields=["state", "next_attempt_at", "claim"])
        _audit(
            principal,
            "bosun:RetryWebhookDelivery",
            endpoint.name,
            Delivery=str(delivery.delivery_id),
            EventType=delivery.event_type,
        )
        wake_deliverer_on_commit()
    return delivery


def _uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def webhook_endpoint_test(*, principal: Principal, endpoint_id: int) -> WebhookDelivery:
    """Queue a "webhook.test" event to this endpoint only, whatever it subscribes to."""
    endpoint = _endpoint_authorized(principal, MANAGE_WEBHOOKS, endpoint_id)
    if not endpoint.enabled:
        raise WebhookDisabled(
            f"{endpoint.name} is disabled: enable it first, or nothing would be delivered."
        )
    data = {
        "webhook": endpoint.name,
        "requested_by": principal.name,
        "message": "A test event from Bosun: the signature verified, this endpoint works.",
    }
    with transaction.atomic():
        delivery = _delivery(endpoint.pk, TEST_EVENT, timezone.now(), _data_json(data))
        delivery.save()
        _audit(principal, "bosun:TestWebhook", endpoint.name, Delivery=str(delivery.delivery_id))
        wake_deliverer_on_commit()
    return delivery
