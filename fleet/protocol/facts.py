"""Host facts onto a node: the columns the fleet list filters on, plus the whole report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from fleet.models import ManagedNode
from fleet.protocol.validation import ip_address_of

# Facts with a column of their own; values longer than the column are cut to fit it (the full
# text stays in the `facts` document).
_COLUMNS = (
    "hostname",
    "platform_type",
    "platform_name",
    "platform_version",
    "kernel_version",
    "architecture",
    "agent_version",
)


def _fitted(column: str, value: Any) -> str:
    limit = getattr(ManagedNode._meta.get_field(column), "max_length", None)
    text = value if isinstance(value, str) else ""
    return text[:limit] if limit else text


def facts_columns(facts: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """The node field values that a (validated) facts report sets.

    The document is replaced as a whole; a column changes only when the report names it, so
    a report without, say, `agent_version` does not blank what the heartbeat keeps current.
    """
    columns: dict[str, Any] = {
        column: _fitted(column, facts[column]) for column in _COLUMNS if column in facts
    }
    if "ip_addresses" in facts:
        addresses = [a for a in map(ip_address_of, facts["ip_addresses"]) if a]
        columns.update(ip_address=addresses[0] if addresses else None, ip_addresses=addresses)
    columns.update(facts=facts, facts_updated_at=now or timezone.now())
    return columns


def node_facts_store(*, node_id: str, facts: dict[str, Any]) -> None:
    """Replace a node's facts with a (validated) report: one UPDATE."""
    ManagedNode.objects.filter(pk=node_id).update(**facts_columns(facts))
