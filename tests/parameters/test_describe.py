"""DescribeParameters: Filters or ParameterFilters, every key and option, MaxResults, pages."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from parameters import selectors, services
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db


def described(admin, **query) -> list[str]:
    page = selectors.parameters_describe(principal=admin, **query)
    return [item.parameter.name for item in page.items]


def where(admin, *filters) -> list[str]:
    return described(admin, parameter_filters=list(filters))


@pytest.fixture
def catalogue(put, admin):
    put("top", "t", tags={"Env": "prod"})
    put("/app/name", "bosun", tags={"Env": "prod", "Team": "core"})
    put("/app/hosts", "a,b", "StringList", tags={"Env": "preprod"})
    put("/app/db/password", "hunter2", "SecureString", tags={"Env": "dev"})
    put("/app/db/url", "postgres://db", tier="Advanced")
    put("/app/image", "ami-12345678", data_type="aws:ec2:image")
    put("/other/appendix", "x")
    services.parameter_label(principal=admin, name="/app/name", labels=["live"])


def test_describe_lists_metadata_in_name_order_without_values(catalogue, admin):
    page = selectors.parameters_describe(principal=admin)
    assert [item.parameter.name for item in page.items] == [
        "/app/db/password",
        "/app/db/url",
        "/app/hosts",
        "/app/image",
        "/app/name",
        "/other/appendix",
        "top",
    ]
    first = page.items[0]
    assert first.arn == "arn:aws:ssm:us-east-1:000000000000:parameter/app/db/password"
    assert not hasattr(first, "value")


def test_filters_and_parameter_filters_together_are_refused(catalogue, admin):
    message = refused(
        "ValidationException",
        lambda: selectors.parameters_describe(
            principal=admin,
            filters=[{"Key": "Name", "Values": ["top"]}],
            parameter_filters=[{"Key": "Name", "Values": ["top"]}],
        ),
    )
    assert message == "You can use either Filters or ParameterFilters in a single request."


def test_the_older_filters_take_name_type_and_key_id(catalogue, admin):
    assert described(admin, filters=[{"Key": "Name", "Values": ["/app/name", "top"]}]) == [
        "/app/name",
        "top",
    ]
    assert described(admin, filters=[{"Key": "Type", "Values": ["SecureString"]}]) == [
        "/app/db/password"
    ]
    assert described(admin, filters=[{"Key": "KeyId", "Values": ["alias/aws/ssm"]}]) == [
        "/app/db/password"
    ]
    message = refused(
        "InvalidFilterKey",
        lambda: described(admin, filters=[{"Key": "Path", "Values": ["/app"]}]),
    )
    assert message == (
        "The following filter key is not valid: Path. Valid filter keys include: "
        "[Name, Type, KeyId]."
    )


def test_name_equals_matches_with_or_without_the_top_level_slash(catalogue, admin):
    assert where(admin, {"Key": "Name", "Option": "Equals", "Values": ["/top"]}) == ["top"]
    assert where(admin, {"Key": "Name", "Values": ["/app/hosts"]}) == ["/app/hosts"]


def test_name_begins_with_matches_a_prefix(catalogue, admin):
    assert where(admin, {"Key": "Name", "Option": "BeginsWith", "Values": ["/app/db"]}) == [
        "/app/db/password",
        "/app/db/url",
    ]
    assert where(admin, {"Key": "Name", "Option": "BeginsWith", "Values": ["/APP"]}) == []


def test_name_contains_matches_anywhere(catalogue, admin):
    assert where(admin, {"Key": "Name", "Option": "Contains", "Values": ["app"]}) == [
        "/app/db/password",
        "/app/db/url",
        "/app/hosts",
        "/app/image",
        "/app/name",
        "/other/appendix",
    ]


def test_type_key_id_tier_and_data_type_filters(catalogue, admin):
    assert where(admin, {"Key": "Type", "Values": ["StringList"]}) == ["/app/hosts"]
    assert where(admin, {"Key": "KeyId", "Values": ["alias/aws/ssm"]}) == ["/app/db/password"]
    assert where(admin, {"Key": "Tier", "Values": ["Advanced"]}) == ["/app/db/url"]
    assert where(admin, {"Key": "DataType", "Values": ["aws:ec2:image"]}) == ["/app/image"]
    assert where(admin, {"Key": "DataType", "Option": "BeginsWith", "Values": ["aws:"]}) == [
        "/app/image"
    ]
    assert where(admin, {"Key": "Tier", "Option": "BeginsWith", "Values": ["Adv"]}) == [
        "/app/db/url"
    ]


def test_path_filters_are_recursive_or_one_level(catalogue, admin):
    assert where(admin, {"Key": "Path", "Option": "OneLevel", "Values": ["/app"]}) == [
        "/app/hosts",
        "/app/image",
        "/app/name",
    ]
    assert where(admin, {"Key": "Path", "Option": "Recursive", "Values": ["/app/db"]}) == [
        "/app/db/password",
        "/app/db/url",
    ]
    assert where(admin, {"Key": "Path", "Option": "OneLevel", "Values": ["/"]}) == ["top"]


def test_the_label_filter_matches_labels_on_the_newest_version(catalogue, admin):
    assert where(admin, {"Key": "Label", "Values": ["live"]}) == ["/app/name"]


def test_tag_filters_match_values_or_just_the_key(catalogue, admin):
    assert where(admin, {"Key": "tag:Env", "Values": ["prod"]}) == ["/app/name", "top"]
    assert where(admin, {"Key": "tag:Env", "Option": "BeginsWith", "Values": ["pr"]}) == [
        "/app/hosts",
        "/app/name",
        "top",
    ]
    assert where(admin, {"Key": "tag:Team"}) == ["/app/name"]
    assert where(admin, {"Key": "tag:Team", "Values": []}) == ["/app/name"]
    assert where(admin, {"Key": "tag:Missing"}) == []


def test_filters_combine_as_and(catalogue, admin):
    assert where(
        admin,
        {"Key": "Path", "Option": "Recursive", "Values": ["/app"]},
        {"Key": "tag:Env", "Values": ["prod", "dev"]},
    ) == ["/app/db/password", "/app/name"]


def test_an_unknown_key_is_an_invalid_filter_key(catalogue, admin):
    message = refused("InvalidFilterKey", lambda: where(admin, {"Key": "Owner", "Values": ["x"]}))
    assert message == (
        "The following filter key is not valid: Owner. Valid filter keys include: "
        "[Name, Type, KeyId, Path, Label, Tier, DataType, tag:<key>]."
    )
    refused("InvalidFilterKey", lambda: where(admin, {"Key": "tag:", "Values": ["x"]}))


@pytest.mark.parametrize(
    ("key", "option", "valid"),
    [
        ("Name", "Recursive", "Equals, BeginsWith, Contains"),
        ("Path", "Equals", "Recursive, OneLevel"),
        ("Label", "Contains", "Equals"),
        ("Tier", "Contains", "Equals, BeginsWith"),
        ("tag:Env", "Contains", "Equals, BeginsWith"),
    ],
)
def test_an_option_the_key_does_not_take_is_an_invalid_filter_option(
    catalogue, admin, key, option, valid
):
    message = refused(
        "InvalidFilterOption",
        lambda: where(admin, {"Key": key, "Option": option, "Values": ["/app"]}),
    )
    assert message == (
        f"The following filter option is not valid: {option}. Valid options for the {key} "
        f"filter are: [{valid}]."
    )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"Key": "Tier", "Values": ["Premium"]}, "The Tier filter takes Standard or Advanced."),
        ({"Key": "Name", "Values": []}, "The Name filter needs a list of values."),
        (
            {"Key": "Name", "Values": ["x" * 1025]},
            "The Name filter's values must be 1 to 50 non-empty texts of at most 1024 characters.",
        ),
        (
            {"Key": "Name", "Values": [f"v{n}" for n in range(51)]},
            "The Name filter's values must be 1 to 50 non-empty texts of at most 1024 characters.",
        ),
    ],
)
def test_values_a_filter_cannot_take_are_an_invalid_filter_value(catalogue, admin, item, message):
    assert refused("InvalidFilterValue", lambda: where(admin, item)) == message


def test_a_path_filter_value_must_be_a_path(catalogue, admin):
    refused(
        "ValidationException",
        lambda: where(admin, {"Key": "Path", "Option": "Recursive", "Values": ["app"]}),
    )


@pytest.mark.parametrize("max_results", [0, 51, "10"])
def test_describe_max_results_is_one_to_fifty(catalogue, admin, max_results):
    message = refused("ValidationException", lambda: described(admin, max_results=max_results))
    assert message == "MaxResults must be a whole number from 1 to 50."


def test_describe_pages_walk_everything_exactly_once(put, admin):
    for number in range(57):
        put(f"/d/p{number:02d}", "v")
    seen, token, sizes = [], None, []
    while True:
        page = selectors.parameters_describe(principal=admin, next_token=token)
        sizes.append(len(page.items))
        seen += [item.parameter.name for item in page.items]
        token = page.next_token
        if token is None:
            break
    assert sizes == [50, 7]
    assert seen == [f"/d/p{n:02d}" for n in range(57)]


def test_a_describe_token_is_bound_to_its_filters(put, admin):
    for number in range(6):
        put(f"/d/p{number}", "v")
    token = selectors.parameters_describe(principal=admin, max_results=2).next_token
    message = refused(
        "InvalidNextToken",
        lambda: selectors.parameters_describe(
            principal=admin,
            max_results=2,
            next_token=token,
            filters=[{"Key": "Name", "Values": ["/d/p1"]}],
        ),
    )
    assert message == "The specified token is not valid."


def test_described_policies_show_type_text_and_status(put, admin):
    moment = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    policies = json.dumps(
        [{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": moment.isoformat()}}]
    )
    put("/d/expiring", "v", tier="Advanced", policies=policies)
    [item] = selectors.parameters_describe(principal=admin).items
    [policy] = item.policies
    assert policy["PolicyType"] == "Expiration"
    assert policy["PolicyStatus"] == "Pending"
    assert json.loads(policy["PolicyText"])["Attributes"]["Timestamp"] == moment.isoformat()
