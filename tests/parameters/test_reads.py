"""GetParameter(s) and GetParametersByPath: limits, levels, filters, and NextToken paging."""

from __future__ import annotations

import pytest

from bosun.lib import page_tokens
from parameters import selectors, services
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db


def names(page: selectors.Page) -> list[str]:
    return [item.name for item in page.items]


def every_page(admin, **query) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = selectors.parameters_by_path(principal=admin, next_token=token, **query)
        pages.append(names(page))
        token = page.next_token
        if token is None:
            return pages


@pytest.fixture
def tree(put):
    """/, /app, /app/db and /app/db/deep; one String, StringList and SecureString each."""
    put("top", "t")
    put("/app/name", "bosun")
    put("/app/hosts", "a,b", "StringList")
    put("/app/db/url", "postgres://db")
    put("/app/db/password", "hunter2", "SecureString")
    put("/app/db/deep/x", "x")
    put("/other/y", "y")


# --- GetParameters --------------------------------------------------------------------------


def test_get_parameters_returns_found_ones_and_lists_the_rest_as_invalid(tree, admin):
    found, invalid = selectors.parameters_get(
        principal=admin, names=["/app/name", "/nope", "/app/name:9", "/app/hosts", "a:b:c"]
    )
    assert [(p.name, p.value) for p in found] == [("/app/name", "bosun"), ("/app/hosts", "a,b")]
    assert invalid == ["/nope", "/app/name:9", "a:b:c"]


def test_get_parameters_takes_at_most_ten_names(tree, admin):
    message = refused(
        "ValidationException",
        lambda: selectors.parameters_get(principal=admin, names=[f"/n{i}" for i in range(11)]),
    )
    assert message == "Give between 1 and 10 parameter names."
    found, invalid = selectors.parameters_get(principal=admin, names=[f"/n{i}" for i in range(10)])
    assert (found, len(invalid)) == ([], 10)


def test_get_parameters_decrypts_only_when_asked(tree, admin):
    [sealed], _ = selectors.parameters_get(principal=admin, names=["/app/db/password"])
    [opened], _ = selectors.parameters_get(
        principal=admin, names=["/app/db/password"], with_decryption=True
    )
    assert sealed.value != "hunter2"
    assert opened.value == "hunter2"


def test_a_parameter_value_carries_its_arn_type_version_and_data_type(tree, admin):
    value = selectors.parameter_get(principal=admin, name="/app/hosts")
    assert value.arn == "arn:aws:ssm:us-east-1:000000000000:parameter/app/hosts"
    assert (value.type, value.version, value.data_type) == ("StringList", 1, "text")


# --- By path --------------------------------------------------------------------------------


def test_one_level_returns_only_the_parameters_directly_below_the_path(tree, admin):
    page = selectors.parameters_by_path(principal=admin, path="/app")
    assert names(page) == ["/app/hosts", "/app/name"]


def test_recursive_returns_every_level_below_the_path(tree, admin):
    page = selectors.parameters_by_path(principal=admin, path="/app", recursive=True)
    assert names(page) == [
        "/app/db/deep/x",
        "/app/db/password",
        "/app/db/url",
        "/app/hosts",
        "/app/name",
    ]


def test_the_root_path_one_level_returns_the_top_level_parameters(tree, put, admin):
    put("/slashed", "s")
    page = selectors.parameters_by_path(principal=admin, path="/")
    assert names(page) == ["/slashed", "top"]


def test_the_root_path_recursive_returns_everything(tree, admin):
    assert sum(len(p) for p in every_page(admin, path="/", recursive=True)) == 7


def test_a_trailing_slash_on_the_path_is_forgiven(tree, admin):
    page = selectors.parameters_by_path(principal=admin, path="/app/db/")
    assert names(page) == ["/app/db/password", "/app/db/url"]


def test_a_path_is_not_a_name_prefix(put, admin):
    put("/app/x", "x")
    put("/application/y", "y")
    put("/app", "top")
    page = selectors.parameters_by_path(principal=admin, path="/app", recursive=True)
    assert names(page) == ["/app/x"]


def test_paths_are_case_sensitive(put, admin):
    put("/team/x", "lower")
    put("/Team/y", "upper")
    put("/TEAM/z/deep", "shouting")
    assert names(selectors.parameters_by_path(principal=admin, path="/team", recursive=True)) == [
        "/team/x"
    ]
    assert names(selectors.parameters_by_path(principal=admin, path="/Team")) == ["/Team/y"]


def test_by_path_values_are_sealed_unless_decryption_is_asked_for(tree, admin):
    sealed = selectors.parameters_by_path(principal=admin, path="/app/db")
    opened = selectors.parameters_by_path(principal=admin, path="/app/db", with_decryption=True)
    assert {p.name: p.value for p in opened.items}["/app/db/password"] == "hunter2"
    assert "hunter2" not in {p.name: p.value for p in sealed.items}["/app/db/password"]


# --- By path: filters -----------------------------------------------------------------------


def by_path(admin, filters, path="/app", recursive=True):
    return names(
        selectors.parameters_by_path(
            principal=admin, path=path, recursive=recursive, filters=filters
        )
    )


def test_the_type_filter_keeps_parameters_of_those_types(tree, admin):
    assert by_path(admin, [{"Key": "Type", "Values": ["StringList", "SecureString"]}]) == [
        "/app/db/password",
        "/app/hosts",
    ]
    assert by_path(admin, [{"Key": "Type", "Option": "Equals", "Values": ["String"]}]) == [
        "/app/db/deep/x",
        "/app/db/url",
        "/app/name",
    ]


