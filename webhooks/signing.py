"""The signature every delivery carries, and its check (what a receiver does, in Python).

X-Bosun-Signature is `sha256=` + hex HMAC-SHA256 over `<X-Bosun-Timestamp>.` + the raw body,
keyed with the endpoint's secret (its UTF-8 bytes). The timestamp is signed too, so a captured
request cannot be replayed later with a fresh timestamp; receivers refuse old ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SCHEME = "sha256="
SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker that tells a reader what the value is
# How far a receiver should let a timestamp drift from its own clock.
DEFAULT_TOLERANCE_SECONDS = 300


def secret_new() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def signature_valid(
    *,
    secret: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when the headers a receiver got match the body and the timestamp is recent."""
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        return False
    expected = signature(secret=secret, timestamp=int(timestamp), body=body)
    return hmac.compare_digest(expected, signature_header)
