"""Documents (SSM schema 2.2, type Command) and their versions; commands and invocations.

A command is the record of one send: what document and parameters, which targets, the rate
control. Each reached node gets one invocation row, created in bulk in the send transaction
(DESIGN.md §2); an invocation is dispatched by creating its node message (fleet's queue),
whose id it knows from the start, so dispatching never has to update the invocation's link.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from commands.querysets import CommandQuerySet, DocumentQuerySet
from fleet.models import ManagedNode


class DocumentFormat(models.TextChoices):
    JSON = "JSON"
    YAML = "YAML"


class Document(models.Model):
    name = models.CharField(max_length=128, unique=True)
    document_type = models.CharField(max_length=32, default="Command")
    # Built-ins ship with Bosun, are kept in step with the code and are read-only.
    is_builtin = models.BooleanField(default=False)
    default_version = models.PositiveIntegerField(default=1)
    latest_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DocumentVersion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    version_name = models.CharField(max_length=128, blank=True)
    content = models.TextField()  # as written, in its format
    content_format = models.CharField(max_length=4, choices=DocumentFormat.choices)
    content_hash = models.CharField(max_length=64)  # SHA-256 hex of `content`
    body = models.JSONField()  # the parsed, validated document
    description = models.TextField(blank=True)
    schema_version = models.CharField(max_length=8)
    platform_types = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_arn = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["document", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["document", "version"], name="commands_doc_version")
        ]

    def __str__(self) -> str:
        return f"{self.document_id}:{self.version}"


class DocumentTag(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=128)
    value = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["document", "key"], name="commands_doc_tag_key")
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class CommandStatus(models.TextChoices):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCESS = "Success"
    CANCELLED = "Cancelled"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELLING = "Cancelling"


TERMINAL_COMMAND_STATUSES = (
    CommandStatus.SUCCESS,
    CommandStatus.CANCELLED,
    CommandStatus.FAILED,
    CommandStatus.TIMED_OUT,
)


class Command(models.Model):
    command_id = models.CharField(max_length=36, unique=True)  # a UUID string, as AWS
    document = models.ForeignKey(Document, null=True, on_delete=models.SET_NULL)
    document_name = models.CharField(max_length=128, db_index=True)
    document_version = models.CharField(max_length=16)
    document_hash = models.CharField(max_length=64)
    # As the sender gave them ({name: [values]}), so a re-run sends the same; references to
    # parameters stay as references (a SecureString's value is never here).
    parameters = models.JSONField(default=dict)
    targets = models.JSONField(default=list)  # [{"Key", "Values"}], InstanceIds included
    comment = models.CharField(max_length=100, blank=True)
    max_concurrency = models.CharField(max_length=7)
    max_errors = models.CharField(max_length=7)
    concurrency_limit = models.PositiveIntegerField()  # MaxConcurrency resolved to a count
    error_limit = models.PositiveIntegerField()  # MaxErrors resolved to a count
    timeout_seconds = models.PositiveIntegerField()  # to start on each node (delivery)
    execution_timeout = models.PositiveIntegerField()
    expires_after = models.DateTimeField()
    # What the agent receives: the steps with parameters and {{ssm:…}} substituted.
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=CommandStatus.choices, default=CommandStatus.PENDING, db_index=True
    )
    status_details = models.CharField(max_length=32, default="Pending")
    target_count = models.PositiveIntegerField(default=0)
    completed_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    delivery_timed_out_count = models.PositiveIntegerField(default=0)
    # Named nodes left out: {"refused": [...], "unknown": [...], "deregistered": [...]}.
    left_out = models.JSONField(default=dict, blank=True)
    # Every invocation has its node message (or was withdrawn): replies skip the dispatcher.
    dispatch_complete = models.BooleanField(default=False)
    requested_at = models.DateTimeField(db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    requested_by_arn = models.CharField(max_length=256)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = CommandQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return self.command_id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_COMMAND_STATUSES


class InvocationStatus(models.TextChoices):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    DELAYED = "Delayed"
    SUCCESS = "Success"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"
    FAILED = "Failed"
    CANCELLING = "Cancelling"


TERMINAL_INVOCATION_STATUSES = (
    InvocationStatus.SUCCESS,
    InvocationStatus.CANCELLED,
    InvocationStatus.TIMED_OUT,
    InvocationStatus.FAILED,
)
OPEN_INVOCATION_STATUSES = (
    InvocationStatus.PENDING,
    InvocationStatus.IN_PROGRESS,
    InvocationStatus.DELAYED,
    InvocationStatus.CANCELLING,
)


class Invocation(models.Model):
    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="invocations")
    node = models.ForeignKey(
        ManagedNode, on_delete=models.CASCADE, related_name="command_invocations"
    )
    node_name = models.CharField(max_length=256)  # as it was when the command was sent
    sequence = models.PositiveIntegerField()  # dispatch order under rate control
    # The node message that carries it (fleet.NodeMessage.message_id), made at dispatch.
    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=16, choices=InvocationStatus.choices, default=InvocationStatus.PENDING
    )
    # AWS's finer status: Pending, InProgress, Delayed, Success, Failed, ExecutionTimedOut,
    # DeliveryTimedOut, Cancelling, Cancelled, Undeliverable, Terminated.
    status_details = models.CharField(max_length=32, default="Pending")
    reason = models.CharField(max_length=500, blank=True)  # why it ended so, for people
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # the agent acked it
    finished_at = models.DateTimeField(null=True, blank=True)
    response_code = models.IntegerField(null=True, blank=True)
    # One entry per document step: name, action, status, status_details, response_code,
    # started_at, finished_at, and per stream (stdout, stderr): the first characters inline,
    # the full length, whether the inline copy is cut, what the agent dropped, the file.
    steps = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["command", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["command", "node"], name="commands_one_per_node")
        ]
        indexes = [
            models.Index(fields=["command", "status"]),
            models.Index(fields=["command", "dispatched_at", "sequence"]),
            models.Index(fields=["node", "-id"]),
        ]

    def __str__(self) -> str:
        return f"{self.command_id}/{self.node_id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_INVOCATION_STATUSES


class OutputChunk(models.Model):
    """Output as the agent streams it, until the invocation ends and it is assembled."""

    invocation = models.ForeignKey(Invocation, on_delete=models.CASCADE, related_name="chunks")
    step = models.PositiveSmallIntegerField()
    stream = models.CharField(max_length=6)  # stdout or stderr
    offset = models.PositiveIntegerField()  # in characters of the stream
    data = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invocation", "step", "stream", "offset"]
        constraints = [
            models.UniqueConstraint(
                fields=["invocation", "step", "stream", "offset"], name="commands_chunk_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.invocation_id} {self.step}/{self.stream}@{self.offset}"
