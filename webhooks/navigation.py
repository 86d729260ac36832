"""The Webhooks page in the Application management section, for whom policy lets list them."""

from __future__ import annotations

from access.navigation import may
from bosun.lib.navigation import NavItem, register
from webhooks.models import LIST_WEBHOOKS


def register_pages() -> None:
    register(
        NavItem(
            "Application management",
            "Webhooks",
            "webhooks:endpoints",
            "send",
            80,
            may(LIST_WEBHOOKS),
        )
    )
