"""Opaque pagination tokens (AWS's NextToken): signed, so a client can neither read nor forge
the position they carry, and bound to the query they page (a token reused with another path
or filter is refused rather than silently paging something else)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core import signing

_SALT = "bosun.page-token"


class InvalidPageToken(ValueError):
    pass


def query_fingerprint(query: Any) -> str:
    text = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def token_make(*, kind: str, query: Any, position: Any) -> str:
    return signing.dumps(
        {"k": kind, "q": query_fingerprint(query), "p": position}, salt=_SALT, compress=True
    )


def token_read(token: object, *, kind: str, query: Any) -> Any:
    """The position a token carries; InvalidPageToken if it was forged, altered or made for
    another query."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidPageToken("The specified token is not valid.")
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise InvalidPageToken("The specified token is not valid.") from None
    if (
        not isinstance(data, dict)
        or data.get("k") != kind
        or data.get("q") != query_fingerprint(query)
    ):
        raise InvalidPageToken("The specified token is not valid.")
    return data.get("p")
