"""Reads of the webhooks app, scoped by policy (DESIGN.md §4)."""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from access.authorization import Principal, authorize
from webhooks.exceptions import WebhookNotFound
from webhooks.models import (
    LIST_WEBHOOKS,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
    webhook_arn,
)


def _with_stats(endpoints: QuerySet[WebhookEndpoint]) -> QuerySet[WebhookEndpoint]:
    """Each endpoint's newest delivery (state and time) and its pending and failed counts."""
    latest = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by("-created_at", "-pk")
    return endpoints.select_related("created_by").annotate(
        last_state=Subquery(latest.values("state")[:1]),
        last_delivery_at=Subquery(latest.values("created_at")[:1]),
        pending_count=_count(DeliveryState.PENDING),
        failed_count=_count(DeliveryState.FAILED),
    )


def _count(state: str) -> Coalesce:
    # A subquery per endpoint rather than a join: an endpoint's history can be long.
    counted = (
        WebhookDelivery.objects.filter(endpoint=OuterRef("pk"), state=state)
        .order_by()
        .values("endpoint")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(counted), 0)


def webhook_endpoint_listing(principal: Principal) -> QuerySet[WebhookEndpoint]:
    """The endpoints the principal may see, by name, with their delivery stats:
    AccessDenied (audited) without ListWebhooks."""
    authorize(principal, LIST_WEBHOOKS)
    return _with_stats(WebhookEndpoint.objects.visible_to(principal)).order_by("name")


def webhook_endpoint_get(*, principal: Principal, endpoint_id: object) -> WebhookEndpoint:
    """One endpoint with its stats, once ListWebhooks on it is allowed (an unknown id is
    authorized on `*` first, then reported unknown)."""
    endpoint = None
    if isinstance(endpoint_id, int) or (isinstance(endpoint_id, str) and endpoint_id.isdigit()):
        endpoint = _with_stats(WebhookEndpoint.objects.filter(pk=int(endpoint_id))).first()
    authorize(principal, LIST_WEBHOOKS, endpoint.arn if endpoint else webhook_arn("*"))
    if endpoint is None:
        raise WebhookNotFound(f"There is no webhook {endpoint_id}.")
    return endpoint


def webhook_deliveries(
    endpoint: WebhookEndpoint, *, state: str | None = None
) -> QuerySet[WebhookDelivery]:
    """An endpoint's deliveries, newest first (the endpoint came from webhook_endpoint_get)."""
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    if state:
        deliveries = deliveries.filter(state=state)
    return deliveries.order_by("-created_at", "-pk")
