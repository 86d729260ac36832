"""Parameter names by AWS's rules: characters, hierarchy, reserved prefixes, levels, length."""

from __future__ import annotations

import pytest

from parameters import rules, selectors
from parameters.models import Parameter
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db

PREFIX = 'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).'


@pytest.mark.parametrize(
    "name", ["plain", "with.dots-and_under", "/app/prod/db-url", "/A/B.c/d-e/f_g", "x" * 1011]
)
def test_letters_digits_dots_hyphens_underscores_and_slashes_make_a_valid_name(put, name):
    assert put(name).version == 1
    assert Parameter.objects.get().name == name


@pytest.mark.parametrize("name", ["with space", "/app/ünïcode", "/app/a*b", "semi;colon", "/a/b:c"])
def test_other_characters_are_refused_with_aws_wording(put, name):
    message = refused("ValidationException", lambda: put(name))
    assert message == rules.NAME_CHARACTERS_MESSAGE
    assert not Parameter.objects.exists()


def test_a_top_level_name_with_and_without_its_leading_slash_is_one_parameter(put, admin):
    put("/toplevel", "one")
    refused("ParameterAlreadyExists", lambda: put("toplevel", "two"))
    assert put("toplevel", "two", None, overwrite=True).version == 2
    assert Parameter.objects.count() == 1
    assert selectors.parameter_get(principal=admin, name="toplevel").value == "two"
    assert selectors.parameter_get(principal=admin, name="/toplevel").value == "two"


def test_a_hierarchical_name_must_be_fully_qualified(put):
    message = refused("ValidationException", lambda: put("app/db"))
    assert message.startswith("Parameter name must be a fully qualified name")
    assert not Parameter.objects.exists()


@pytest.mark.parametrize("name", ["/app/", "/app//db", "//app"])
def test_a_trailing_slash_or_an_empty_level_is_refused(put, name):
    message = refused("ValidationException", lambda: put(name))
    assert message == "Parameter name must not end with a slash or hold an empty level (//)."


@pytest.mark.parametrize(
    "name", ["aws-thing", "AWS", "ssmvalue", "SSM_x", "/awsome/x", "/Ssm/x", "/ssm", "/aws"]
)
def test_names_starting_with_aws_or_ssm_in_any_case_are_refused(put, name):
    assert refused("ValidationException", lambda: put(name)) == PREFIX


@pytest.mark.parametrize("name", ["/aws/x", "/AWS/reference/secretsmanager/x"])
def test_the_aws_hierarchy_is_reserved(put, name):
    message = refused("ValidationException", lambda: put(name))
    assert message == f"No access to reserved parameter name: {name}."


def test_fifteen_levels_are_allowed_and_sixteen_are_not(put):
    fifteen = "".join(f"/l{n}" for n in range(15))
    assert put(fifteen).version == 1
    sixteen = fifteen + "/l15"
    message = refused("HierarchyLevelLimitExceededException", lambda: put(sixteen))
    assert message == (
        f"Parameter name {sixteen} has 16 levels of hierarchy; the limit is 15. Use fewer levels."
    )


def test_a_name_over_1011_characters_is_refused(put):
    message = refused("ValidationException", lambda: put("x" * 1012))
    assert message == "Parameter name must be at most 1011 characters long."


def test_an_empty_name_is_refused(put):
    assert refused("ValidationException", lambda: put("")) == "Parameter name must not be empty."


def test_the_parent_path_of_a_name_is_the_hierarchy_it_sits_in():
    assert rules.parse_name("/a/b/c").parent_path == "/a/b"
    assert rules.parse_name("/a").parent_path == "/"
    assert rules.parse_name("a").parent_path == "/"
    assert rules.parse_name("/a").lookup == rules.parse_name("a").lookup == "a"
    assert rules.parse_name("/a/b").lookup == "/a/b"


def test_names_are_case_sensitive(put, admin):
    put("/Case/x", "upper")
    put("/case/x", "lower")
    assert selectors.parameter_get(principal=admin, name="/Case/x").value == "upper"
    assert selectors.parameter_get(principal=admin, name="/case/x").value == "lower"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("app", 'The parameter path must begin with "/" (for example /app/prod).'),
        (
            "/app//x",
            "The parameter path is not valid: each level is letters, digits and .-_ "
            "separated by single slashes.",
        ),
    ],
)
def test_a_path_for_reading_must_be_well_formed(admin, path, message):
    assert (
        refused(
            "ValidationException",
            lambda: selectors.parameters_by_path(principal=admin, path=path),
        )
        == message
    )


def test_a_path_deeper_than_fifteen_levels_is_refused(admin):
    path = "".join(f"/l{n}" for n in range(16))
    refused(
        "HierarchyLevelLimitExceededException",
        lambda: selectors.parameters_by_path(principal=admin, path=path),
    )