def test_the_type_filter_may_match_the_beginning_of_the_type(tree, admin):
    assert by_path(admin, [{"Key": "Type", "Option": "BeginsWith", "Values": ["StringL"]}]) == [
        "/app/hosts"
    ]


def test_the_key_id_filter_keeps_secure_strings_sealed_by_that_key(tree, put, admin):
    put("/app/chamber", "c", "SecureString", key_id="alias/parameter_store_key")
    assert by_path(admin, [{"Key": "KeyId", "Values": ["alias/aws/ssm"]}]) == ["/app/db/password"]
    assert by_path(admin, [{"Key": "KeyId", "Option": "BeginsWith", "Values": ["alias/"]}]) == [
        "/app/chamber",
        "/app/db/password",
    ]


def test_the_label_filter_keeps_parameters_whose_newest_version_carries_the_label(tree, put, admin):
    services.parameter_label(principal=admin, name="/app/name", labels=["prod"])
    services.parameter_label(principal=admin, name="/app/hosts", labels=["prod"])
    put("/app/hosts", "c,d", None, overwrite=True)
    assert by_path(admin, [{"Key": "Label", "Values": ["prod"]}]) == ["/app/name"]


@pytest.mark.parametrize("key", ["Name", "Path", "Tier", "DataType", "tag:Env", "Bogus"])
def test_by_path_refuses_filter_keys_it_does_not_take(tree, admin, key):
    message = refused("InvalidFilterKey", lambda: by_path(admin, [{"Key": key, "Values": ["x"]}]))
    assert message == (
        f"The following filter key is not valid: {key}. Valid filter keys include: "
        "[Type, KeyId, Label]."
    )


@pytest.mark.parametrize(
    ("key", "option", "valid"),
    [
        ("Type", "Contains", "Equals, BeginsWith"),
        ("Label", "BeginsWith", "Equals"),
        ("KeyId", "Recursive", "Equals, BeginsWith"),
    ],
)
def test_by_path_refuses_an_option_its_key_does_not_take(tree, admin, key, option, valid):
    message = refused(
        "InvalidFilterOption",
        lambda: by_path(admin, [{"Key": key, "Option": option, "Values": ["String"]}]),
    )
    assert message == (
        f"The following filter option is not valid: {option}. Valid options for the {key} "
        f"filter are: [{valid}]."
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (None, "The Type filter needs a list of values."),
        ([], "The Type filter needs a list of values."),
        (
            [""],
            "The Type filter's values must be 1 to 50 non-empty texts of at most 1024 characters.",
        ),
        (["Integer"], "The Type filter takes String, StringList or SecureString."),
    ],
)
def test_by_path_refuses_filter_values_that_cannot_match(tree, admin, values, message):
    refusal = refused(
        "InvalidFilterValue", lambda: by_path(admin, [{"Key": "Type", "Values": values}])
    )
    assert refusal == message


# --- By path: pages -------------------------------------------------------------------------


@pytest.fixture
def many(put):
    for number in range(25):
        put(f"/many/p{number:02d}", str(number))
    put("/many/sub/deeper", "d")


def test_a_page_holds_at_most_ten_and_the_tokens_walk_everything_exactly_once(many, admin):
    pages = every_page(admin, path="/many")
    assert [len(page) for page in pages] == [10, 10, 5]
    walked = [name for page in pages for name in page]
    assert walked == [f"/many/p{n:02d}" for n in range(25)]


def test_smaller_pages_walk_everything_exactly_once_too(many, admin):
    pages = every_page(admin, path="/many", recursive=True, max_results=3)
    walked = [name for page in pages for name in page]
    assert len(walked) == len(set(walked)) == 26
    assert all(len(page) <= 3 for page in pages)


def test_the_last_page_has_no_token(put, admin):
    for number in range(10):
        put(f"/exact/p{number}", "v")
    page = selectors.parameters_by_path(principal=admin, path="/exact")
    assert (len(page.items), page.next_token) == (10, None)


def test_a_token_is_opaque(many, admin):
    token = selectors.parameters_by_path(principal=admin, path="/many").next_token
    assert "/many" not in token and "p09" not in token


@pytest.mark.parametrize("max_results", [0, 11, -1, "5", 2.5, True])
def test_by_path_max_results_is_one_to_ten(many, admin, max_results):
    message = refused(
        "ValidationException",
        lambda: selectors.parameters_by_path(
            principal=admin, path="/many", max_results=max_results
        ),
    )
    assert message == "MaxResults must be a whole number from 1 to 10."


def invalid_token(admin, token, **query):
    message = refused(
        "InvalidNextToken",
        lambda: selectors.parameters_by_path(principal=admin, next_token=token, **query),
    )
    assert message == "The specified token is not valid."


def test_a_tampered_token_is_refused(many, admin):
    token = selectors.parameters_by_path(principal=admin, path="/many").next_token
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    invalid_token(admin, tampered, path="/many")


def test_a_forged_token_is_refused(many, admin):
    invalid_token(admin, "eyJwIjoiL21hbnkvcDE5In0", path="/many")
    forged = page_tokens.token_make(kind="by-path", query={"path": "/many"}, position="/many/p19")
    invalid_token(admin, forged, path="/many")


def test_a_token_reused_with_another_path_or_depth_or_filter_is_refused(many, admin):
    token = selectors.parameters_by_path(principal=admin, path="/many").next_token
    invalid_token(admin, token, path="/many/sub")
    invalid_token(admin, token, path="/many", recursive=True)
    invalid_token(admin, token, path="/many", filters=[{"Key": "Type", "Values": ["String"]}])


def test_a_token_from_another_listing_is_refused(many, admin):
    token = selectors.parameters_describe(principal=admin, max_results=5).next_token
    invalid_token(admin, token, path="/many")
