"""The core path through the services and selectors, end to end on the default database."""

from __future__ import annotations

import pytest

from parameters import selectors, services


@pytest.mark.django_db
def test_a_secure_string_round_trips_and_reads_as_ciphertext_without_decryption(admin):
    result = services.parameter_put(
        principal=admin, name="/app/db/password", value="hunter2", parameter_type="SecureString"
    )
    assert (result.version, result.tier, result.created) == (1, "Standard", True)
    plain = selectors.parameter_get(principal=admin, name="/app/db/password", with_decryption=True)
    assert plain.value == "hunter2"
    hidden = selectors.parameter_get(principal=admin, name="/app/db/password")
    assert hidden.value != "hunter2" and "hunter2" not in hidden.value
    services.parameter_put(principal=admin, name="/app/db/password", value="s3cret", overwrite=True)
    second = selectors.parameter_get(
        principal=admin, name="/app/db/password:1", with_decryption=True
    )
    assert (second.value, second.selector) == ("hunter2", ":1")
    services.parameter_label(principal=admin, name="/app/db/password", labels=["prod", "1bad"])
    labelled = selectors.parameter_get(
        principal=admin, name="/app/db/password:prod", with_decryption=True
    )
    assert (labelled.value, labelled.version) == ("s3cret", 2)
    page = selectors.parameters_by_path(principal=admin, path="/app", recursive=True)
    assert [p.name for p in page.items] == ["/app/db/password"]
    history = selectors.parameter_history(principal=admin, name="/app/db/password")
    assert [entry.row.version for entry in history.items] == [1, 2]
    described = selectors.parameters_describe(principal=admin)
    assert [m.parameter.name for m in described.items] == ["/app/db/password"]


@pytest.mark.django_db
def test_a_path_read_returns_only_what_the_caller_may_read(admin, team_a_reader):
    for name in ("/team/a/one", "/team/a/two", "/team/b/one"):
        services.parameter_put(principal=admin, name=name, value="v", parameter_type="String")
    page = selectors.parameters_by_path(principal=team_a_reader, path="/team", recursive=True)
    assert [p.name for p in page.items] == ["/team/a/one", "/team/a/two"]
