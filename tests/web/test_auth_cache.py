"""The cached user lookup used with Redis (here on the process-local cache, same contract)."""

import pytest
from django.core.cache import cache

from web.auth import CachedModelBackend, _key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_the_user_is_read_from_the_cache_after_the_first_lookup(
    operator_user, django_assert_num_queries
):
    backend = CachedModelBackend()
    with django_assert_num_queries(1):
        backend.get_user(operator_user.pk)
    with django_assert_num_queries(0):
        assert backend.get_user(operator_user.pk).username == "otto"


def test_deactivating_a_user_takes_effect_on_the_next_lookup(operator_user):
    backend = CachedModelBackend()
    backend.get_user(operator_user.pk)
    operator_user.is_active = False
    operator_user.save()
    assert cache.get(_key(operator_user.pk)) is None
    assert backend.get_user(operator_user.pk) is None


def test_a_password_change_drops_the_cached_copy(operator_user):
    backend = CachedModelBackend()
    old_hash = backend.get_user(operator_user.pk).password
    operator_user.set_password("a brand new passphrase")
    operator_user.save()
    assert backend.get_user(operator_user.pk).password != old_hash


def test_a_deleted_user_is_forgotten(operator_user):
    backend = CachedModelBackend()
    backend.get_user(operator_user.pk)
    user_id = operator_user.pk
    operator_user.delete()
    assert backend.get_user(user_id) is None


def test_a_stale_inactive_copy_is_still_refused(operator_user):
    operator_user.is_active = False
    cache.set(_key(operator_user.pk), operator_user, 60)
    assert CachedModelBackend().get_user(operator_user.pk) is None
