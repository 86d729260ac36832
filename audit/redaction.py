"""Taking secrets out of request parameters before they are recorded.

The audit trail keeps its events for a year and exports them as plain text, so a value under
any key that names a secret is replaced, at any depth, before the event is hashed or stored.
Matching is by key name, case-insensitive, ignoring `_` and `-`: `Value` (SSM PutParameter's
payload), anything containing `password`, `secret`, `token`, … (SecretAccessKey,
X-Amz-Security-Token, client_secret, ActivationCode). Erring towards redaction is deliberate:
a tag's `Value` is lost from the trail too, which costs far less than a leaked secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"

# Whole key names (after normalising) that hold secrets or user data too sensitive to keep.
_SECRET_KEYS = frozenset({"value", "code", "otp", "totp", "pin", "mfacode"})
# Parts of key names that mark a secret wherever they appear.
_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "privatekey",
    "apikey",
    "authorization",
    "cookie",
    "signature",
    "activationcode",
    "sessionkey",
)
_SEPARATORS = re.compile(r"[\s_\-.]")


def is_secret_key(key: object) -> bool:
    name = _SEPARATORS.sub("", str(key)).lower()
    return name in _SECRET_KEYS or any(part in name for part in _SECRET_PARTS)


def redact(params: Any) -> Any:
    """A copy of `params` with every value under a secret-naming key replaced by "***"."""
    if isinstance(params, Mapping):
        return {
            key: REDACTED if is_secret_key(key) else redact(value) for key, value in params.items()
        }
    if isinstance(params, list | tuple):
        return [redact(item) for item in params]
    return params
