"""Who may do what: managed policies attached to users and groups, and access keys."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class ManagedPolicy(models.Model):
    """A named IAM-shaped policy document; built-ins are shipped read-only."""

    name = models.CharField(max_length=128, unique=True)
    description = models.CharField(max_length=1000, blank=True)
    # The document as the author wrote it (validated by access.policy.parse_policy on write).
    document = models.TextField()
    builtin = models.BooleanField(default=False)
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="managed_policies", blank=True
    )
    groups = models.ManyToManyField(Group, related_name="managed_policies", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "managed policies"

    def __str__(self) -> str:
        return self.name


class AccessSettings(models.Model):
    """Installation-wide access rules (a single row)."""

    require_mfa_for_everyone = models.BooleanField(default=False)
    mfa_required_groups = models.ManyToManyField(Group, related_name="+", blank=True)

    class Meta:
        verbose_name_plural = "access settings"

    def __str__(self) -> str:
        return "access settings"

    @classmethod
    def current(cls) -> AccessSettings:
        settings_row, _ = cls.objects.get_or_create(pk=1)
        return settings_row


class EncryptionKey(models.Model):
    """A named key of the key service, like a KMS key: it owns a series of data keys.

    Only wrapped data keys are stored; the master key that unwraps them never enters the
    database (bosun.lib.crypto).
    """

    key_id = models.CharField(max_length=36, unique=True)  # a UUID, as KMS key ids are
    description = models.CharField(max_length=256, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key_id


class DataKey(models.Model):
    """One generation of a key's data key; the newest encrypts, every one still decrypts."""

    key = models.ForeignKey(EncryptionKey, on_delete=models.PROTECT, related_name="data_keys")
    generation = models.PositiveIntegerField()
    wrapped = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "generation"], name="one_data_key_generation")
        ]
        ordering = ["key", "-generation"]

    def __str__(self) -> str:
        return f"{self.key.key_id} generation {self.generation}"

    @property
    def ref(self) -> str:
        """How a ciphertext names the data key that made it."""
        return f"{self.key.key_id}/{self.generation}"


class KeyAlias(models.Model):
    name = models.CharField(max_length=256, unique=True)  # "alias/…"
    key = models.ForeignKey(EncryptionKey, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        verbose_name_plural = "key aliases"

    def __str__(self) -> str:
        return self.name


class AccessKey(models.Model):
    """A user's key pair for programmatic access (SigV4 and the REST API).

    SigV4 needs the secret on the server, so it is kept encrypted by the key service, bound to
    its key id; it is shown once, when created.
    """

    class Status(models.TextChoices):
        ACTIVE = "Active", "Active"
        INACTIVE = "Inactive", "Inactive"

    access_key_id = models.CharField(max_length=20, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys"
    )
    secret_ciphertext = models.BinaryField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["user", "created_at"]

    def __str__(self) -> str:
        return self.access_key_id
