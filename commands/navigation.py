"""Run Command and Documents in the Node management section, for whom may list them."""

from __future__ import annotations

from access.navigation import may
from bosun.lib.navigation import NavItem, register


def register_pages() -> None:
    register(
        NavItem(
            "Node management",
            "Run Command",
            "commands:list",
            "terminal",
            30,
            may("ssm:ListCommands"),
        ),
        NavItem(
            "Node management",
            "Documents",
            "commands:documents",
            "file-earmark-code",
            35,
            may("ssm:ListDocuments"),
        ),
    )
