"""One statement of a policy, validated and compiled for matching."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from access.policy.actions import expand_action_pattern
from access.policy.conditions import Clause, Context, compile_condition
from access.policy.errors import PolicyError, json_type, located
from access.policy.variables import Template, parse_template
from access.policy.wildcard import (
    compile_patterns,
    has_wildcard,
    literal_prefix,
    longest_literal,
)

ELEMENTS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition")
# Services whose ARNs a Resource may name: iam for users, groups and policies as AWS spells them;
# resource-groups for saved tag queries over managed nodes.
RESOURCE_SERVICES = frozenset({"ssm", "kms", "bosun", "iam", "resource-groups"})
_SID = re.compile(r"[A-Za-z0-9]+")
_ARN = re.compile(
    r"arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<resource>.+)",
    re.DOTALL,
)
_REGION = re.compile(r"[a-z0-9*?-]*")
_ACCOUNT = re.compile(r"[0-9*?]*")


class Statement:
    """A compiled statement: what it says, and matchers built once from it."""

    __slots__ = (
        "_action_regex",
        "_exact",
        "_match_all",
        "_prefixes",
        "_regex",
        "_required",
        "_templates",
        "actions",
        "allow",
        "conditions",
        "covered_actions",
        "effect",
        "index",
        "needs_context",
        "not_action",
        "not_resource",
        "resources",
        "sid",
    )

    def __init__(self, raw: object, *, index: int, variables: bool) -> None:
        if not isinstance(raw, dict):
            raise PolicyError(f"must be an object, not {json_type(raw)}", statement=index)
        sid = raw.get("Sid")
        self.index = index
        self.sid: str | None = sid if isinstance(sid, str) else None
        with located(statement=index, sid=self.sid):
            self._read(raw, variables)

    def _read(self, raw: dict[str, Any], variables: bool) -> None:
        for element in raw:
            if element not in ELEMENTS:
                raise PolicyError(_unknown_element(element), field=element)
        if "Sid" in raw and (self.sid is None or not _SID.fullmatch(self.sid)):
            raise PolicyError("must be letters and digits only", field="Sid")
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            shown = "missing" if effect is None else f'"{effect}"'
            raise PolicyError(f'must be "Allow" or "Deny", not {shown}', field="Effect")
        self.effect: Literal["Allow", "Deny"] = effect
        self.allow = effect == "Allow"

        field = _exactly_one(raw, "Action", "NotAction")
        self.not_action = field == "NotAction"
        with located(field=field):
            self.actions = _strings(raw[field])
            covered: frozenset[str] = frozenset()
            for pattern in self.actions:
                covered |= expand_action_pattern(pattern)
        # Catalogued actions (lower-case) the patterns name; NotAction takes in all the others.
        self.covered_actions = covered
        self._action_regex = compile_patterns(tuple(a.lower() for a in self.actions))

        field = _exactly_one(raw, "Resource", "NotResource")
        self.not_resource = field == "NotResource"
        with located(field=field):
            self.resources = _strings(raw[field])
            self._compile_resources(variables)

        self.conditions: tuple[Clause, ...] = ()
        if "Condition" in raw:
            with located(field="Condition"):
                self.conditions = compile_condition(raw["Condition"], allow_variables=variables)
        self.needs_context = bool(self.conditions or self._templates)

    def _compile_resources(self, variables: bool) -> None:
        static: list[str] = []
        templates: list[Template] = []
        for resource in self.resources:
            template = parse_template(resource) if variables else None
            _check_resource(template.placeholder() if template else resource)
            if template is not None:
                templates.append(template)
            else:
                static.append(resource)
        self._match_all = any(resource.strip("*") == "" for resource in static)
        self._exact = frozenset(resource for resource in static if not has_wildcard(resource))
        prefixes = {resource: literal_prefix(resource) for resource in static}
        self._prefixes = tuple(prefix for prefix in prefixes.values() if prefix is not None)
        wild = tuple(r for r in static if has_wildcard(r) and prefixes[r] is None)
        self._regex = compile_patterns(wild) if wild else None
        # Plain text each wildcard pattern must contain: a substring test rules most
        # resources out far faster than the regex would.
        required = tuple(longest_literal(resource) for resource in wild)
        self._required = required if all(required) else ()
        self._templates = tuple(templates)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "needs_context"):  # the last attribute set: compiled, now immutable
            raise AttributeError("a Statement is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        sid = f" {self.sid}" if self.sid else ""
        return f"<Statement {self.index}{sid}: {self.effect}>"

    def covers_action(self, action: str) -> bool:
        """Whether the Action/NotAction element takes in a lower-cased action name."""
        return (self._action_regex.fullmatch(action) is not None) != self.not_action

    def applies(self, resource: str, context: Context | None) -> bool:
        """Whether the statement matches a resource and context (its action already did)."""
        if self._match_all:
            hit = True
        else:
            hit = resource in self._exact or resource.startswith(self._prefixes)
            if not hit and self._regex is not None and self._might_match(resource):
                hit = self._regex.fullmatch(resource) is not None
            if not hit and self._templates:
                hit = self._template_hit(resource, context or {})
        if hit == self.not_resource:
            return False
        if self.conditions:
            context = context or {}
            for clause in self.conditions:
                if not clause.holds(context):
                    return False
        return True

    def _might_match(self, resource: str) -> bool:
        if not self._required:
            return True
        for text in self._required:  # noqa: SIM110 - any() over a generator is 3x slower here
            if text in resource:
                return True
        return False

    def _template_hit(self, resource: str, context: Context) -> bool:
        for template in self._templates:
            source = template.regex(context)
            if source is not None and _compiled(source).fullmatch(resource) is not None:
                return True
        return False


@lru_cache(maxsize=4096)  # substituted ARNs recur per user; bounded as users are many
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(source, re.DOTALL)


def _exactly_one(raw: Mapping[str, object], positive: str, negative: str) -> str:
    if positive in raw and negative in raw:
        raise PolicyError(f"give {positive} or {negative}, not both", field=negative)
    if positive not in raw and negative not in raw:
        raise PolicyError(f"missing (give {positive} or {negative})", field=positive)
    return positive if positive in raw else negative


def _strings(value: object) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise PolicyError("must not be an empty list")
    for item in values:
        if not isinstance(item, str):
            raise PolicyError(f"must be a string or a list of strings, not {json_type(item)}")
        if not item:
            raise PolicyError("must not hold an empty string")
    return tuple(values)


def _check_resource(resource: str) -> None:
    if resource.strip("*") == "":
        return
    arn = _ARN.fullmatch(resource)
    if arn is None:
        raise PolicyError(
            f'"{resource}" is not an ARN: write arn:aws:<service>:<region>:<account>:<resource>'
            " or *"
        )
    partition, service = arn["partition"], arn["service"]
    if partition not in ("aws", "*"):
        raise PolicyError(f'"{resource}": the partition must be "aws"')
    if not has_wildcard(service) and service not in RESOURCE_SERVICES:
        known = ", ".join(sorted(RESOURCE_SERVICES))
        raise PolicyError(f'"{resource}": unknown service "{service}" (known: {known})')
    if not _REGION.fullmatch(arn["region"]):
        raise PolicyError(f'"{resource}": "{arn["region"]}" is not a region')
    if not _ACCOUNT.fullmatch(arn["account"]):
        raise PolicyError(f'"{resource}": "{arn["account"]}" is not an account id')
    if any(character.isspace() for character in resource):
        raise PolicyError(f'"{resource}": an ARN holds no whitespace')


def _unknown_element(element: str) -> str:
    if element in ("Principal", "NotPrincipal"):
        return "not allowed: Bosun's policies attach to users and groups, which are the principal"
    for known in ELEMENTS:
        if known.lower() == element.lower():
            return f'unknown element (element names are case-sensitive: did you mean "{known}"?)'
    return f"unknown element (expected one of {', '.join(ELEMENTS)})"
