"""Signing in: the session's user read from the shared cache instead of the database.

Every signed-in request loads its user; with Redis that lookup is served from the cache, and
any save or delete of a user drops the cached copy at once (signals wired in WebConfig.ready),
so deactivating someone or changing a password takes effect on their next request. A
`QuerySet.update()` sends no signal; the short lifetime bounds how long such a change waits.
Only used with Redis: the embedded stack's cache is per process and could not be cleared
everywhere.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

USER_CACHE_SECONDS = 60


def _key(user_id: Any) -> str:
    return f"auth:user:{user_id}"


class CachedModelBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        user = cache.get(_key(user_id))
        if user is None:
            user = super().get_user(user_id)
            if user is not None:
                cache.set(_key(user_id), user, USER_CACHE_SECONDS)
            return user
        return user if self.user_can_authenticate(user) else None


def forget_cached_user(sender: Any, instance: Any, **kwargs: Any) -> None:
    cache.delete(_key(instance.pk))


def connect_signals() -> None:
    user_model = get_user_model()
    post_save.connect(forget_cached_user, sender=user_model, dispatch_uid="forget-cached-user")
    post_delete.connect(forget_cached_user, sender=user_model, dispatch_uid="forget-cached-user-d")
