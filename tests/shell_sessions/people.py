"""Users with session policies, for the session service and relay tests."""

from __future__ import annotations

import json

from access.models import ManagedPolicy
from tests.factories import UserFactory


def user_with_policy(username: str, *statements: dict) -> object:
    """A user whose only policy holds `statements`."""
    user = UserFactory(username=username)
    policy = ManagedPolicy.objects.create(
        name=f"{username}-sessions",
        document=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    )
    policy.users.add(user)
    return user


def allow(actions: list[str], resource: str = "*", condition: dict | None = None) -> dict:
    statement: dict = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement
