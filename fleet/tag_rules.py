"""AWS's rules for resource tags, in one place for every face that accepts tags.

Keys: 1-128 characters; values: 0-256; both of Unicode letters, digits, spaces and
`_ . : / = + - @`; keys starting with `aws:` are reserved. At most 50 tags per resource.
"""

from __future__ import annotations

import unicodedata

MAX_TAGS = 50
KEY_MAX = 128
VALUE_MAX = 256
RESERVED_PREFIX = "aws:"
_PUNCTUATION = frozenset("_.:/=+-@")
# AWS's pattern is [\p{L}\p{Z}\p{N}_.:/=+\-@]: letters, separators (not tabs or newlines),
# numbers.
_CATEGORIES = ("L", "Z", "N")


def _allowed(text: str) -> bool:
    return all(
        ch in _PUNCTUATION or unicodedata.category(ch).startswith(_CATEGORIES) for ch in text
    )


def tag_key_problem(key: object) -> str | None:
    """Why `key` is not a valid tag key, or None."""
    if not isinstance(key, str):
        return "a tag key must be a string"
    if not 1 <= len(key) <= KEY_MAX:
        return f"tag key {key[:KEY_MAX]!r} must be 1-{KEY_MAX} characters"
    if key.lower().startswith(RESERVED_PREFIX):
        return f"tag key {key!r} uses the reserved prefix {RESERVED_PREFIX}"
    if not _allowed(key):
        return f"tag key {key!r} may hold only letters, digits, spaces and _ . : / = + - @"
    return None


def tag_value_problem(key: str, value: object) -> str | None:
    """Why `value` is not a valid value for tag `key`, or None."""
    if not isinstance(value, str):
        return f"the value of tag {key!r} must be a string"
    if len(value) > VALUE_MAX:
        return f"the value of tag {key!r} must be at most {VALUE_MAX} characters"
    if not _allowed(value):
        return f"the value of tag {key!r} may hold only letters, digits, spaces and _ . : / = + - @"
    return None


def tag_problem(key: object, value: object) -> str | None:
    """Why `key`=`value` is not a valid tag, or None."""
    problem = tag_key_problem(key)
    if problem is None and isinstance(key, str):
        problem = tag_value_problem(key, value)
    return problem
