"""Deciding a request against a principal's policies, as IAM does for identity policies.

Any matching Deny refuses (an explicit deny); otherwise any matching Allow permits;
otherwise the request is refused (an implicit deny). The decision names the statement that
made it: the first matching Deny, or the first matching Allow, in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from access.policy.actions import KNOWN_ACTIONS_LOWER
from access.policy.conditions import Context, ContextValue, normalise_context
from access.policy.document import Policy
from access.policy.statement import Statement

Reason = Literal["explicit_deny", "allowed", "implicit_deny"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one authorization question, and which statement decided it."""

    allowed: bool
    reason: Reason
    policy: str | None = None
    statement_index: int | None = None
    sid: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


IMPLICIT_DENY = Decision(allowed=False, reason="implicit_deny")


def evaluate(
    policies: Iterable[tuple[str, Policy]],
    *,
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
) -> Decision:
    """Decide whether `action` on `resource` is allowed by the named policies.

    `action` is an action name in any case (`ssm:GetParameter`); `resource` an ARN, or `*` for
    an action that names no resource. `context` maps condition keys, in any case, to a string,
    a list of strings or a bool (`aws:username`, `aws:SourceIp`, `aws:MultiFactorAuthPresent`,
    `ssm:resourceTag/<key>`, ...). An action missing from the catalogue is still decided, by the
    patterns that match it; a string that is no action name at all raises ValueError.
    """
    wanted = action.lower()
    if ":" not in wanted:
        raise ValueError(f'"{action}" is not an action name (service:ActionName)')
    catalogued = wanted in KNOWN_ACTIONS_LOWER
    normalised: Context | None = None
    allowed_by: tuple[str, Statement] | None = None
    for name, policy in policies:
        # The index lookup inlined: this loop runs once per attached policy on every request.
        statements = policy.by_action.get(wanted)
        if statements is None:
            if catalogued:
                continue
            statements = policy.statements_for(wanted)
        for statement in statements:
            if statement.allow and allowed_by is not None:
                continue  # one Allow is enough; only a Deny can still change the outcome
            if statement.needs_context and normalised is None:
                normalised = normalise_context(context)
            if not statement.applies(resource, normalised):
                continue
            if not statement.allow:
                return Decision(False, "explicit_deny", name, statement.index, statement.sid)
            allowed_by = (name, statement)
    if allowed_by is None:
        return IMPLICIT_DENY
    name, statement = allowed_by
    return Decision(True, "allowed", name, statement.index, statement.sid)
