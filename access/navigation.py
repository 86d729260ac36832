"""The Access section of the menu; each entry shows only to whom policy lets open it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from access.authorization import is_allowed, principal_for
from bosun.lib.navigation import NavItem, register


def may(action: str) -> Callable[[Any], bool]:
    def visible(user: Any) -> bool:
        if not getattr(user, "is_authenticated", False):
            return False
        return is_allowed(principal_for(user), action)

    return visible


def register_pages() -> None:
    register(
        NavItem("Access", "Users", "access:users", "people", 10, may("bosun:ListUsers")),
        NavItem("Access", "Groups", "access:groups", "collection", 20, may("bosun:ListUsers")),
        NavItem(
            "Access",
            "Policies",
            "access:policies",
            "file-earmark-lock",
            30,
            may("bosun:ListPolicies"),
        ),
        NavItem(
            "Access",
            "Policy simulator",
            "access:simulator",
            "signpost-split",
            40,
            may("bosun:SimulatePolicy"),
        ),
    )
