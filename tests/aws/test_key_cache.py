"""Keys remembered between requests (access.key_cache): a change made here takes effect at
once, one made by another process within KEY_CACHE_SECONDS, and a busy key costs no query."""

from __future__ import annotations

import json
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from access import key_cache
from access.authorization import Principal
from access.models import AccessKey
from access.services import access_key_set_status
from tests.aws.signing import call

GET = json.dumps({"Name": "greeting"})


def code_of(answer) -> str:
    return "ok" if answer.status == 200 else answer.json["__type"]


def test_a_key_deactivated_here_is_refused_at_once_though_it_was_just_used(url, keys, admin):
    assert code_of(call(url, GET, key_id=keys[0], secret=keys[1])) == "ok"
    key = AccessKey.objects.get(access_key_id=keys[0])
    access_key_set_status(principal=Principal(user=admin), access_key=key, active=False)
    refused = call(url, GET, key_id=keys[0], secret=keys[1])
    assert code_of(refused) == "UnrecognizedClientException"


def test_a_user_deactivated_here_loses_their_keys_at_once(url, keys, admin):
    assert code_of(call(url, GET, key_id=keys[0], secret=keys[1])) == "ok"
    admin.is_active = False
    admin.save()
    assert code_of(call(url, GET, key_id=keys[0], secret=keys[1])) == "UnrecognizedClientException"


def test_a_change_made_by_another_process_takes_effect_within_the_cache_time(
    url, keys, monkeypatch
):
    monkeypatch.setattr(key_cache, "KEY_CACHE_SECONDS", 0.5)
    assert code_of(call(url, GET, key_id=keys[0], secret=keys[1])) == "ok"
    # As another worker would: no signal reaches this process.
    AccessKey.objects.filter(access_key_id=keys[0]).update(status=AccessKey.Status.INACTIVE)
    time.sleep(0.6)
    assert code_of(call(url, GET, key_id=keys[0], secret=keys[1])) == "UnrecognizedClientException"


def test_a_remembered_key_costs_no_query(transactional_db, admin, keys_for):
    key_id, secret = keys_for(admin)
    assert key_cache.usable_key(key_id) is not None
    with CaptureQueriesContext(connection) as queries:
        key, remembered = key_cache.usable_key(key_id)
    assert len(queries) == 0
    assert key.access_key_id == key_id and remembered == secret


def test_an_unknown_key_is_never_remembered(transactional_db):
    assert key_cache.usable_key("AKIA" + "Q" * 16) is None
    assert "AKIA" + "Q" * 16 not in key_cache._keys
