"""The Condition element: operators, set qualifiers, and how a request's context meets them.

IAM's rules, followed here:
- operators AND together, keys within an operator AND together, values of a key OR together;
  a negated operator (StringNotEquals, StringNotLike, NotIpAddress, ...) is true when no value
  matches (NOR);
- a key missing from the request makes a positive operator false and a negated one true;
  `...IfExists` makes any operator true on a missing key; `Null` tests presence;
- `ForAnyValue:` holds when some request value satisfies the operator (false on a missing key),
  `ForAllValues:` when every one does (true on a missing key);
- without a qualifier a multi-valued request key is treated as "any of its values matches";
- condition keys compare case-insensitively; values as the operator says (`StringEquals` and
  `StringLike` are case-sensitive).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

from access.policy.errors import PolicyError, json_type
from access.policy.variables import Template, parse_template
from access.policy.wildcard import compile_patterns, wildcard_regex

Values = tuple[str, ...]
Context = Mapping[str, Values]
ContextValue = str | bool | Sequence[str]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Operator → (kind, negated). Kinds decide how one request value meets the policy's values.
OPERATORS: dict[str, tuple[str, bool]] = {
    "StringEquals": ("equals", False),
    "StringNotEquals": ("equals", True),
    "StringEqualsIgnoreCase": ("equals_ignore_case", False),
    "StringNotEqualsIgnoreCase": ("equals_ignore_case", True),
    "StringLike": ("like", False),
    "StringNotLike": ("like", True),
    "Bool": ("bool", False),
    "IpAddress": ("ip", False),
    "NotIpAddress": ("ip", True),
    "Null": ("null", False),
}
_STRING_KINDS = frozenset({"equals", "equals_ignore_case", "like"})
_OPERATOR = re.compile(r"(?:(ForAnyValue|ForAllValues):)?([A-Za-z]+?)(IfExists)?")
_KEY = re.compile(r"[A-Za-z0-9-]+:[^\x00-\x1f]+")  # tag keys may hold spaces
MAX_KEY_LENGTH = 256
ANY, ALL = "any", "all"


class Clause:
    """One key under one operator: `"StringLike": {"aws:username": ["a*", "b*"]}`."""

    __slots__ = (
        "_absent_wanted",
        "_kind",
        "_match",
        "_qualifier",
        "_templates",
        "if_exists",
        "key",
        "negated",
        "operator",
    )

    def __init__(self, operator: str, key: str, values: Values, *, allow_variables: bool) -> None:
        parsed = _OPERATOR.fullmatch(operator)
        if parsed is None or parsed.group(2) not in OPERATORS:
            known = ", ".join(OPERATORS)
            raise PolicyError(f'unknown condition operator "{operator}" (known: {known})')
        qualifier, base, if_exists = parsed.groups()
        self._kind, self.negated = OPERATORS[base]
        if self._kind == "null" and (qualifier or if_exists):
            raise PolicyError(f'"{operator}": Null takes neither a set qualifier nor IfExists')
        self.operator = operator
        self.key = key.lower()
        self.if_exists = bool(if_exists)
        self._qualifier = {"ForAnyValue": ANY, "ForAllValues": ALL}.get(qualifier or "")
        values = tuple(_check_value(self._kind, operator, key, value) for value in values)
        # Null: whether the key should be absent ("true") or present ("false").
        self._absent_wanted = frozenset(value.lower() == "true" for value in values)
        self._templates: tuple[Template | str, ...] = ()
        self._match: Callable[[str], object] = _never
        templates = [parse_template(v) for v in values] if allow_variables else []
        if self._kind in _STRING_KINDS and any(templates):
            self._templates = tuple(t or v for t, v in zip(templates, values, strict=True))
        elif self._kind != "null":
            self._match = _matcher(self._kind, values)

    def holds(self, context: Context) -> bool:
        values = context.get(self.key)
        if self._kind == "null":
            return (values is None) in self._absent_wanted
        if values is None:
            if self.if_exists or self._qualifier == ALL:
                return True
            return self.negated and self._qualifier is None
        match = self._substituted(context) if self._templates else self._match
        negated = self.negated
        if self._qualifier == ANY:
            return any(bool(match(value)) != negated for value in values)
        if self._qualifier == ALL:
            return all(bool(match(value)) != negated for value in values)
        return any(match(value) for value in values) != negated

    def _substituted(self, context: Context) -> Callable[[str], object]:
        if self._kind == "like":
            sources = []
            for template in self._templates:
                if isinstance(template, str):
                    sources.append(wildcard_regex(template))
                else:
                    source = template.regex(context)
                    if source is not None:
                        sources.append(source)
            return _compiled_alternatives("|".join(f"(?:{s})" for s in sources))
        resolved = []
        for template in self._templates:
            text = template if isinstance(template, str) else template.text(context)
            if text is not None:
                resolved.append(text)
        return _matcher(self._kind, tuple(resolved))


def compile_condition(block: object, *, allow_variables: bool) -> tuple[Clause, ...]:
    """The Condition element's clauses; PolicyError naming the operator and key at fault."""
    if not isinstance(block, dict):
        raise PolicyError(f"must be an object of operators, not {json_type(block)}")
    clauses = []
    for operator, keys in block.items():
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f'"{operator}" must map condition keys to values')
        seen: set[str] = set()
        for key, raw in keys.items():
            if not _KEY.fullmatch(key) or len(key) > MAX_KEY_LENGTH:
                raise PolicyError(f'"{operator}": "{key}" is not a condition key (service:name)')
            if key.lower() in seen:
                raise PolicyError(f'"{operator}": key "{key}" appears twice (keys ignore case)')
            seen.add(key.lower())
            values = raw if isinstance(raw, list) else [raw]
            if not values:
                raise PolicyError(f'"{operator}": "{key}" has no values')
            texts = tuple(_as_text(operator, key, value) for value in values)
            clauses.append(Clause(operator, key, texts, allow_variables=allow_variables))
    return tuple(clauses)


