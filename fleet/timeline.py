"""A node's activity timeline (NodeEvent rows), written by every fleet service."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from fleet.models import ManagedNode, NodeEvent


def node_event_record(
    node: ManagedNode | str,
    *,
    kind: str,
    summary: str,
    actor: str = "",
    data: dict[str, Any] | None = None,
) -> NodeEvent:
    node_id = node if isinstance(node, str) else node.pk
    return NodeEvent.objects.create(
        node_id=node_id,
        at=timezone.now(),
        kind=kind,
        summary=summary[:500],
        actor=actor[:256],
        data=data or {},
    )
