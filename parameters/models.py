"""Parameter Store: parameters, their versions, labels, tags and policy notices.

A parameter row carries the metadata of its newest version (what listings and filters read);
each version row carries that version's value and its own copy of the metadata (history shows
what changed). A String value is kept as text; a SecureString value only as a key-service
ciphertext bound to the parameter and version (access.kms), never as text.
"""

from __future__ import annotations

from django.db import models

from parameters.querysets import ParameterQuerySet


class ParameterType(models.TextChoices):
    STRING = "String", "String"
    STRING_LIST = "StringList", "StringList"
    SECURE_STRING = "SecureString", "SecureString"


class Tier(models.TextChoices):
    STANDARD = "Standard", "Standard"
    ADVANCED = "Advanced", "Advanced"


class DataType(models.TextChoices):
    TEXT = "text", "text"
    EC2_IMAGE = "aws:ec2:image", "aws:ec2:image"


class Parameter(models.Model):
    # `lookup` is the name as Bosun finds it: "/a" and "a" are one parameter at the top level,
    # so the leading slash of a top-level name is dropped. `name` is how it was created.
    lookup = models.CharField(max_length=2048, unique=True)
    name = models.CharField(max_length=2048)
    # The hierarchy the parameter sits in ("/" at the top level), for one-level path reads.
    parent_path = models.CharField(max_length=2048, db_index=True)
    type = models.CharField(max_length=16, choices=ParameterType.choices)
    data_type = models.CharField(max_length=32, choices=DataType.choices, default=DataType.TEXT)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    description = models.TextField(blank=True, default="")
    allowed_pattern = models.TextField(blank=True, default="")
    # The KeyId as the writer gave it (AWS echoes it back); empty unless SecureString.
    key_id = models.CharField(max_length=2048, blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    # [{"PolicyType", "PolicyText", "PolicyStatus", ...}] as parameters.policies keeps them.
    policies = models.JSONField(default=list, blank=True)
    # When the policy task must next look at this parameter (null: never).
    next_policy_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_modified_at = models.DateTimeField()
    last_modified_user = models.CharField(max_length=512)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ParameterQuerySet.as_manager()

    class Meta:
        ordering = ["lookup"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_secure(self) -> bool:
        return self.type == ParameterType.SECURE_STRING


class ParameterVersion(models.Model):
    parameter = models.ForeignKey(Parameter, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    type = models.CharField(max_length=16, choices=ParameterType.choices)
    data_type = models.CharField(max_length=32, choices=DataType.choices, default=DataType.TEXT)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    value = models.TextField(blank=True, default="")  # empty for SecureString
    ciphertext = models.BinaryField(null=True, blank=True)  # SecureString only
    description = models.TextField(blank=True, default="")
    allowed_pattern = models.TextField(blank=True, default="")
    key_id = models.CharField(max_length=2048, blank=True, default="")
    policies = models.JSONField(default=list, blank=True)
    modified_at = models.DateTimeField()
    modified_user = models.CharField(max_length=512)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parameter", "version"], name="one_parameter_version")
        ]
        ordering = ["parameter", "version"]

    def __str__(self) -> str:
        return f"{self.parameter.name}:{self.version}"


class ParameterLabel(models.Model):
    """A label names one version; a parameter's labels are unique and move between versions."""

    parameter = models.ForeignKey(Parameter, on_delete=models.CASCADE, related_name="labels")
    version = models.ForeignKey(ParameterVersion, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parameter", "name"], name="one_label_per_parameter")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ParameterTag(models.Model):
    parameter = models.ForeignKey(Parameter, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=128)
    value = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parameter", "key"], name="one_parameter_tag_key")
        ]
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class ParameterNotice(models.Model):
    """What a parameter policy announced (or did): shown on the dashboard, kept after the
    parameter itself is gone (an expired parameter is deleted)."""

    class Kind(models.TextChoices):
        EXPIRATION_NOTIFICATION = "ExpirationNotification", "Expires soon"
        EXPIRED = "Expiration", "Expired and deleted"
        NO_CHANGE_NOTIFICATION = "NoChangeNotification", "Unchanged for too long"

    parameter_name = models.CharField(max_length=2048, db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    message = models.TextField()
    version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.parameter_name}: {self.kind}"
