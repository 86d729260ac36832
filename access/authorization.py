"""The one authorization entry point every face calls (DESIGN.md §4, issue 3).

`authorize()` answers "may this principal do this action on this resource?" with IAM's rules
over the managed policies attached to the user and to the user's groups, audits a denial and
raises `AccessDenied`; `is_allowed()` asks the same without side effects (for menus and
buttons). Faces build a `Principal` from what they know (request, websocket scope, task
arguments) and never decide on their own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q

from access.models import ManagedPolicy
from access.policy import Decision, Policy, evaluate, parse_policy
from access.policy.conditions import ContextValue
from audit.services import audit_record
from bosun.lib.errors import AccessDenied

SUPERUSER_DECISION = Decision(True, "allowed", "superuser", None, None)


@dataclass
class Principal:
    """Who is acting, and from where: what policies and the audit trail need to know."""

    user: User
    face: str = "web"
    source_ip: str = ""
    user_agent: str = ""
    mfa: bool = False
    access_key_id: str = ""
    request_id: str = ""
    _policies: list[tuple[str, Policy]] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.user.get_username()

    def context(self) -> dict[str, ContextValue]:
        return {
            "aws:username": self.name,
            "aws:SourceIp": self.source_ip,
            "aws:MultiFactorAuthPresent": self.mfa,
            "aws:PrincipalType": "AccessKey" if self.access_key_id else "User",
        }

    def policies(self) -> list[tuple[str, Policy]]:
        """The user's and their groups' policies, read once per principal (one query)."""
        if self._policies is None:
            rows = (
                ManagedPolicy.objects.filter(Q(users=self.user) | Q(groups__user=self.user))
                .distinct()
                .values_list("name", "document")
            )
            self._policies = [(name, compiled(document)) for name, document in rows]
        return self._policies

    def record(
        self,
        action: str,
        *,
        outcome: str = "success",
        resources: Sequence[str] = (),
        params: Mapping[str, Any] | None = None,
        error_code: str = "",
    ) -> None:
        """Write an audit event of this principal's (secrets in `params` are redacted)."""
        audit_record(
            principal=_audit_name(self),
            user_id=self.user.pk,
            action=action,
            outcome=outcome,
            resources=resources,
            params=params or None,
            error_code=error_code,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
            face=self.face,
        )

    @classmethod
    def from_request(cls, request: Any, *, face: str = "web") -> Principal:
        user = request.user
        return cls(
            user=user,
            face=face,
            source_ip=request.META.get("REMOTE_ADDR", ""),
            user_agent=request.headers.get("User-Agent", ""),
            mfa=bool(getattr(user, "is_verified", lambda: False)()),
            access_key_id=getattr(request, "access_key_id", ""),
            request_id=getattr(request, "request_id", ""),
        )


# The principal of a request is kept on its user object (one per request), so the many checks
# of one request (the view, its buttons, the menu) read the user's policies once.
_CACHED = "_bosun_principal"
_PLAIN = "_bosun_plain_principal"


def principal_of(request: Any, *, face: str = "web") -> Principal:
    """The request's principal, with its address, user agent and MFA state."""
    cached = getattr(request.user, _CACHED, None)
    if cached is None or cached.face != face:
        cached = Principal.from_request(request, face=face)
        setattr(request.user, _CACHED, cached)
    return cached


def principal_for(user: User) -> Principal:
    """The principal of `user` where only the user is at hand (menu entries): the request's,
    if one was made, else a plain one."""
    principal = getattr(user, _CACHED, None) or getattr(user, _PLAIN, None)
    if principal is None:
        # Kept apart: a later principal_of() must still build the full one from the request.
        principal = Principal(user=user)
        setattr(user, _PLAIN, principal)
    return principal


@functools.lru_cache(maxsize=4096)
def compiled(document: str) -> Policy:
    """Documents compile once per process; keyed by text, so an edit is a new entry."""
    return parse_policy(document)


def decide(
    principal: Principal,
    action: str,
    resource: str = "*",
    context: Mapping[str, ContextValue] | None = None,
) -> Decision:
    user = principal.user
    if not user.is_active:
        return Decision(False, "implicit_deny")
    if user.is_superuser:
        # A superuser is treated as if AdministratorAccess were attached.
        return SUPERUSER_DECISION
    merged = principal.context() if context is None else {**principal.context(), **context}
    return evaluate(principal.policies(), action=action, resource=resource, context=merged)


def is_allowed(
    principal: Principal,
    action: str,
    resource: str = "*",
    context: Mapping[str, ContextValue] | None = None,
) -> bool:
    return decide(principal, action, resource, context).allowed


def authorize(
    principal: Principal,
    action: str,
    resource: str = "*",
    context: Mapping[str, ContextValue] | None = None,
) -> Decision:
    """Allow or raise AccessDenied; a denial is written to the audit trail first."""
    decision = decide(principal, action, resource, context)
    if decision.allowed:
        return decision
    principal.record(
        action, outcome="denied", resources=[resource], error_code=AccessDenied.aws_code
    )
    raise AccessDenied(
        f"User {principal.name} is not authorized to perform {action} on resource {resource}"
        + (" because an explicit deny applies" if decision.reason == "explicit_deny" else "")
    )


def _audit_name(principal: Principal) -> str:
    if principal.access_key_id:
        return f"{principal.name} (access-key:{principal.access_key_id})"
    return principal.name
