"""Versions (every write +1, 100 kept) and labels (≤ 10 a version, unique, moving, checked),
and the `name:version` / `name:label` selectors that read them."""

from __future__ import annotations

import pytest

from parameters import selectors, services
from parameters.models import Parameter, ParameterLabel, ParameterVersion
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db


def overwrite(put, name: str, times: int) -> None:
    for number in range(times):
        put(name, f"value-{number}", None, overwrite=True)


def labels_by_version(name: str) -> dict[int, list[str]]:
    return selectors.parameter_labels(Parameter.objects.get(name=name))


# --- Versions -------------------------------------------------------------------------------


def test_every_write_adds_one_to_the_version(put):
    put("/v/count", "0")
    assert [put("/v/count", str(n), None, overwrite=True).version for n in range(1, 5)] == [
        2,
        3,
        4,
        5,
    ]
    assert list(ParameterVersion.objects.values_list("version", flat=True)) == [1, 2, 3, 4, 5]


def test_a_hundred_versions_are_kept_and_the_oldest_is_dropped(put, admin):
    put("/v/many", "first")
    overwrite(put, "/v/many", 100)
    kept = list(ParameterVersion.objects.order_by("version").values_list("version", flat=True))
    assert kept == list(range(2, 102))
    assert Parameter.objects.get().version == 101
    refused(
        "ParameterVersionNotFound",
        lambda: selectors.parameter_get(principal=admin, name="/v/many:1"),
    )
    assert selectors.parameter_get(principal=admin, name="/v/many:2").value == "value-0"


def test_a_labelled_oldest_version_blocks_the_next_write_and_nothing_is_written(put, admin):
    put("/v/held", "first")
    services.parameter_label(principal=admin, name="/v/held", labels=["golden"], version=1)
    overwrite(put, "/v/held", 99)
    assert ParameterVersion.objects.count() == 100
    message = refused(
        "ParameterMaxVersionLimitExceeded",
        lambda: put("/v/held", "one too many", None, overwrite=True),
    )
    assert message == (
        "You attempted to create a new version of /v/held by calling the PutParameter API with "
        "the overwrite flag. Version 1, the oldest version, can't be deleted because it has a "
        "label associated with it. Move the label to another version of the parameter, and try "
        "again."
    )
    assert ParameterVersion.objects.count() == 100
    assert Parameter.objects.get().version == 100
    assert selectors.parameter_get(principal=admin, name="/v/held").value == "value-98"
    assert selectors.parameter_get(principal=admin, name="/v/held:golden").value == "first"


def test_moving_the_label_off_the_oldest_version_lets_writes_continue(put, admin):
    put("/v/moved", "first")
    services.parameter_label(principal=admin, name="/v/moved", labels=["golden"], version=1)
    overwrite(put, "/v/moved", 99)
    services.parameter_label(principal=admin, name="/v/moved", labels=["golden"], version=2)
    assert put("/v/moved", "next", None, overwrite=True).version == 101
    assert ParameterVersion.objects.order_by("version").first().version == 2


# --- Labels ---------------------------------------------------------------------------------


def test_a_label_goes_on_the_newest_version_by_default(put, admin):
    put("/l/a", "one")
    put("/l/a", "two", None, overwrite=True)
    result = services.parameter_label(principal=admin, name="/l/a", labels=["prod"])
    assert (result.version, result.invalid) == (2, [])
    assert labels_by_version("/l/a") == {2: ["prod"]}


def test_a_label_moves_between_versions_and_stays_unique(put, admin):
    put("/l/move", "one")
    put("/l/move", "two", None, overwrite=True)
    services.parameter_label(principal=admin, name="/l/move", labels=["prod", "stable"], version=1)
    services.parameter_label(principal=admin, name="/l/move", labels=["prod"], version=2)
    assert labels_by_version("/l/move") == {1: ["stable"], 2: ["prod"]}
    assert ParameterLabel.objects.filter(name="prod").count() == 1


def test_the_same_label_may_name_versions_of_different_parameters(put, admin):
    put("/l/x", "x")
    put("/l/y", "y")
    services.parameter_label(principal=admin, name="/l/x", labels=["prod"])
    services.parameter_label(principal=admin, name="/l/y", labels=["prod"])
    assert ParameterLabel.objects.filter(name="prod").count() == 2


def test_a_version_holds_at_most_ten_labels(put, admin):
    put("/l/ten", "v")
    services.parameter_label(principal=admin, name="/l/ten", labels=[f"l{n}" for n in range(10)])
    message = refused(
        "ParameterVersionLabelLimitExceeded",
        lambda: services.parameter_label(principal=admin, name="/l/ten", labels=["eleventh"]),
    )
    assert message == (
        "A parameter version can have maximum 10 labels. Move one or more labels to another "
        "version and try again."
    )
    assert len(labels_by_version("/l/ten")[1]) == 10
    # Relabelling with labels it already carries is not more labels.
    services.parameter_label(principal=admin, name="/l/ten", labels=["l0", "l1"])


