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
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from fleet.models import ManagedNode

DEFAULT_DOCUMENT = "SSM-SessionManagerRunShell"
# Documents that run one fixed command instead of a shell, with their `command` parameter.
INTERACTIVE_DOCUMENTS = ("AWS-StartInteractiveCommand", "Bosun-StartInteractiveCommand")
COMMAND_MAX = 4096
PROFILE_MAX = 4096
RUN_AS_MAX = 64
IDLE_TIMEOUT_DEFAULT = 20
IDLE_TIMEOUT_MAX = 60
# AWS's maxSessionDuration: 1 to 1,440 minutes.
MAX_DURATION_MAX = 1440


class SessionStatus(models.TextChoices):
    """AWS's DescribeSessions statuses."""

    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"  # the agent's socket dropped; it has its grace period to return
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
    # The fixed command of an interactive command session; empty for a shell.
    command = models.TextField(blank=True)
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
    # False: only input keeps the session from its idle timeout (output does not).
    idle_counts_output = models.BooleanField(default=True)
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


class SessionPreferences(models.Model):
    """Session Manager's preferences (what AWS keeps in the SSM-SessionManagerRunShell
    document): a single row, written the first time someone saves them. Until then the
    BOSUN_SESSION_* settings apply (sessions.services.preferences.preferences_effective)."""

    run_as = models.CharField(max_length=RUN_AS_MAX, blank=True)  # "" = the setting's
    shell_profile = models.TextField(blank=True)  # run at the start of each shell session
    idle_timeout_minutes = models.PositiveSmallIntegerField(default=IDLE_TIMEOUT_DEFAULT)
    max_duration_minutes = models.PositiveIntegerField(default=0)  # 0 = no limit
    reason_required = models.BooleanField(default=False)
    idle_counts_output = models.BooleanField(default=True)
    record_input = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.CharField(max_length=256, blank=True)

    class Meta:
        verbose_name_plural = "session preferences"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(idle_timeout_minutes__gte=1)
                & models.Q(idle_timeout_minutes__lte=IDLE_TIMEOUT_MAX),
                name="shell_sessions_preferences_idle_range",
            ),
            models.CheckConstraint(
                condition=models.Q(max_duration_minutes__lte=MAX_DURATION_MAX),
                name="shell_sessions_preferences_max_duration_range",
            ),
        ]

    def __str__(self) -> str:
        return "session preferences"


class RunAsRule(models.Model):
    """Who a user's sessions run as (AWS's SSMSessionRunAs principal tag): set for one user or
    for one group, never both."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="session_run_as",
    )
    group = models.OneToOneField(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="session_run_as"
    )
    run_as = models.CharField(max_length=RUN_AS_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False) & models.Q(group__isnull=True))
                | (models.Q(user__isnull=True) & models.Q(group__isnull=False)),
                name="shell_sessions_run_as_user_or_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.principal_label} → {self.run_as}"

    @property
    def principal_label(self) -> str:
        if self.user is not None:
            return f"user {self.user.get_username()}"
        return f"group {self.group.name if self.group else '?'}"
