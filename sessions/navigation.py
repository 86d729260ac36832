"""Session Manager in the Node management section, for whom may list sessions or start one
(everyone sees their own sessions)."""

from __future__ import annotations

from typing import Any

from access.authorization import is_allowed, principal_for
from access.navigation import may
from bosun.lib.navigation import NavItem, register
from fleet.selectors import may_act_on_some_node
from sessions.services.preferences import UPDATE, preferences_document_arn

may_describe = may("ssm:DescribeSessions")


def may_see_sessions(user: Any) -> bool:
    if may_describe(user):
        return True
    return bool(getattr(user, "is_authenticated", False)) and may_act_on_some_node(
        principal_for(user), "ssm:StartSession"
    )


def may_edit_preferences(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and is_allowed(
        principal_for(user), UPDATE, preferences_document_arn()
    )


def register_pages() -> None:
    register(
        NavItem(
            "Node management",
            "Session Manager",
            "sessions:list",
            "terminal-split",
            20,
            may_see_sessions,
        ),
        NavItem(
            "Node management",
            "Session preferences",
            "sessions:preferences",
            "sliders",
            21,
            may_edit_preferences,
        ),
    )
