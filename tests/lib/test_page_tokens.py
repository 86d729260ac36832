"""Opaque NextTokens: signed, bound to their listing and query, refused when altered."""

from __future__ import annotations

import pytest
from django.core import signing

from bosun.lib import page_tokens

QUERY = {"path": "/app", "recursive": True, "filters": []}


def test_a_token_gives_back_the_position_it_was_made_with():
    token = page_tokens.token_make(kind="by-path", query=QUERY, position="/app/db/url")
    assert page_tokens.token_read(token, kind="by-path", query=QUERY) == "/app/db/url"


def test_the_order_of_keys_in_the_query_does_not_matter():
    token = page_tokens.token_make(kind="k", query={"a": 1, "b": 2}, position=3)
    assert page_tokens.token_read(token, kind="k", query={"b": 2, "a": 1}) == 3


def test_a_token_does_not_show_its_position_or_query_in_clear():
    token = page_tokens.token_make(kind="by-path", query=QUERY, position="/app/secret-name")
    assert "secret-name" not in token
    assert "/app" not in token


def test_a_token_for_another_query_is_refused():
    token = page_tokens.token_make(kind="by-path", query=QUERY, position="/app/x")
    with pytest.raises(page_tokens.InvalidPageToken, match=r"^The specified token is not valid\.$"):
        page_tokens.token_read(token, kind="by-path", query={**QUERY, "path": "/other"})


def test_a_token_for_another_listing_is_refused():
    token = page_tokens.token_make(kind="history", query=QUERY, position="3")
    with pytest.raises(page_tokens.InvalidPageToken):
        page_tokens.token_read(token, kind="describe", query=QUERY)


def test_an_altered_token_is_refused():
    token = page_tokens.token_make(kind="k", query=QUERY, position="/app/x")
    for altered in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x" + token, token[1:]):
        with pytest.raises(page_tokens.InvalidPageToken):
            page_tokens.token_read(altered, kind="k", query=QUERY)


def test_a_token_signed_with_another_salt_or_key_is_refused():
    payload = {"k": "k", "q": page_tokens.query_fingerprint(QUERY), "p": "/app/zzz"}
    other_salt = signing.dumps(payload, salt="something-else", compress=True)
    other_key = signing.dumps(payload, key="not-the-secret-key", salt=page_tokens._SALT)
    for forged in (other_salt, other_key):
        with pytest.raises(page_tokens.InvalidPageToken):
            page_tokens.token_read(forged, kind="k", query=QUERY)


@pytest.mark.parametrize("token", [None, "", 42, ["a"], "x" * 4097, "not-a-token"])
def test_anything_that_is_not_a_token_is_refused(token):
    with pytest.raises(page_tokens.InvalidPageToken):
        page_tokens.token_read(token, kind="k", query=QUERY)


def test_fingerprints_differ_between_queries_and_agree_on_equal_ones():
    assert page_tokens.query_fingerprint(QUERY) == page_tokens.query_fingerprint(dict(QUERY))
    assert page_tokens.query_fingerprint(QUERY) != page_tokens.query_fingerprint(
        {**QUERY, "recursive": False}
    )
