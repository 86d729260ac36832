"""Shell sessions on managed nodes and their recordings.

A session is the record of one shell: who opened it on which node, as whom and why, how it
went and how it ended. Its recording is written by the relay while the session runs (never
by the node, which could edit it first): an asciicast v2 header kept on the session, and the
events in numbered chunks whose SHA-256 hashes chain from the header to a final seal (see
sessions.chain for the arithmetic, sessions.services.recording for the rules).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from fleet.models import ManagedNode

DEFAULT_DOCUMENT = "SSM-SessionManagerRunShell"
IDLE_TIMEOUT_DEFAULT = 20
IDLE_TIMEOUT_MAX = 60
# AWS's maxSessionDuration: 1 to 1,440 minutes.
MAX_DURATION_MAX = 1440


class SessionStatus(models.TextChoices):
    """AWS's DescribeSessions statuses."""

    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"  # the browser dropped; the shell waits out its grace period
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"
    FAILED = "Failed"


ENDED_SESSION_STATUSES = (SessionStatus.TERMINATED, SessionStatus.FAILED)


class Session(models.Model):
    session_id = models.CharField(max_length=96, unique=True)  # <username>-<17 hex>
    # PROTECT: a recording is evidence and outlives its node; only retention removes it.
    node = models.ForeignKey(ManagedNode, on_delete=models.PROTECT, related_name="shell_sessions")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # As they were at the start, so the record still names a user deleted since.
    principal_arn = models.CharField(max_length=256)
    principal_name = models.CharField(max_length=256)
    document_name = models.CharField(max_length=128, default=DEFAULT_DOCUMENT)
    run_as = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=256, blank=True)  # AWS allows 256 characters
    status = models.CharField(
        max_length=16,
        choices=SessionStatus.choices,
        default=SessionStatus.CONNECTING,
        db_index=True,
    )
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # When `status` last changed: how long a session has waited in Connecting, Disconnected
    # or Terminating (sessions.services.sweep ends those that waited too long).
    status_changed_at = models.DateTimeField(default=timezone.now)
    end_reason = models.TextField(blank=True)
    bytes_in = models.PositiveBigIntegerField(default=0)  # browser to shell
    bytes_out = models.PositiveBigIntegerField(default=0)  # shell to browser
    idle_timeout_minutes = models.PositiveSmallIntegerField(default=IDLE_TIMEOUT_DEFAULT)
    max_duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    # Required: a session whose recording cannot be written is refused or ended.
    recording_required = models.BooleanField(default=False)
    input_recorded = models.BooleanField(default=True)

    # The recording. The header is kept as the exact text of the .cast's first line, since
    # it is hashed: a JSON column could hand back different bytes (jsonb reorders keys).
    recording_header = models.TextField(blank=True)
    # The chain's head, written with every chunk: what catches chunks cut from the end of a
    # recording that is not sealed yet.
    recording_chunks = models.PositiveIntegerField(default=0)
    recording_last_hash = models.CharField(max_length=64, blank=True)
    recording_events = models.PositiveBigIntegerField(default=0)
    recording_output_bytes = models.PositiveBigIntegerField(default=0)
    recording_sealed_at = models.DateTimeField(null=True, blank=True)
    recording_final_hash = models.CharField(max_length=64, blank=True)
    # The chunks were deleted by the retention setting; the header and seal remain.
    recording_expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["node", "-started_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(idle_timeout_minutes__gte=1)
                & models.Q(idle_timeout_minutes__lte=IDLE_TIMEOUT_MAX),
                name="shell_sessions_idle_timeout_range",
            ),
            models.CheckConstraint(
                condition=models.Q(max_duration_minutes__isnull=True)
                | (
                    models.Q(max_duration_minutes__gte=1)
                    & models.Q(max_duration_minutes__lte=MAX_DURATION_MAX)
                ),
                name="shell_sessions_max_duration_range",
            ),
        ]

    def __str__(self) -> str:
        return self.session_id

    @property
    def is_ended(self) -> bool:
        return self.status in ENDED_SESSION_STATUSES

    @property
    def is_sealed(self) -> bool:
        return self.recording_sealed_at is not None

    @property
    def recording_header_data(self) -> dict[str, Any] | None:
        """The header as a dict (width, height, env, …), for pages and the player."""
        if not self.recording_header:
            return None
        data: dict[str, Any] = json.loads(self.recording_header)
        return data


class RecordingChunk(models.Model):
    """Consecutive asciicast v2 event lines, and the chain hash that covers them."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="chunks")
    sequence = models.PositiveIntegerField()  # 0, 1, 2, … without gaps
    data = models.BinaryField()  # event lines, UTF-8, each ending with "\n"
    sha256 = models.CharField(max_length=64)  # sessions.chain.chunk_hash, hex
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "sequence"], name="shell_sessions_chunk_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.sequence}"
