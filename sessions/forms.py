"""Forms of the Session Manager pages: the list's filters and the start form. They parse what
people type; the services decide what is allowed and valid."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from parameters.forms import BootstrapForm
from sessions.models import (
    COMMAND_MAX,
    DEFAULT_DOCUMENT,
    ENDED_SESSION_STATUSES,
    IDLE_TIMEOUT_MAX,
    INTERACTIVE_DOCUMENTS,
    MAX_DURATION_MAX,
    PROFILE_MAX,
    RUN_AS_MAX,
    Session,
    SessionStatus,
)

ACTIVE = "active"
ENDED = "ended"
STATE_CHOICES = [
    ("", "Any state"),
    (ACTIVE, "Active"),
    (ENDED, "Ended"),
    *SessionStatus.choices,
]
NODE_ID_MAX = 20
SHELL = "shell"
COMMAND = "command"
SESSION_TYPES = [(SHELL, "Shell"), (COMMAND, "Interactive command")]


class SessionFilterForm(BootstrapForm):
    user = forms.CharField(required=False, max_length=150, label="User")
    node = forms.CharField(required=False, max_length=256, label="Node id or name")
    state = forms.ChoiceField(required=False, choices=STATE_CHOICES, label="State")
    started_after = forms.DateField(
        required=False, label="Started from", widget=forms.DateInput(attrs={"type": "date"})
    )
    started_before = forms.DateField(
        required=False, label="Started until", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        after, before = cleaned.get("started_after"), cleaned.get("started_before")
        if after and before and after > before:
            self.add_error("started_before", "The end of the range is before its start.")
        return cleaned

    def criteria(self) -> dict[str, Any]:
        """The valid filters (a field with an error filters nothing; its error shows)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {
            name: value.strip() if isinstance(value, str) else value
            for name, value in cleaned.items()
            if value and name not in self.errors
        }

    def apply(self, sessions: QuerySet[Session]) -> QuerySet[Session]:
        criteria = self.criteria()
        if user := criteria.get("user"):
            sessions = sessions.filter(principal_name__icontains=user)
        if node := criteria.get("node"):
            sessions = sessions.filter(Q(node__id__iexact=node) | Q(node__name__icontains=node))
        state = criteria.get("state")
        if state == ACTIVE:
            sessions = sessions.exclude(status__in=ENDED_SESSION_STATUSES)
        elif state == ENDED:
            sessions = sessions.filter(status__in=ENDED_SESSION_STATUSES)
        elif state:
            sessions = sessions.filter(status=state)
        # Whole days, in the server's time zone (UTC), both ends included.
        if after := criteria.get("started_after"):
            sessions = sessions.filter(started_at__gte=_day_start(after))
        if before := criteria.get("started_before"):
            sessions = sessions.filter(started_at__lt=_day_start(before, next_day=True))
        return sessions


def _day_start(day: Any, *, next_day: bool = False) -> datetime:
    moment = timezone.make_aware(datetime.combine(day, time.min))
    return moment + timedelta(days=1) if next_day else moment


class SessionStartForm(BootstrapForm):
    node_id = forms.CharField(
        max_length=NODE_ID_MAX,
        label="Node",
        widget=forms.TextInput(attrs={"placeholder": "mi-…", "list": "startable-nodes"}),
    )
    reason = forms.CharField(
        required=False,
        max_length=256,
        label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "Why you need a shell (kept in the audit)"}),
    )

    # Not required: a form posted without it (the node page's button) starts a shell.
    session_type = forms.ChoiceField(
        required=False,
        choices=SESSION_TYPES,
        initial=SHELL,
        label="Session type",
        widget=forms.RadioSelect,
    )
    command = forms.CharField(
        required=False,
        max_length=COMMAND_MAX,
        strip=False,
        label="Command",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, reason_required: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if reason_required:
            self.fields["reason"].required = True
            self.fields["reason"].label = "Reason (required)"

    def clean_node_id(self) -> str:
        return str(self.cleaned_data["node_id"]).strip()

    def clean_reason(self) -> str:
        return str(self.cleaned_data.get("reason") or "").strip()

    def clean_session_type(self) -> str:
        return str(self.cleaned_data.get("session_type") or SHELL)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("session_type") == COMMAND and not str(cleaned.get("command") or "").strip():
            self.add_error(
                "command",
                "Give the command to run: an interactive command session runs it instead of "
                "a shell.",
            )
        return cleaned

    def document(self) -> tuple[str, dict[str, list[str]] | None]:
        """The session document and its parameters, as session_start takes them."""
        if self.cleaned_data.get("session_type") == COMMAND:
            return INTERACTIVE_DOCUMENTS[0], {"command": [self.cleaned_data["command"]]}
        return DEFAULT_DOCUMENT, None


def _range_messages(message: str) -> dict[str, str]:
    return {"min_value": message, "max_value": message, "invalid": f"{message[:-1]}, in digits."}


class PreferencesForm(BootstrapForm):
    run_as = forms.CharField(
        required=False,
        max_length=RUN_AS_MAX,
        label="Default run-as user",
        widget=forms.TextInput(attrs={"placeholder": "ssm-user", "autocomplete": "off"}),
    )
    shell_profile = forms.CharField(
        required=False,
        max_length=PROFILE_MAX,
        strip=False,
        label="Linux shell profile",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    idle_timeout_minutes = forms.IntegerField(
        min_value=1,
        max_value=IDLE_TIMEOUT_MAX,
        label="Idle timeout (minutes)",
        error_messages=_range_messages(f"The idle timeout is 1 to {IDLE_TIMEOUT_MAX} minutes."),
    )
    max_duration_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_DURATION_MAX,
        label="Maximum duration (minutes)",
        error_messages=_range_messages(
            f"The maximum duration is 0 (no limit) to {MAX_DURATION_MAX} minutes."
        ),
    )
    reason_required = forms.BooleanField(required=False, label="Require a reason")
    record_input = forms.BooleanField(required=False, label="Record what is typed")
    idle_counts_output = forms.BooleanField(
        required=False, label="Output counts as activity for the idle timeout"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        attrs = self.fields["shell_profile"].widget.attrs
        attrs["class"] = f"{attrs['class']} font-monospace"


RULE_USER = "user"
RULE_GROUP = "group"


class RunAsRuleForm(BootstrapForm):
    prefix = "rule"  # its run_as is not the preferences form's, on the same page

    kind = forms.ChoiceField(
        choices=[(RULE_USER, "User"), (RULE_GROUP, "Group")], label="For a", initial=RULE_USER
    )
    name = forms.CharField(
        max_length=150,
        label="User or group name",
        widget=forms.TextInput(attrs={"list": "run-as-principals"}),
    )
    run_as = forms.CharField(
        max_length=RUN_AS_MAX,
        label="Runs as",
        widget=forms.TextInput(attrs={"placeholder": "ssm-user", "autocomplete": "off"}),
    )

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()
