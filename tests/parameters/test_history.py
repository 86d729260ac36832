"""GetParameterHistory: every kept version oldest first, labels, who and when, pages ≤ 50."""

from __future__ import annotations

import pytest

from access.authorization import Principal
from parameters import selectors, services
from tests.factories import UserFactory
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db


def test_history_lists_every_version_oldest_first_with_its_settings(put, admin):
    put("/h/a", "one", description="first")
    put("/h/a", "two", None, overwrite=True, description="second", tier="Advanced")
    put("/h/a", "three", None, overwrite=True)
    page = selectors.parameter_history(principal=admin, name="/h/a")
    assert [(e.row.version, e.value, e.row.description, e.row.tier) for e in page.items] == [
        (1, "one", "first", "Standard"),
        (2, "two", "second", "Advanced"),
        (3, "three", "second", "Advanced"),
    ]
    assert page.next_token is None
    assert all(entry.name == "/h/a" for entry in page.items)


def test_history_shows_each_versions_labels(put, admin):
    put("/h/labels", "one")
    put("/h/labels", "two", None, overwrite=True)
    services.parameter_label(principal=admin, name="/h/labels", labels=["b", "a"], version=1)
    services.parameter_label(principal=admin, name="/h/labels", labels=["c"], version=2)
    page = selectors.parameter_history(principal=admin, name="/h/labels")
    assert [entry.labels for entry in page.items] == [["a", "b"], ["c"]]


def test_history_says_who_wrote_each_version_and_when(put, admin):
    writer = Principal(user=UserFactory(username="willa", is_superuser=True))
    put("/h/who", "one")
    put("/h/who", "two", None, overwrite=True, principal=writer)
    first, second = selectors.parameter_history(principal=admin, name="/h/who").items
    assert first.row.modified_user == "arn:aws:iam::000000000000:user/ada"
    assert second.row.modified_user == "arn:aws:iam::000000000000:user/willa"
    assert first.row.modified_at <= second.row.modified_at


def test_history_keeps_secure_values_sealed_unless_decryption_is_asked_for(put, admin):
    put("/h/secret", "old-secret", "SecureString")
    put("/h/secret", "new-secret", None, overwrite=True)
    sealed = selectors.parameter_history(principal=admin, name="/h/secret")
    assert all("secret" not in entry.value for entry in sealed.items)
    assert not any(entry.decrypted for entry in sealed.items)
    opened = selectors.parameter_history(principal=admin, name="/h/secret", with_decryption=True)
    assert [entry.value for entry in opened.items] == ["old-secret", "new-secret"]


def test_history_pages_hold_at_most_fifty_and_walk_every_version_once(put, admin):
    put("/h/long", "0")
    for number in range(1, 75):
        put("/h/long", str(number), None, overwrite=True)
    seen, sizes, token = [], [], None
    while True:
        page = selectors.parameter_history(principal=admin, name="/h/long", next_token=token)
        sizes.append(len(page.items))
        seen += [entry.row.version for entry in page.items]
        token = page.next_token
        if token is None:
            break
    assert sizes == [50, 25]
    assert seen == list(range(1, 76))


def test_history_pages_may_be_smaller(put, admin):
    put("/h/small", "0")
    for number in range(1, 5):
        put("/h/small", str(number), None, overwrite=True)
    first = selectors.parameter_history(principal=admin, name="/h/small", max_results=3)
    second = selectors.parameter_history(
        principal=admin, name="/h/small", max_results=3, next_token=first.next_token
    )
    assert [e.row.version for e in first.items] == [1, 2, 3]
    assert [e.row.version for e in second.items] == [4, 5]
    assert second.next_token is None


@pytest.mark.parametrize("max_results", [0, 51])
def test_history_max_results_is_one_to_fifty(put, admin, max_results):
    put("/h/x", "v")
    message = refused(
        "ValidationException",
        lambda: selectors.parameter_history(principal=admin, name="/h/x", max_results=max_results),
    )
    assert message == "MaxResults must be a whole number from 1 to 50."


def test_a_history_token_belongs_to_its_parameter(put, admin):
    put("/h/one", "0")
    put("/h/two", "0")
    for number in range(3):
        put("/h/one", str(number), None, overwrite=True)
        put("/h/two", str(number), None, overwrite=True)
    token = selectors.parameter_history(principal=admin, name="/h/one", max_results=1).next_token
    message = refused(
        "InvalidNextToken",
        lambda: selectors.parameter_history(principal=admin, name="/h/two", next_token=token),
    )
    assert message == "The specified token is not valid."


def test_the_history_of_an_unknown_parameter_is_parameter_not_found(admin):
    message = refused(
        "ParameterNotFound", lambda: selectors.parameter_history(principal=admin, name="/h/none")
    )
    assert message == "Parameter /h/none not found."


def test_history_after_the_hundred_version_limit_starts_at_the_oldest_kept(put, admin):
    put("/h/limit", "0")
    for number in range(1, 105):
        put("/h/limit", str(number), None, overwrite=True)
    page = selectors.parameter_history(principal=admin, name="/h/limit")
    assert page.items[0].row.version == 6