def normalise_context(context: Mapping[str, ContextValue] | None) -> dict[str, Values]:
    """Request context with lower-cased keys and every value a non-empty tuple of strings."""
    out: dict[str, Values] = {}
    for key, value in (context or {}).items():
        if isinstance(value, bool):
            values: Values = ("true" if value else "false",)
        elif isinstance(value, str):
            values = (value,)
        elif value is None:
            continue
        else:
            values = tuple(_context_text(item) for item in value)
        if values:  # an empty list is a missing key, as IAM treats an empty multi-value key
            out[key.lower()] = values
    return out


def _context_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_text(operator: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise PolicyError(f'"{operator}": "{key}" values must be strings, not {json_type(value)}')


def _check_value(kind: str, operator: str, key: str, value: str) -> str:
    if kind in ("bool", "null") and value.lower() not in ("true", "false"):
        raise PolicyError(f'"{operator}": "{key}" takes "true" or "false", not "{value}"')
    if kind == "ip":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise PolicyError(
                f'"{operator}": "{key}": "{value}" is not an IP address or CIDR block'
            ) from None
    return value


def _matcher(kind: str, values: Values) -> Callable[[str], object]:
    """How one request value is tested against the policy's values (any of them)."""
    if kind == "equals":
        return frozenset(values).__contains__
    if kind in ("equals_ignore_case", "bool"):
        folded = frozenset(value.lower() for value in values)
        return lambda value: value.lower() in folded
    if kind == "like":
        return compile_patterns(values).fullmatch if values else _never
    if kind == "ip":
        networks = tuple(ipaddress.ip_network(value, strict=False) for value in values)
        return lambda value: _in_networks(value, networks)
    raise AssertionError(f"no matcher for {kind}")


def _never(value: str) -> bool:
    return False


@lru_cache(maxsize=1024)
def _compiled_alternatives(source: str) -> Callable[[str], object]:
    if not source:
        return _never
    return re.compile(source, re.DOTALL).fullmatch


@lru_cache(maxsize=1024)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _in_networks(text: str, networks: tuple[Network, ...]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in networks)
