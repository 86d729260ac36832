"""Which parameters a principal may act on.

A parameter is authorized as AWS authorizes it: the action on its ARN
(`arn:aws:ssm:<region>:<account>:parameter/<name without the leading slash>`), with its tags
as `ssm:resourceTag/<Key>` (and `aws:ResourceTag/<Key>`) in the context.

Listing many parameters decides each one unless a cheap plan is provably the same:
`ALL` for a superuser, or when an unconditioned Allow statement's resource takes in every
parameter and no Deny statement names the action; `NONE` when no Allow statement names it.
Otherwise (`NAME`) each parameter is decided on its own, its tags loaded only when some
statement's conditions could read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from access.authorization import Principal, decide
from access.policy.conditions import ContextValue
from access.policy.wildcard import compiled
from bosun.lib.arn import arn

_PROBE = "\x00"  # no literal in a pattern can match it: only wildcards do
_TAG_KEY_PREFIXES = ("ssm:resourcetag/", "aws:resourcetag/")

Tags = Iterable[tuple[str, str]]


def parameter_arn(name: str) -> str:
    return arn("ssm", f"parameter/{name.lstrip('/')}")


def tag_context(tags: Tags) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    for key, value in tags:
        context[f"ssm:resourceTag/{key}"] = value
        context[f"aws:ResourceTag/{key}"] = value
    return context


def parameter_allowed(
    principal: Principal,
    action: str,
    name: str,
    tags: Tags = (),
    context: Mapping[str, ContextValue] | None = None,
) -> bool:
    merged = {**tag_context(tags), **(context or {})}
    return decide(principal, action, parameter_arn(name), merged).allowed


class Mode(Enum):
    ALL = "all"
    NONE = "none"
    NAME = "name"


@dataclass
class ParameterScope:
    principal: Principal
    action: str
    mode: Mode
    needs_tags: bool = False

    def allows(self, name: str, tags: Tags = ()) -> bool:
        if self.mode is Mode.ALL:
            return True
        if self.mode is Mode.NONE:
            return False
        return parameter_allowed(self.principal, self.action, name, tags)


def parameter_scope(principal: Principal, action: str) -> ParameterScope:
    user = principal.user
    if not user.is_active:
        return ParameterScope(principal, action, Mode.NONE)
    if user.is_superuser:
        return ParameterScope(principal, action, Mode.ALL)
    statements = [
        statement
        for _, policy in principal.policies()
        for statement in policy.statements_for(action.lower())
    ]
    if not any(statement.allow for statement in statements):
        return ParameterScope(principal, action, Mode.NONE)
    if not any(not statement.allow for statement in statements) and any(
        _takes_every_parameter(statement) for statement in statements
    ):
        return ParameterScope(principal, action, Mode.ALL)
    needs_tags = any(
        clause.key.startswith(_TAG_KEY_PREFIXES) or "resourcetag/" in clause.key
        for statement in statements
        for clause in statement.conditions
    ) or any("resourcetag/" in r.lower() for s in statements for r in s.resources)
    return ParameterScope(principal, action, Mode.NAME, needs_tags=needs_tags)


def _takes_every_parameter(statement: object) -> bool:
    """An unconditioned Allow whose Resource matches a name made only of a character no
    literal can match, through `*` alone (a `?` would fix the name's length)."""
    if getattr(statement, "conditions", ()) or getattr(statement, "not_resource", False):
        return False
    probe = parameter_arn(_PROBE)
    return any(
        "?" not in pattern and "${" not in pattern and compiled(pattern).fullmatch(probe)
        for pattern in getattr(statement, "resources", ())
    )