def test_more_than_ten_labels_in_one_request_are_refused(put, admin):
    put("/l/req", "v")
    message = refused(
        "ValidationException",
        lambda: services.parameter_label(
            principal=admin, name="/l/req", labels=[f"l{n}" for n in range(11)]
        ),
    )
    assert message == "Give between 1 and 10 labels."


@pytest.mark.parametrize(
    "label", ["1st", "aws-prod", "AWSx", "ssm", "SsmLabel", "a/b", "with space", "star*", "ü"]
)
def test_an_invalid_label_comes_back_as_invalid_and_is_not_applied(put, admin, label):
    put("/l/bad", "v")
    result = services.parameter_label(principal=admin, name="/l/bad", labels=[label, "good"])
    assert result.invalid == [label]
    assert labels_by_version("/l/bad") == {1: ["good"]}


def test_a_label_over_100_characters_is_a_validation_error(put, admin):
    put("/l/long", "v")
    message = refused(
        "ValidationException",
        lambda: services.parameter_label(principal=admin, name="/l/long", labels=["x" * 101]),
    )
    assert message == f"Label {'x' * 20}… is longer than 100 characters."
    result = services.parameter_label(principal=admin, name="/l/long", labels=["x" * 100])
    assert result.invalid == []


def test_labelling_an_unknown_version_is_version_not_found(put, admin):
    put("/l/unknown", "v")
    message = refused(
        "ParameterVersionNotFound",
        lambda: services.parameter_label(
            principal=admin, name="/l/unknown", labels=["p"], version=7
        ),
    )
    assert message == (
        "Systems Manager could not find version 7 of /l/unknown. Verify the version and try again."
    )


def test_labelling_an_unknown_parameter_is_parameter_not_found(admin):
    message = refused(
        "ParameterNotFound",
        lambda: services.parameter_label(principal=admin, name="/l/none", labels=["p"]),
    )
    assert message == "Parameter /l/none not found."


def test_unlabelling_returns_what_was_removed_and_what_the_version_did_not_carry(put, admin):
    put("/l/un", "one")
    put("/l/un", "two", None, overwrite=True)
    services.parameter_label(principal=admin, name="/l/un", labels=["a", "b"], version=1)
    services.parameter_label(principal=admin, name="/l/un", labels=["c"], version=2)
    result = services.parameter_unlabel(
        principal=admin, name="/l/un", version=1, labels=["a", "c", "zz"]
    )
    assert (result.removed, result.invalid) == (["a"], ["c", "zz"])
    assert labels_by_version("/l/un") == {1: ["b"], 2: ["c"]}


def test_unlabelling_an_unknown_version_is_version_not_found(put, admin):
    put("/l/un", "one")
    refused(
        "ParameterVersionNotFound",
        lambda: services.parameter_unlabel(principal=admin, name="/l/un", version=3, labels=["a"]),
    )


# --- Selectors ------------------------------------------------------------------------------


def test_name_colon_version_and_name_colon_label_read_that_version(put, admin):
    put("/sel/a", "one")
    put("/sel/a", "two", None, overwrite=True)
    put("/sel/a", "three", None, overwrite=True)
    services.parameter_label(principal=admin, name="/sel/a", labels=["old"], version=1)
    by_version = selectors.parameter_get(principal=admin, name="/sel/a:2")
    assert (by_version.value, by_version.version, by_version.selector) == ("two", 2, ":2")
    by_label = selectors.parameter_get(principal=admin, name="/sel/a:old")
    assert (by_label.value, by_label.version, by_label.selector) == ("one", 1, ":old")
    newest = selectors.parameter_get(principal=admin, name="/sel/a")
    assert (newest.value, newest.version, newest.selector) == ("three", 3, "")


def test_an_unknown_version_or_label_is_version_not_found(put, admin):
    put("/sel/b", "one")
    message = refused(
        "ParameterVersionNotFound",
        lambda: selectors.parameter_get(principal=admin, name="/sel/b:9"),
    )
    assert message == (
        "Systems Manager could not find version 9 of /sel/b. Verify the version and try again."
    )
    message = refused(
        "ParameterVersionNotFound",
        lambda: selectors.parameter_get(principal=admin, name="/sel/b:nolabel"),
    )
    assert message == (
        "Systems Manager could not find version nolabel of /sel/b. Verify the version and try "
        "again."
    )


@pytest.mark.parametrize("selector", ["/sel/c:a:b", "/sel/c:", ":1"])
def test_a_malformed_selector_is_a_validation_error(put, admin, selector):
    put("/sel/c", "v")
    refused("ValidationException", lambda: selectors.parameter_get(principal=admin, name=selector))


def test_a_malformed_selector_names_the_three_forms(admin):
    message = refused(
        "ValidationException", lambda: selectors.parameter_get(principal=admin, name="a:b:c")
    )
    assert message == "a:b:c is not a valid selector: use name, name:version or name:label."


def test_an_unknown_parameter_is_parameter_not_found(admin):
    message = refused(
        "ParameterNotFound", lambda: selectors.parameter_get(principal=admin, name="/sel/none")
    )
    assert message == "Parameter /sel/none not found."
