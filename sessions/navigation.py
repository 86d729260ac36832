"""Session Manager in the Node management section, for whom may list sessions or start one
(everyone sees their own sessions)."""

from __future__ import annotations

from typing import Any

from access.authorization import principal_for
from access.navigation import may
from bosun.lib.navigation import NavItem, register
from fleet.selectors import may_act_on_some_node

may_describe = may("ssm:DescribeSessions")


def may_see_sessions(user: Any) -> bool:
    if may_describe(user):
        return True
    return bool(getattr(user, "is_authenticated", False)) and may_act_on_some_node(
        principal_for(user), "ssm:StartSession"
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
    )
