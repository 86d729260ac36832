"""Errors of the audit trail, each carrying the error code the API faces render."""

from __future__ import annotations


class AuditError(Exception):
    code = "InternalServerError"


class AuditTrailImmutable(AuditError):
    """Recorded events and checkpoints are never changed or removed, except by pruning."""

    code = "AuditTrailImmutable"


class AuditChainBroken(AuditError):
    """The chain does not verify, so the operation that needs it intact was refused."""

    code = "AuditChainBroken"
