"""Carrying out parameter policies: the scheduled task's work, done as the system.

Each due parameter is handled in its own transaction under its row lock, so a parameter
written meanwhile is judged by its new policies, and two task runs never notify twice.
What happens is written as a notice (the dashboard's list), an audit event and a webhook event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import SYSTEM_PRINCIPAL, audit_record
from parameters import policies as policy_rules
from parameters.events import emit
from parameters.models import Parameter, ParameterNotice
from parameters.scope import parameter_arn

BATCH = 200


def policies_enforce(*, now: datetime | None = None) -> int:
    """Handle every parameter whose policies are due; returns how many were handled."""
    now = now or timezone.now()
    due = list(
        Parameter.objects.filter(next_policy_at__lte=now)
        .order_by("next_policy_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    for pk in due:
        _enforce_one(pk, now)
    return len(due)


def _enforce_one(pk: int, now: datetime) -> None:
    with transaction.atomic():
        parameter = Parameter.objects.select_for_update().filter(pk=pk).first()
        if parameter is None or parameter.next_policy_at is None or parameter.next_policy_at > now:
            return
        policies: list[dict[str, Any]] = [dict(p) for p in parameter.policies]
        expires = policy_rules.expiration_time(policies)
        if expires is not None and expires <= now:
            _expire(parameter, now)
            return
        for policy in policies:
            if policy["PolicyStatus"] == policy_rules.FINISHED:
                continue
            kind = policy["PolicyType"]
            if kind == policy_rules.EXPIRATION_NOTIFICATION and expires is not None:
                if expires - timedelta(seconds=policy["seconds"]) <= now:
                    _notify(
                        parameter,
                        ParameterNotice.Kind.EXPIRATION_NOTIFICATION,
                        f"{parameter.name} expires at {expires.isoformat()} and will then be "
                        "deleted.",
                        expires_at=expires.isoformat(),
                    )
                    policy["PolicyStatus"] = policy_rules.FINISHED
            elif kind == policy_rules.NO_CHANGE_NOTIFICATION:
                unchanged_since = parameter.last_modified_at
                if unchanged_since + timedelta(seconds=policy["seconds"]) <= now:
                    _notify(
                        parameter,
                        ParameterNotice.Kind.NO_CHANGE_NOTIFICATION,
                        f"{parameter.name} has not changed since {unchanged_since.isoformat()}.",
                        unchanged_since=unchanged_since.isoformat(),
                    )
                    # Once per unchanged stretch: the next write makes it pending again.
                    policy["PolicyStatus"] = policy_rules.FINISHED
        parameter.policies = policies
        parameter.next_policy_at = policy_rules.next_due(
            policies, last_modified=parameter.last_modified_at
        )
        parameter.save(update_fields=["policies", "next_policy_at"])


def _notify(parameter: Parameter, kind: str, message: str, **details: str) -> None:
    ParameterNotice.objects.create(
        parameter_name=parameter.name, kind=kind, message=message, version=parameter.version
    )
    events: dict[str, str] = {
        ParameterNotice.Kind.EXPIRATION_NOTIFICATION.value: (
            "parameter.policy.expiration_notification"
        ),
        ParameterNotice.Kind.NO_CHANGE_NOTIFICATION.value: (
            "parameter.policy.no_change_notification"
        ),
    }
    event = events[kind]
    emit(event, name=parameter.name, version=parameter.version, message=message, **details)
    audit_record(
        principal=SYSTEM_PRINCIPAL,
        action=f"bosun:ParameterPolicy{kind}",
        outcome="success",
        resources=[parameter_arn(parameter.name)],
        params={"name": parameter.name, "version": parameter.version, **details},
        face="task",
    )


def _expire(parameter: Parameter, now: datetime) -> None:
    message = f"{parameter.name} expired at {now.isoformat()} and was deleted by its policy."
    ParameterNotice.objects.create(
        parameter_name=parameter.name,
        kind=ParameterNotice.Kind.EXPIRED,
        message=message,
        version=parameter.version,
    )
    parameter.delete()
    emit(
        "parameter.policy.expired", name=parameter.name, version=parameter.version, message=message
    )
    emit(
        "parameter.deleted",
        name=parameter.name,
        version=parameter.version,
        type=parameter.type,
        tier=parameter.tier,
        actor=SYSTEM_PRINCIPAL,
    )
    audit_record(
        principal=SYSTEM_PRINCIPAL,
        action="ssm:DeleteParameter",
        outcome="success",
        resources=[parameter_arn(parameter.name)],
        params={"name": parameter.name, "reason": "Expiration policy"},
        face="task",
    )
