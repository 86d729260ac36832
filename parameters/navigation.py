"""Parameter Store in the Application management section, for whom may describe parameters."""

from __future__ import annotations

from typing import Any

from access.authorization import principal_for
from bosun.lib.navigation import NavItem, register
from parameters.scope import Mode, parameter_scope


def may_see_some_parameter(user: Any) -> bool:
    # Not a check on `*`: a policy naming /team/* allows some parameters and never `*`.
    if not getattr(user, "is_authenticated", False):
        return False
    return parameter_scope(principal_for(user), "ssm:DescribeParameters").mode is not Mode.NONE


def register_pages() -> None:
    register(
        NavItem(
            "Application management",
            "Parameter Store",
            "parameters:list",
            "sliders",
            10,
            may_see_some_parameter,
        ),
    )
