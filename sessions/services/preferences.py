"""Session Manager's preferences and run-as rules: what AWS keeps in the document
SSM-SessionManagerRunShell (so editing them needs ssm:UpdateDocument on it) and in the
principal tag SSMSessionRunAs.

Until someone saves preferences, the BOSUN_SESSION_* settings are the defaults. Recording
being mandatory and root being allowed stay settings only: they are the server's security
floor, not a preference.

Who a session runs as (`run_as_for`), first match wins:
1. the user's own rule;
2. a rule of one of the user's groups: if several have one, the first by group name
   (alphabetical, ignoring case);
3. the preferences' default run-as user, once saved and not empty;
4. BOSUN_SESSION_RUN_AS;
5. "" — the agent's own user.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from access.authorization import Principal, authorize
from bosun.lib.config import RUN_AS_NAME  # the rule BOSUN_SESSION_RUN_AS is held to
from commands.scope import document_arn
from sessions.exceptions import SessionsValidationError
from sessions.models import (
    DEFAULT_DOCUMENT,
    IDLE_TIMEOUT_MAX,
    MAX_DURATION_MAX,
    PROFILE_MAX,
    RunAsRule,
    SessionPreferences,
)

UPDATE = "ssm:UpdateDocument"
READ = "ssm:GetDocument"


@dataclass(frozen=True)
class Preferences:
    """The preferences in force: the saved row's, else the settings'."""

    run_as: str
    shell_profile: str
    idle_timeout_minutes: int
    max_duration_minutes: int  # 0 = no limit
    reason_required: bool
    record_input: bool
    idle_counts_output: bool
    saved: bool  # False while the settings are the defaults
    updated_at: Any = None
    updated_by: str = ""

    def values(self) -> dict[str, Any]:
        """What an audit event compares, before and after."""
        data = asdict(self)
        for name in ("saved", "updated_at", "updated_by"):
            data.pop(name)
        return data


def preferences_document_arn() -> str:
    return document_arn(DEFAULT_DOCUMENT)


def preferences_effective() -> Preferences:
    row = SessionPreferences.objects.filter(pk=1).first()
    if row is None:
        return Preferences(
            run_as="",
            shell_profile="",
            idle_timeout_minutes=int(settings.BOSUN_SESSION_IDLE_TIMEOUT_MINUTES),
            max_duration_minutes=int(settings.BOSUN_SESSION_MAX_DURATION_MINUTES),
            reason_required=bool(settings.BOSUN_SESSION_REASON_REQUIRED),
            record_input=bool(settings.BOSUN_SESSION_RECORD_INPUT),
            idle_counts_output=bool(settings.BOSUN_SESSION_IDLE_COUNTS_OUTPUT),
            saved=False,
        )
    return Preferences(
        run_as=row.run_as,
        shell_profile=row.shell_profile,
        idle_timeout_minutes=row.idle_timeout_minutes,
        max_duration_minutes=row.max_duration_minutes,
        reason_required=row.reason_required,
        record_input=row.record_input,
        idle_counts_output=row.idle_counts_output,
        saved=True,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def run_as_for(user: User, preferences: Preferences | None = None) -> str:
    """Who `user`'s sessions run as (the order is the module's docstring's)."""
    own = RunAsRule.objects.filter(user=user).values_list("run_as", flat=True).first()
    if own:
        return own
    # Sorted here, not by the database, so SQLite and PostgreSQL (whose collations differ)
    # pick the same group: by name ignoring case, then exactly.
    by_group = sorted(
        RunAsRule.objects.filter(group__user=user).values_list("group__name", "run_as"),
        key=lambda rule: (rule[0].casefold(), rule[0]),
    )
    if by_group:
        return by_group[0][1]
    preferences = preferences or preferences_effective()
    return preferences.run_as or str(settings.BOSUN_SESSION_RUN_AS or "")


