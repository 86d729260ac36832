"""Writing the audit trail: append an event, sign a checkpoint, prune past the retention.

Appends join the caller's transaction, so an action and its event commit or roll back
together: an event for something that never happened would be a false record.

Denials are the exception to think about: the request they deny should change nothing, and
its transaction may well roll back. SQLite gives one connection per thread, so there is no
second, independent transaction to record them in ("record now, whatever happens to the
caller's transaction" cannot be offered on the embedded stack). The rule instead: authorize
before opening the transaction, and record the denial there, outside any atomic block; a
denial discovered deeper down raises, and the face that catches the exception (outside the
rolled-back transaction) records it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import chain, signing
from audit.append import append_event
from audit.exceptions import AuditChainBroken
from audit.models import AuditEvent, ChainHead, Checkpoint
from audit.redaction import redact
from audit.verification import verify_chain

SYSTEM_PRINCIPAL = "system"
USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length or 512
# Parameters beyond this are summarised: an audit row is evidence, not a payload store.
PARAMS_MAX_CHARS = 32_768
# Computed once: a choices enum's `values` builds a new list on every access (every append).
OUTCOMES = frozenset(AuditEvent.Outcome.values)
FACES = frozenset(AuditEvent.Face.values)


def audit_record(
    *,
    principal: str,
    action: str,
    outcome: str,
    resources: Iterable[str] = (),
    params: Any = None,
    error_code: str = "",
    source_ip: str = "",
    user_agent: str = "",
    request_id: str = "",
    face: str = "",
    user_id: int | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction if there is one.

    Within a transaction the chain head stays locked until it commits, and every other append
    waits for it: record the event as the transaction's last step.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if face and face not in FACES:
        raise ValueError(f"unknown audit face {face!r}")
    if not principal or not action:
        raise ValueError("an audit event needs a principal and an action")
    return append_event(
        {
            "principal": _text(principal, 256),
            "user_id": user_id,
            "source_ip": _text(source_ip, 64),
            "user_agent": _text(user_agent, USER_AGENT_MAX),
            "action": _text(action, 128),
            "resources": [_text(str(resource)) for resource in resources],
            "params_json": _params_text(params),
            "outcome": outcome,
            "error_code": _text(error_code, 128),
            "request_id": _text(request_id, 128),
            "face": face,
        }
    )


def audit_checkpoint() -> Checkpoint | None:
    """Sign the chain head as it stands, anchoring every event up to it; None when empty."""
    head = ChainHead.objects.filter(pk=ChainHead.ROW_ID).first()
    if head is None or head.sequence == 0:
        return None
    return _checkpoint_at(head.sequence, head.hash)


@dataclass(frozen=True)
class PruneResult:
    checkpoint: Checkpoint | None
    deleted: int


def audit_prune(
    *, before: datetime, principal: str = SYSTEM_PRINCIPAL, face: str = AuditEvent.Face.TASK
) -> PruneResult:
    """Delete events older than `before`, after signing a checkpoint at the newest of them.

    The events to be deleted are verified first: pruning a tampered stretch would launder it.
    The prune itself is recorded as an event.
    """
    last = (
        AuditEvent.objects.filter(time__lt=before)
        .order_by("-sequence")
        .values_list("sequence", "hash")
        .first()
    )
    if last is None:
        return PruneResult(checkpoint=None, deleted=0)
    through, last_hash = last
    # Outside any transaction: verifying a long trail takes seconds, and appends must not wait.
    report = verify_chain(through=through)
    if not report.ok:
        raise AuditChainBroken(f"not pruning a broken audit trail: {report.describe()}")
    with transaction.atomic():
        checkpoint = _checkpoint_at(through, last_hash)
        deleted = AuditEvent.objects.filter(sequence__lte=through)._prune()
        audit_record(
            principal=principal,
            action="bosun:PruneAuditTrail",
            outcome=AuditEvent.Outcome.SUCCESS,
            params={"before": chain.format_time(before), "through": through, "deleted": deleted},
            face=face,
        )
    return PruneResult(checkpoint=checkpoint, deleted=deleted)


def retention_days() -> int:
    """BOSUN_AUDIT_RETENTION_DAYS; 0 keeps events forever."""
    return int(settings.BOSUN_AUDIT_RETENTION_DAYS)


def audit_retention_apply(*, now: datetime | None = None) -> PruneResult:
    """The daily job: checkpoint the head, then prune what the retention setting lets go."""
    audit_checkpoint()
    days = retention_days()
    if days <= 0:
        return PruneResult(checkpoint=None, deleted=0)
    return audit_prune(before=(now or timezone.now()) - timedelta(days=days))


# --- Internals ------------------------------------------------------------------------------


def _params_text(params: Any) -> str:
    text = chain.canonical_json(chain.jsonable(redact(params if params is not None else {})))
    if len(text) > PARAMS_MAX_CHARS:
        return chain.canonical_json({"_truncated": True, "_chars": len(text)})
    return text


def _text(value: str, limit: int | None = None) -> str:
    # PostgreSQL text cannot hold NUL; a recorded value must never make the append fail.
    value = value.replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def _checkpoint_at(sequence: int, event_hash: str) -> Checkpoint:
    existing = Checkpoint.objects.filter(sequence=sequence).first()
    if existing is not None:
        return existing
    created_at = timezone.now()
    checkpoint = Checkpoint(
        sequence=sequence,
        hash=event_hash,
        created_at=created_at,
        signature=signing.sign(sequence, event_hash, created_at),
    )
    checkpoint.save()
    return checkpoint
