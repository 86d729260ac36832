"""IAM's two wildcards: `*` matches any run of characters (even none), `?` exactly one.

Both cross `/` and `:`, as in IAM. Patterns compile to one regex each, built so that matching
stays linear however many `*` a pattern holds: the text between two `*` has a fixed length,
so taking its leftmost occurrence is always right, and an atomic group stops the engine from
trying the others (the naive `.*a.*a.*b` backtracks polynomially on a long non-match).
"""

from __future__ import annotations

import re
from functools import lru_cache

_SPLIT = re.compile(r"(\*+)")


def has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


def _fixed(segment: str) -> str:
    """Regex for a run holding no `*`: literals, and `?` for any one character."""
    return ".".join(re.escape(literal) for literal in segment.split("?"))


def wildcard_regex(pattern: str) -> str:
    """The regex source (for `re.fullmatch` with DOTALL) equivalent to a wildcard pattern."""
    segments = _SPLIT.split(pattern)[::2]  # the runs between groups of `*`
    if len(segments) == 1:
        return _fixed(pattern)
    head, *middle, tail = segments
    parts = [_fixed(head)]
    parts.extend(f"(?>.*?{_fixed(segment)})" for segment in middle if segment)
    parts.append(f".*{_fixed(tail)}")
    return "".join(parts)


def compile_patterns(patterns: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    """One regex that matches a whole string when any of the patterns does."""
    alternatives = "|".join(f"(?:{wildcard_regex(pattern)})" for pattern in patterns)
    return re.compile(alternatives, re.DOTALL)


@lru_cache(maxsize=4096)
def compiled(pattern: str) -> re.Pattern[str]:
    """A single pattern compiled once; patterns recur across calls and policies."""
    return re.compile(wildcard_regex(pattern), re.DOTALL)


def wildcard_match(pattern: str, text: str) -> bool:
    """Case-sensitive match of the whole of `text` against a wildcard pattern."""
    return compiled(pattern).fullmatch(text) is not None


def literal_prefix(pattern: str) -> str | None:
    """For a pattern that is literal text then one final `*` (`.../prod/*`), that text."""
    head = pattern.rstrip("*")
    if head != pattern and not has_wildcard(head):
        return head
    return None


def longest_literal(pattern: str) -> str:
    """The longest run of plain text in a pattern: any match must contain it."""
    return max(re.split(r"[*?]", pattern), key=len)
