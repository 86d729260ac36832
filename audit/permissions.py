"""Who may open the audit trail pages (and see them in the navigation), and what they see.

The one place the audit pages meet the access app: core audit modules never import it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from access.authorization import is_allowed, principal_for
from audit import selectors
from audit.models import AuditEvent

READ_ACTION = "bosun:ReadAuditTrail"


def may_read_audit_trail(user: Any) -> bool:
    """Whoever policy allows `bosun:ReadAuditTrail` (superusers always)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return is_allowed(principal_for(user), READ_ACTION)


def events_readable_by(user: Any) -> QuerySet[AuditEvent]:
    """A reader of the audit trail sees every event; anyone else only the events they caused."""
    if may_read_audit_trail(user):
        return AuditEvent.objects.all()
    return selectors.events_visible_to(user)
