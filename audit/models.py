"""The audit trail's tables: append-only events, the chain head, and signed checkpoints.

Events and checkpoints refuse every change and removal through the ORM (`save()` of a stored
row, `delete()`, `QuerySet.update()`, `QuerySet.delete()`, `bulk_create()` which would bypass
the chain); the one way out is retention pruning (`audit.services.audit_prune`), which first
anchors what remains in a signed checkpoint. Raw SQL can still change rows: that is what the
hash chain and `manage.py audit verify` are for.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.db import models

from audit.exceptions import AuditTrailImmutable


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AuditTrailImmutable(f"{self.model.__name__} rows are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditTrailImmutable(f"{self.model.__name__} rows are only removed by pruning")

    def bulk_create(self, *args: Any, **kwargs: Any) -> Any:
        raise AuditTrailImmutable(
            f"{self.model.__name__} rows are appended one at a time by audit.services"
        )

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AuditTrailImmutable(f"{self.model.__name__} rows are never updated")

    def _prune(self) -> int:
        """Delete these rows: for audit.services.audit_prune only, after its checkpoint."""
        deleted, _ = models.QuerySet.delete(self)
        return deleted


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditTrailImmutable(f"a recorded {type(self).__name__} is never changed")
        kwargs["force_insert"] = True  # the key is assigned, not generated: never an UPDATE
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditTrailImmutable(f"a recorded {type(self).__name__} is only removed by pruning")


class AuditEvent(AppendOnlyModel):
    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        DENIED = "denied", "Denied"
        ERROR = "error", "Error"

    class Face(models.TextChoices):
        WEB = "web", "Dashboard"
        API = "api", "REST API"
        AWS = "aws", "AWS API"
        WS = "ws", "Websocket"
        TASK = "task", "Background task"
        CLI = "cli", "Command line"
        AGENT = "agent", "Agent"  # a node's agent, acting for a command's sender

    # Gapless and in commit order: assigned under the chain head's lock, never by a sequence
    # object (those skip numbers on rollback).
    sequence = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField(db_index=True)
    # username, `access-key:AKIA…`, `agent:mi-…` or `system`
    principal = models.CharField(max_length=256)
    # Not a foreign key: deleting a user must neither cascade into nor rewrite the trail.
    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    source_ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    action = models.CharField(max_length=128, db_index=True)  # ssm:PutParameter, bosun:SignIn
    resources = models.JSONField(default=list, blank=True)  # ARNs or names, strings only
    # Canonical JSON text, secrets redacted: stored exactly as hashed (see audit.chain).
    params_json = models.TextField(default="{}")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_code = models.CharField(max_length=128, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    face = models.CharField(max_length=8, choices=Face.choices, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects: ClassVar[AppendOnlyQuerySet] = AppendOnlyQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ("-sequence",)

    def __str__(self) -> str:
        return f"#{self.sequence} {self.principal} {self.action} {self.outcome}"

    @property
    def params(self) -> Any:
        return json.loads(self.params_json)

    @property
    def resource_labels(self) -> list[tuple[str, str]]:
        """(label, resource) pairs; an ARN's label is its resource part: `parameter/app/db`."""
        return [
            (
                resource.split(":", 5)[5]
                if resource.startswith("arn:") and resource.count(":") >= 5
                else resource,
                resource,
            )
            for resource in self.resources
        ]


# The model fields an event's hash covers, in the order of audit.chain.HASHED_FIELDS (which
# names `params_json` plain `params`), then the stored hash: what the verifier and the export
# read with values_list().
CHAINED_COLUMNS = (
    "sequence",
    "time",
    "principal",
    "user_id",
    "source_ip",
    "user_agent",
    "action",
    "resources",
    "params_json",
    "outcome",
    "error_code",
    "request_id",
    "face",
    "prev_hash",
    "hash",
)


class ChainHead(models.Model):
    """One row: the newest event's sequence and hash, locked by every append.

    Writers serialize on this row (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's IMMEDIATE
    transactions already admit one writer at a time), so the chain never forks. It also lets
    `verify` notice events deleted from the end of the trail.
    """

    ROW_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=ROW_ID)
    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"chain head at #{self.sequence}"


class Checkpoint(AppendOnlyModel):
    """A signed statement: "event `sequence` had hash `hash`".

    Signed with a key derived from the master key, which never sits in the database, so
    someone who can write the database can neither forge one nor rewrite the chain before one
    without `verify` noticing. Pruning removes events only up to a checkpoint.
    """

    sequence = models.BigIntegerField(primary_key=True)
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    signature = models.CharField(max_length=64)

    objects: ClassVar[AppendOnlyQuerySet] = AppendOnlyQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ("-sequence",)

    def __str__(self) -> str:
        return f"checkpoint at #{self.sequence}"
