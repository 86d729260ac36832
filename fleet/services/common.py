"""What the fleet's services share."""

from __future__ import annotations

from typing import Any

from access.authorization import Principal


def audit(principal: Principal, action: str, resources: list[str], **params: Any) -> None:
    principal.record(action, resources=resources, params=params)
