"""Audit events whose actor is an agent, not a person: registration, key changes, clones."""

from __future__ import annotations

from typing import Any

from audit.services import audit_record
from fleet.codes import node_arn

FACE_HTTP = "api"
FACE_WEBSOCKET = "ws"


def agent_principal(node_id: str) -> str:
    """How the audit trail names a node acting for itself (it is no Django user)."""
    return f"agent:{node_id}"


def agent_record(
    *,
    node_id: str,
    action: str,
    outcome: str = "success",
    params: dict[str, Any] | None = None,
    error_code: str = "",
    source_ip: str = "",
    face: str = FACE_HTTP,
) -> None:
    audit_record(
        principal=agent_principal(node_id),
        action=action,
        outcome=outcome,
        resources=[node_arn(node_id)],
        params=params,
        error_code=error_code,
        source_ip=source_ip,
        face=face,
    )
