"""Managed nodes, hybrid activations, tags, resource groups and the per-node message queue.

The message queue is the record of what the server asked a node to do (DESIGN.md §3): rows
are written first, the agent's websocket only says "look now", and the agent fetches with a
lease, acks what it has journaled and replies once; the first terminal reply wins.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from fleet.querysets import ActivationQuerySet, ManagedNodeQuerySet, ResourceGroupQuerySet


class Activation(models.Model):
    """A hybrid activation: an id and a one-time-shown code that let servers register."""

    id = models.CharField(primary_key=True, max_length=36)  # a UUID string, as AWS
    code_hash = models.CharField(max_length=64)  # SHA-256 hex of the code; never the code
    description = models.CharField(max_length=256, blank=True)
    default_instance_name = models.CharField(max_length=256, blank=True)
    iam_role = models.CharField(max_length=64, blank=True)
    registration_limit = models.PositiveIntegerField(default=1)
    registrations_count = models.PositiveIntegerField(default=0)
    # Tags applied to every node that registers through this activation: [{"Key", "Value"}].
    node_tags = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Made by `make run` for this host's own agent; hidden from nothing, but labelled.
    is_local = models.BooleanField(default=False)

    objects = ActivationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.id


class NodeStatus(models.TextChoices):
    ONLINE = "Online"
    CONNECTION_LOST = "ConnectionLost"
    DEREGISTERED = "Deregistered"


class ManagedNode(models.Model):
    id = models.CharField(primary_key=True, max_length=20)  # mi- + 17 hex digits
    name = models.CharField(max_length=256, db_index=True)
    status = models.CharField(
        max_length=16, choices=NodeStatus.choices, default=NodeStatus.ONLINE, db_index=True
    )
    status_changed_at = models.DateTimeField()
    registered_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    deregistered_at = models.DateTimeField(null=True, blank=True)
    # Kept as text, not a foreign key: deleting an activation leaves its nodes alone.
    activation_id = models.CharField(max_length=36, blank=True, db_index=True)
    is_local = models.BooleanField(default=False)

    # Credentials: base64 Ed25519 public keys (bosun_agent.protocol.public_key_text).
    public_key = models.CharField(max_length=64)
    previous_public_key = models.CharField(max_length=64, blank=True)
    previous_key_valid_until = models.DateTimeField(null=True, blank=True)
    key_rotated_at = models.DateTimeField()
    key_rotation_requested_at = models.DateTimeField(null=True, blank=True)
    fingerprint = models.CharField(max_length=128)
    clone_suspected_at = models.DateTimeField(null=True, blank=True)
    clone_fingerprint = models.CharField(max_length=128, blank=True)

    # Host facts, as the agent reports them.
    hostname = models.CharField(max_length=256, blank=True)
    platform_type = models.CharField(max_length=32, blank=True)  # Linux, Windows, MacOS
    platform_name = models.CharField(max_length=128, blank=True, db_index=True)
    platform_version = models.CharField(max_length=64, blank=True)
    kernel_version = models.CharField(max_length=128, blank=True)
    architecture = models.CharField(max_length=32, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    ip_addresses = models.JSONField(default=list, blank=True)
    agent_version = models.CharField(max_length=32, blank=True)
    protocol_version = models.PositiveSmallIntegerField(default=1)
    facts = models.JSONField(default=dict, blank=True)  # the whole report, for the detail page
    facts_updated_at = models.DateTimeField(null=True, blank=True)

    objects = ManagedNodeQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["status", "last_seen_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class NodeTag(models.Model):
    node = models.ForeignKey(ManagedNode, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=128)
    value = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["node", "key"], name="fleet_tag_one_key")]
        indexes = [models.Index(fields=["key", "value"])]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class ResourceGroup(models.Model):
    """A named, saved tag query: {"TagFilters": [{"Key": k, "Values": [v, ...]}, ...]}.

    Filters AND together; the values of one filter OR together; no values means "has the key".
    """

    name = models.CharField(max_length=128, unique=True)
    description = models.CharField(max_length=512, blank=True)
    query = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    objects = ResourceGroupQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MessageState(models.TextChoices):
    PENDING = "pending"  # waiting for the agent to fetch it
    LEASED = "leased"  # fetched; back to the queue if not acked before the lease ends
    ACKED = "acked"  # the agent journaled it and will not run it twice
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"  # never delivered before its deadline
    CANCELLED = "cancelled"


TERMINAL_MESSAGE_STATES = (
    MessageState.SUCCEEDED,
    MessageState.FAILED,
    MessageState.EXPIRED,
    MessageState.CANCELLED,
)


class NodeMessage(models.Model):
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    node = models.ForeignKey(ManagedNode, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=MessageState.choices, default=MessageState.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_arn = models.CharField(max_length=256, blank=True)
    deliver_before = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    delivery_count = models.PositiveIntegerField(default=0)
    acked_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["node", "state", "id"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


class RequestNonce(models.Model):
    """Nonces of signed agent requests seen within the skew window: a replay finds its row."""

    node_id = models.CharField(max_length=20)
    nonce = models.CharField(max_length=64)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["node_id", "nonce"], name="fleet_nonce_once")
        ]

    def __str__(self) -> str:
        return f"{self.node_id} {self.nonce}"


class NodeEvent(models.Model):
    """A node's activity timeline: registration, status changes, tags, keys, messages."""

    node = models.ForeignKey(ManagedNode, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=40)
    summary = models.CharField(max_length=500)
    actor = models.CharField(max_length=256, blank=True)  # a user name, or "" for the system
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["node", "-at"])]

    def __str__(self) -> str:
        return f"{self.node_id} {self.kind}"
