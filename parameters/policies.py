"""Parameter policies (Advanced tier): Expiration, ExpirationNotification, NoChangeNotification.

A write carries them as AWS does, a JSON array of
`{"Type": ..., "Version": "1.0", "Attributes": {...}}`; they are checked here with AWS's
error types and kept on the parameter as `{"PolicyType", "PolicyText", "PolicyStatus"}` plus
what the enforcing task needs to remember (when it last notified).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from parameters.exceptions import (
    IncompatiblePolicy,
    InvalidPolicyAttribute,
    InvalidPolicyType,
    PoliciesLimitExceeded,
)

EXPIRATION = "Expiration"
EXPIRATION_NOTIFICATION = "ExpirationNotification"
NO_CHANGE_NOTIFICATION = "NoChangeNotification"
TYPES = (EXPIRATION, EXPIRATION_NOTIFICATION, NO_CHANGE_NOTIFICATION)
MAX_POLICIES = 10
UNITS = {"Days": timedelta(days=1), "Hours": timedelta(hours=1)}
PENDING, FINISHED, IN_PROGRESS = "Pending", "Finished", "InProgress"

_ATTRIBUTES = {
    EXPIRATION: {"Timestamp"},
    EXPIRATION_NOTIFICATION: {"Before", "Unit"},
    NO_CHANGE_NOTIFICATION: {"After", "Unit"},
}


def parse_policies(raw: object, *, now: datetime) -> list[dict[str, Any]]:
    """The policies of a write, checked; [] for none ("" or "[]")."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, str):
        raise InvalidPolicyAttribute("Policies must be a JSON array given as text.")
    try:
        items = json.loads(raw)
    except ValueError:
        raise InvalidPolicyAttribute(
            "Policies must be a JSON array of policy objects; the text is not valid JSON."
        ) from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise InvalidPolicyAttribute("Policies must be a JSON array of policy objects.")
    if len(items) > MAX_POLICIES:
        raise PoliciesLimitExceeded(
            "You specified more than the maximum number of allowed policies for the parameter. "
            f"The maximum is {MAX_POLICIES}."
        )
    policies = [_parse_one(item, now=now) for item in items]
    seen: set[str] = set()
    for policy in policies:
        if policy["PolicyType"] in seen:
            raise IncompatiblePolicy(
                f"There is more than one {policy['PolicyType']} policy: give each type once."
            )
        seen.add(policy["PolicyType"])
    if EXPIRATION_NOTIFICATION in seen and EXPIRATION not in seen:
        raise IncompatiblePolicy(
            "An ExpirationNotification policy needs an Expiration policy to count back from."
        )
    return policies


def _parse_one(item: object, *, now: datetime) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidPolicyAttribute("Each policy is an object with Type, Version and Attributes.")
    policy_type = item.get("Type")
    if policy_type not in TYPES:
        raise InvalidPolicyType(
            f"The policy type {policy_type!r} is not supported. Supported types: "
            + ", ".join(TYPES)
            + "."
        )
    if str(item.get("Version", "1.0")) != "1.0":
        raise InvalidPolicyAttribute(f"{policy_type}: the policy Version must be 1.0.")
    unknown = set(item) - {"Type", "Version", "Attributes"}
    if unknown:
        raise InvalidPolicyAttribute(
            f"{policy_type}: unknown policy fields: {', '.join(sorted(unknown))}."
        )
    attributes = item.get("Attributes")
    if not isinstance(attributes, dict):
        raise InvalidPolicyAttribute(f"{policy_type}: Attributes must be an object.")
    expected = _ATTRIBUTES[policy_type]
    if set(attributes) != expected:
        raise InvalidPolicyAttribute(
            f"{policy_type}: Attributes must be exactly {', '.join(sorted(expected))}."
        )
    parsed: dict[str, Any] = {
        "PolicyType": policy_type,
        "PolicyText": json.dumps(
            {"Type": policy_type, "Version": "1.0", "Attributes": attributes},
            separators=(",", ":"),
        ),
        "PolicyStatus": PENDING,
    }
    if policy_type == EXPIRATION:
        parsed["timestamp"] = _timestamp(attributes["Timestamp"], now=now).isoformat()
    else:
        amount_key = "Before" if policy_type == EXPIRATION_NOTIFICATION else "After"
        parsed["seconds"] = int(_duration(policy_type, attributes, amount_key).total_seconds())
    return parsed


def _timestamp(raw: object, *, now: datetime) -> datetime:
    if not isinstance(raw, str):
        raise InvalidPolicyAttribute("Expiration: Timestamp must be an ISO 8601 date and time.")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPolicyAttribute(
            f"Expiration: Timestamp {raw} is not an ISO 8601 date and time, such as "
            "2027-01-31T23:00:00.000Z."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    if moment <= now:
        raise InvalidPolicyAttribute(
            f"Expiration: Timestamp {raw} is in the past; give a time in the future."
        )
    return moment


def _duration(policy_type: str, attributes: dict[str, Any], amount_key: str) -> timedelta:
    unit = attributes.get("Unit")
    if unit not in UNITS:
        raise InvalidPolicyAttribute(f"{policy_type}: Unit must be Days or Hours.")
    amount = attributes.get(amount_key)
    text = str(amount) if isinstance(amount, int | str) else ""
    if not text.isdigit() or int(text) < 1:
        raise InvalidPolicyAttribute(
            f"{policy_type}: {amount_key} must be a whole number of {unit.lower()}, at least 1."
        )
    return int(text) * UNITS[unit]


def kept_by_write(policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The policies an overwrite keeps when it gives none: a NoChangeNotification counts
    from this write again (once per unchanged stretch), the others stay as they are."""
    return [
        {**policy, "PolicyStatus": PENDING}
        if policy["PolicyType"] == NO_CHANGE_NOTIFICATION
        else dict(policy)
        for policy in policies
    ]


def public(policies: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What AWS shows of a parameter's policies."""
    return [
        {
            "PolicyText": policy["PolicyText"],
            "PolicyType": policy["PolicyType"],
            "PolicyStatus": policy["PolicyStatus"],
        }
        for policy in policies
    ]


def expiration_time(policies: list[dict[str, Any]]) -> datetime | None:
    for policy in policies:
        if policy["PolicyType"] == EXPIRATION:
            return datetime.fromisoformat(policy["timestamp"])
    return None


def due_times(policies: list[dict[str, Any]], *, last_modified: datetime) -> list[datetime]:
    """When each still-pending policy must next be looked at."""
    times: list[datetime] = []
    expires = expiration_time(policies)
    for policy in policies:
        if policy["PolicyStatus"] == FINISHED:
            continue
        kind = policy["PolicyType"]
        if kind == EXPIRATION and expires is not None:
            times.append(expires)
        elif kind == EXPIRATION_NOTIFICATION and expires is not None:
            times.append(expires - timedelta(seconds=policy["seconds"]))
        elif kind == NO_CHANGE_NOTIFICATION:
            times.append(last_modified + timedelta(seconds=policy["seconds"]))
    return times


def next_due(policies: list[dict[str, Any]], *, last_modified: datetime) -> datetime | None:
    times = due_times(policies, last_modified=last_modified)
    return min(times) if times else None
