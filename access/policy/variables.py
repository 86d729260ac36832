"""Policy variables (`${aws:username}`) in Resource and string condition values.

As IAM, only policies of Version 2012-10-17 have variables; in 2008-10-17 `${...}` is plain
text. `${key, 'default'}` supplies a value when the key is missing, and `${*}`, `${?}`, `${$}`
stand for those characters literally (not as wildcards). A variable resolves only from a key
with exactly one value; substituted text never acts as a wildcard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from access.policy.errors import PolicyError
from access.policy.wildcard import wildcard_regex

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_INNER = re.compile(r"\s*([A-Za-z0-9-]+:[^\s,'{}$]+)\s*(?:,\s*'([^']*)'\s*)?")
_LITERALS = frozenset("*?$")

# The parts of a template: text where `*`/`?` are wildcards, literal text, a variable.
PATTERN, LITERAL, VARIABLE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Template:
    """A value holding at least one variable, split into its parts once, at parse time."""

    source: str
    parts: tuple[tuple[int, str, str | None], ...]
    # For matching: each part's regex source, or None where a variable's value goes.
    sources: tuple[str | None, ...]

    def text(self, context: Mapping[str, tuple[str, ...]]) -> str | None:
        """The value with variables substituted, or None when one cannot be resolved."""
        out = []
        for kind, text, default in self.parts:
            if kind == VARIABLE:
                value = _resolve(text, default, context)
                if value is None:
                    return None
                out.append(value)
            else:
                out.append(text)
        return "".join(out)

    def regex(self, context: Mapping[str, tuple[str, ...]]) -> str | None:
        """The value as a wildcard pattern's regex source, or None when unresolved."""
        out = []
        for (_, text, default), source in zip(self.parts, self.sources, strict=True):
            if source is None:
                value = _resolve(text, default, context)
                if value is None:
                    return None
                source = _escape(value)
            out.append(source)
        return "".join(out)

    def placeholder(self) -> str:
        """The value with each variable replaced by a plain word, for syntax checks."""
        return "".join("0" if kind == VARIABLE else text for kind, text, _ in self.parts)


def parse_template(value: str) -> Template | None:
    """The template for a value that holds variables, or None when it holds none."""
    if "${" not in value:
        return None
    parts: list[tuple[int, str, str | None]] = []
    position = 0
    for found in _VARIABLE.finditer(value):
        if found.start() > position:
            parts.append((PATTERN, value[position : found.start()], None))
        inner = found.group(1)
        if inner in _LITERALS:
            parts.append((LITERAL, inner, None))
        else:
            variable = _INNER.fullmatch(inner)
            if variable is None:
                raise PolicyError(f'"{value}": "${{{inner}}}" is not a policy variable')
            parts.append((VARIABLE, variable.group(1).lower(), variable.group(2)))
        position = found.end()
    rest = value[position:]
    if "${" in rest:
        raise PolicyError(f'"{value}": a policy variable is not closed with "}}"')
    if rest:
        parts.append((PATTERN, rest, None))
    sources = tuple(
        wildcard_regex(text) if kind == PATTERN else re.escape(text) if kind == LITERAL else None
        for kind, text, _ in parts
    )
    return Template(value, tuple(parts), sources)


@lru_cache(maxsize=4096)  # user names and tags recur on every request
def _escape(value: str) -> str:
    return re.escape(value)


def _resolve(key: str, default: str | None, context: Mapping[str, tuple[str, ...]]) -> str | None:
    values = context.get(key)
    if values is not None and len(values) == 1:
        return values[0]
    return default
