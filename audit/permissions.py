"""Who may open the audit trail pages (and see them in the navigation)."""

from __future__ import annotations

from typing import Any


def may_read_audit_trail(user: Any) -> bool:
    """Superusers, for now: the one place the access app swaps for `bosun:ReadAuditTrail`."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_superuser", False))
