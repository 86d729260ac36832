"""Webhook endpoints and the outbox of deliveries to them.

A delivery row is written in the transaction of whatever emitted the event, so an event is
queued exactly when the change it reports commits, and survives any process dying after that;
workers claim due rows, POST them and record the outcome on the row (DESIGN.md §2).
"""

from __future__ import annotations

import uuid
from typing import Self

from django.conf import settings
from django.db import models
from django.utils import timezone

from access.authorization import Principal, is_allowed
from bosun.lib.arn import arn

LIST_WEBHOOKS = "bosun:ListWebhooks"
MANAGE_WEBHOOKS = "bosun:ManageWebhooks"


def webhook_arn(name: str) -> str:
    return arn("bosun", f"webhook/{name}")


class WebhookEndpointQuerySet(models.QuerySet["WebhookEndpoint"]):
    def visible_to(self, principal: Principal, action: str = LIST_WEBHOOKS) -> Self:
        """The endpoints whose ARN policy allows `action` on (they number in the tens, so each
        is decided on its own; a superuser skips the walk)."""
        user = principal.user
        if user.is_active and user.is_superuser:
            return self
        names = self.order_by().values_list("name", flat=True)
        allowed = [name for name in names if is_allowed(principal, action, webhook_arn(name))]
        return self.filter(name__in=allowed)


class WebhookEndpoint(models.Model):
    name = models.CharField(max_length=128, unique=True)
    url = models.CharField(max_length=2048)  # http(s), checked by webhooks.validation
    # The signing secret, sealed by the key service and bound to the endpoint's name.
    secret_ciphertext = models.BinaryField()
    # Event type patterns: "parameter.created", "parameter.*", "*".
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def arn(self) -> str:
        return webhook_arn(self.name)


class DeliveryState(models.TextChoices):
    PENDING = "Pending"
    DELIVERED = "Delivered"
    FAILED = "Failed"


class WebhookDelivery(models.Model):
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # Sent as X-Bosun-Delivery and the body's "id": receivers deduplicate on it, since a
    # worker dying between the POST and recording it means the POST is made again.
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=128)
    payload = models.TextField()  # the exact JSON body sent, every attempt the same
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # Set by the worker that claimed the row for an attempt; the claim lasts until
    # next_attempt_at, after which another worker may take the row over.
    claim = models.UUIDField(null=True, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_recent"),
            models.Index(fields=["state", "created_at"], name="webhook_delivery_finished"),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.state})"
