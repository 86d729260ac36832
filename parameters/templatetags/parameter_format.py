"""How parameter metadata reads on the pages: who changed it, the last level of its name."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def arn_user(arn: str) -> str:
    """`arn:aws:iam::123456789012:user/ada` → `ada` (anything else as it is)."""
    text = str(arn or "")
    _, marker, user = text.rpartition(":user/")
    return user if marker else text


@register.filter
def leaf(name: str) -> str:
    """`/app/prod/db-url` → `db-url`: the name within its level of the hierarchy."""
    return str(name).rstrip("/").rsplit("/", 1)[-1] or str(name)
