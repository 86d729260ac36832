"""The left navigation: each app registers its pages in AppConfig.ready().

The menu shows only what exists and only what the user may open, grouped as operators know
the SSM console (DESIGN.md §4b).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

SECTIONS = (
    "",  # top level: the dashboard
    "Node management",
    "Application management",
    "Change management",
    "Access",
    "Audit",
)


def _signed_in(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False))


@dataclass(frozen=True)
class NavItem:
    section: str
    label: str
    url_name: str
    icon: str
    order: int = 100
    # Who sees the entry; apps pass their authorization check here.
    visible: Callable[[Any], bool] = _signed_in

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"unknown navigation section {self.section!r}")


@dataclass(frozen=True)
class MenuEntry:
    label: str
    url: str
    icon: str
    active: bool


_items: dict[str, NavItem] = {}


def register(*items: NavItem) -> None:
    for item in items:
        _items[item.url_name] = item


def menu_for(user: Any, current_url_name: str | None) -> list[tuple[str, list[MenuEntry]]]:
    """Sections in console order, each with the entries this user may see; empty ones left out."""
    menu = []
    for section in SECTIONS:
        entries = [
            MenuEntry(
                item.label, reverse(item.url_name), item.icon, item.url_name == current_url_name
            )
            for item in sorted(_items.values(), key=lambda i: (i.order, i.label))
            if item.section == section and item.visible(user)
        ]
        if entries:
            menu.append((section, entries))
    return menu
