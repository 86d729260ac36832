"""Usable access keys and their secrets, remembered per process for a few seconds.

A signed request costs a lookup of its key (with the user) and a decryption of the secret: on
the AWS face that was a third of a GetParameter's server time. Remembering them for
KEY_CACHE_SECONDS bounds what a change costs to take effect: a key deactivated or deleted, or a
user deactivated, stops working at once in the process that made the change (the signals
below) and within KEY_CACHE_SECONDS in every other worker. AWS documents its own IAM changes
as taking effect "eventually", typically within seconds.

Only keys that are usable are remembered: an unknown or inactive key is looked up every time.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from access import services
from access.models import AccessKey

KEY_CACHE_SECONDS = 5.0
KEY_CACHE_MAX = 1000  # keys; past it the cache starts again (a few thousand lookups)

_keys: dict[str, tuple[float, AccessKey, str]] = {}
_lock = threading.Lock()


def usable_key(access_key_id: str) -> tuple[AccessKey, str] | None:
    """The active key of an active user, with its plaintext secret; None otherwise."""
    now = time.monotonic()
    cached = _keys.get(access_key_id)
    if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
        return cached[1], cached[2]
    try:
        # get() rather than first(): the id is unique, and an ORDER BY costs compile time.
        key = AccessKey.objects.select_related("user").get(access_key_id=access_key_id)
    except AccessKey.DoesNotExist:
        forget(access_key_id)
        return None
    if key.status != AccessKey.Status.ACTIVE or not key.user.is_active:
        forget(access_key_id)
        return None
    secret = services.access_key_secret(key)
    with _lock:
        if len(_keys) >= KEY_CACHE_MAX:
            _keys.clear()
        _keys[access_key_id] = (now, key, secret)
    return key, secret


def forget(access_key_id: str) -> None:
    with _lock:
        _keys.pop(access_key_id, None)


def forget_all() -> None:
    with _lock:
        _keys.clear()


@receiver(post_save, sender=AccessKey)
@receiver(post_delete, sender=AccessKey)
def _key_changed(sender: object, instance: AccessKey, **kwargs: object) -> None:
    forget(instance.access_key_id)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _user_changed(sender: object, **kwargs: object) -> None:
    forget_all()
