"""What-if changes to the read path, applied in memory to measure what a proposal would buy.

Never part of the shipped server: bench/parameters.py applies them to one gunicorn run at a
time (through bench/_parameters_gunicorn.py) and bench/_parameters_profile.py to a timed loop,
so the report can say "this change measured so much" instead of guessing. Each is the smallest
stand-in for the proposal it is named after; none changes a response.

- `no_decrypt_audit`: a decrypted read writes no `kms:Decrypt` audit event. Not a proposal:
  the upper bound of any cheaper way of auditing reads (batching, appending after the
  response, a cheaper commit).
- `audit_async_commit`: the `kms:Decrypt` event is still appended (chain and all), in a
  transaction of its own with `SET LOCAL synchronous_commit TO OFF`, so the append does not
  wait for the WAL flush (a PostgreSQL crash could lose the last moments of read events,
  never a write's, and the chain stays whole).
- `cached_access_key`: a bearer key that verified is trusted for TTL_SECONDS in this process
  (the secret compared by its SHA-256), so a busy client's requests skip the access-key query;
  a deactivated or deleted key keeps working that long in each worker.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable

NAMES = ("no_decrypt_audit", "audit_async_commit", "cached_access_key")
TTL_SECONDS = 5.0


_undo: list[Callable[[], None]] = []


def apply(names: Iterable[str]) -> list[str]:
    """Apply the what-ifs named (blank names are skipped); `undo()` takes them all off."""
    applied = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name not in NAMES:
            raise ValueError(f"unknown what-if {name!r}; known: {', '.join(NAMES)}")
        _PATCHES[name]()
        applied.append(name)
    return applied


def undo() -> None:
    while _undo:
        _undo.pop()()


def _replace(owner: object, attribute: str, new: object) -> None:
    """Set owner.attribute, remembering how to put back what was there."""
    own = vars(owner)
    if attribute in own:
        previous = own[attribute]
        _undo.append(lambda: setattr(owner, attribute, previous))
    else:
        _undo.append(lambda: delattr(owner, attribute))
    setattr(owner, attribute, new)


def _no_decrypt_audit() -> None:
    from access.authorization import Principal

    original = Principal.record

    @functools.wraps(original)
    def record(self, action, **kwargs):
        if action == "kms:Decrypt":
            return None
        return original(self, action, **kwargs)

    _replace(Principal, "record", record)


def _audit_async_commit() -> None:
    from django.db import connection, transaction

    from access.authorization import Principal

    original = Principal.record

    @functools.wraps(original)
    def record(self, action, **kwargs):
        if action != "kms:Decrypt" or connection.in_atomic_block:
            return original(self, action, **kwargs)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            return original(self, action, **kwargs)

    _replace(Principal, "record", record)


def _cached_access_key() -> None:
    from rest_framework.authentication import get_authorization_header

    from access import services
    from access.api.authentication import AccessKeyAuthentication

    original = AccessKeyAuthentication.authenticate
    verified: dict[str, tuple[float, bytes, object, object]] = {}

    @functools.wraps(original)
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) == 2 and parts[0].lower() == self.keyword and b":" in parts[1]:
            key_id, _, secret = parts[1].decode("utf-8", "replace").partition(":")
            digest = hashlib.sha256(secret.encode()).digest()
            entry = verified.get(key_id)
            if entry is not None and entry[0] > time.monotonic():
                _, known, user, access_key = entry
                if hmac.compare_digest(known, digest):
                    source_ip = request.META.get("REMOTE_ADDR", "")
                    services.access_key_mark_used(access_key=access_key, source_ip=source_ip)
                    request._request.access_key_id = access_key.access_key_id
                    return user, access_key
        answer = original(self, request)
        if answer is not None:
            user, access_key = answer
            # Marked used now or within the minute: the cached row must not write every time.
            access_key.last_used_at = _now()
            verified[access_key.access_key_id] = (
                time.monotonic() + TTL_SECONDS,
                hashlib.sha256(parts[1].partition(b":")[2]).digest(),
                user,
                access_key,
            )
        return answer

    _replace(AccessKeyAuthentication, "authenticate", authenticate)


def _now():
    from django.utils import timezone

    return timezone.now()


_PATCHES: dict[str, Callable[[], None]] = {
    "no_decrypt_audit": _no_decrypt_audit,
    "audit_async_commit": _audit_async_commit,
    "cached_access_key": _cached_access_key,
}
