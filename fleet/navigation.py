"""Fleet pages in the Node management section; each shows only to whom policy lets use it."""

from __future__ import annotations

from typing import Any

from access.authorization import principal_for
from access.navigation import may
from bosun.lib.navigation import NavItem, register
from fleet.scope import Mode, node_scope


def may_see_some_node(user: Any) -> bool:
    # Not a check on `*`: a policy scoped by node tags allows some nodes and never `*`.
    if not getattr(user, "is_authenticated", False):
        return False
    return node_scope(principal_for(user)).mode is not Mode.NONE


def register_pages() -> None:
    register(
        NavItem(
            "Node management", "Fleet Manager", "fleet:nodes", "hdd-network", 10, may_see_some_node
        ),
        NavItem(
            "Node management",
            "Hybrid activations",
            "fleet:activations",
            "key",
            70,
            may("ssm:DescribeActivations"),
        ),
    )