def preferences_update(
    *,
    principal: Principal,
    run_as: str,
    shell_profile: str,
    idle_timeout_minutes: int,
    max_duration_minutes: int,
    reason_required: bool,
    record_input: bool,
    idle_counts_output: bool = True,
) -> Preferences:
    """Save the preferences (the first save replaces the settings as defaults); audited with
    the values before and after."""
    authorize(principal, UPDATE, preferences_document_arn())
    run_as = checked_run_as(run_as, field="run_as", required=False)
    shell_profile = _checked_profile(shell_profile)
    _check_range(
        "idle_timeout_minutes", "The idle timeout", idle_timeout_minutes, 1, IDLE_TIMEOUT_MAX
    )
    _check_range(
        "max_duration_minutes", "The maximum duration", max_duration_minutes, 0, MAX_DURATION_MAX
    )
    with transaction.atomic():
        SessionPreferences.objects.select_for_update().filter(pk=1).first()
        before = preferences_effective()
        SessionPreferences.objects.update_or_create(
            pk=1,
            defaults={
                "run_as": run_as,
                "shell_profile": shell_profile,
                "idle_timeout_minutes": idle_timeout_minutes,
                "max_duration_minutes": max_duration_minutes,
                "reason_required": bool(reason_required),
                "record_input": bool(record_input),
                "idle_counts_output": bool(idle_counts_output),
                "updated_at": timezone.now(),
                "updated_by": principal.name,
            },
        )
        after = preferences_effective()
        principal.record(
            UPDATE,
            resources=[preferences_document_arn()],
            params={
                "Name": DEFAULT_DOCUMENT,
                "Change": "preferences",
                "Before": before.values() | {"saved": before.saved},
                "After": after.values(),
            },
        )
    return after


def run_as_rule_put(
    *, principal: Principal, run_as: str, user: User | None = None, group: Group | None = None
) -> RunAsRule:
    """Set who one user's or one group's sessions run as (replacing its rule); audited."""
    authorize(principal, UPDATE, preferences_document_arn())
    if (user is None) == (group is None):
        raise SessionsValidationError("A run-as rule is for one user or one group.", field="who")
    run_as = checked_run_as(run_as, field="run_as", required=True)
    with transaction.atomic():
        # One of the two is None, which filters on IS NULL.
        rule = RunAsRule.objects.select_for_update().filter(user=user, group=group).first()
        before = rule.run_as if rule else None
        if rule is None:
            rule = RunAsRule.objects.create(user=user, group=group, run_as=run_as)
        else:
            rule.run_as = run_as
            rule.save(update_fields=["run_as"])
        _record_rule(principal, rule, before=before, after=run_as)
    return rule


def run_as_rule_delete(*, principal: Principal, rule_id: int) -> None:
    """Remove a run-as rule; audited."""
    authorize(principal, UPDATE, preferences_document_arn())
    with transaction.atomic():
        rule = (
            # Only the rule's row: PostgreSQL locks no nullable side of an outer join.
            RunAsRule.objects.select_for_update(of=("self",))
            .select_related("user", "group")
            .filter(pk=rule_id)
            .first()
        )
        if rule is None:
            raise SessionsValidationError("There is no such run-as rule.", field="rule")
        _record_rule(principal, rule, before=rule.run_as, after=None)
        rule.delete()


def checked_run_as(value: str, *, field: str, required: bool) -> str:
    """A POSIX user name, by the rule BOSUN_SESSION_RUN_AS is held to."""
    value = (value or "").strip()
    if not value:
        if required:
            raise SessionsValidationError("Name the user to run as.", field=field)
        return value
    if not RUN_AS_NAME.match(value):
        raise SessionsValidationError(
            f"{value!r:.40} is not a user name: lower-case letters, digits, '_', '.' and '-', "
            "starting with a letter or '_', at most 32 characters (such as ssm-user).",
            field=field,
        )
    return value


def _checked_profile(profile: str) -> str:
    profile = (profile or "").replace("\r\n", "\n")
    if "\x00" in profile:
        raise SessionsValidationError(
            "The shell profile may not contain NUL characters.", field="shell_profile"
        )
    if len(profile) > PROFILE_MAX:
        raise SessionsValidationError(
            f"The shell profile is at most {PROFILE_MAX} characters.", field="shell_profile"
        )
    return profile


def _check_range(field: str, what: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SessionsValidationError(
            f"{what} is {low} to {high} minutes, not {value!r:.20}.", field=field
        )


def _record_rule(
    principal: Principal, rule: RunAsRule, *, before: str | None, after: str | None
) -> None:
    who: dict[str, str] = (
        {"User": rule.user.get_username()}
        if rule.user is not None
        else {"Group": rule.group.name if rule.group else ""}
    )
    principal.record(
        UPDATE,
        resources=[preferences_document_arn()],
        params={
            "Name": DEFAULT_DOCUMENT,
            "Change": "run-as rule",
            **who,
            "Before": before,
            "After": after,
        },
    )
