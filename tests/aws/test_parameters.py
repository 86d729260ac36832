"""Parameter Store on the AWS endpoint, as boto3 and the aws CLI see it against a live server:
AWS's output shapes, its error codes and messages, its pagination."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from botocore.exceptions import ClientError
from django.conf import settings

from access.models import ManagedPolicy
from tests.aws.conftest import REGION, cli_json
from tests.factories import UserFactory

ACCOUNT = settings.BOSUN.account_id
ALREADY_EXISTS = (
    "The parameter already exists. To overwrite this value, set the overwrite option in the "
    "request to true."
)

VALUE_FIELDS = {"Name", "Type", "Value", "Version", "LastModifiedDate", "ARN", "DataType"}


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    """(code, message) of a ClientError, as botocore parsed them."""
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def put(ssm, name: str, value: str = "v", kind: str = "String", **more) -> None:
    ssm.put_parameter(Name=name, Value=value, Type=kind, **more)


def names_of(parameters: list[dict]) -> list[str]:
    return [p["Name"] for p in parameters]


# --- GetParameters --------------------------------------------------------------------------


def test_get_parameters_returns_the_found_ones_and_lists_unknown_names_as_invalid(ssm):
    put(ssm, "/g/a", "one")
    ssm.put_parameter(Name="/g/a", Value="two", Overwrite=True)
    ssm.label_parameter_version(Name="/g/a", ParameterVersion=1, Labels=["first"])

    answer = ssm.get_parameters(Names=["/g/a", "/g/a:1", "/g/a:first", "/g/missing", "/g/a:9"])

    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["InvalidParameters"] == ["/g/missing", "/g/a:9"]
    newest, by_version, by_label = answer["Parameters"]
    assert newest["Value"] == "two" and newest["Version"] == 2 and "Selector" not in newest
    assert by_version["Value"] == "one" and by_version["Selector"] == ":1"
    assert by_label["Value"] == "one" and by_label["Selector"] == ":first"
    assert set(newest) == VALUE_FIELDS
    assert newest["Name"] == "/g/a" and newest["Type"] == "String"
    assert newest["ARN"] == f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/g/a"
    assert newest["DataType"] == "text"
    assert isinstance(newest["LastModifiedDate"], datetime)


def test_get_parameters_decrypts_a_secure_string_only_when_asked(ssm):
    put(ssm, "/g/secret", "s3cr3t", "SecureString")

    hidden = ssm.get_parameters(Names=["/g/secret"])["Parameters"][0]
    shown = ssm.get_parameters(Names=["/g/secret"], WithDecryption=True)["Parameters"][0]

    assert hidden["Type"] == "SecureString" and hidden["Value"] != "s3cr3t"
    assert shown["Value"] == "s3cr3t"


def test_get_parameters_with_only_unknown_names_still_succeeds(ssm):
    answer = ssm.get_parameters(Names=["nothing", "/nor/this"])
    assert answer["Parameters"] == [] and answer["InvalidParameters"] == ["nothing", "/nor/this"]


def test_arns_name_the_region_the_caller_signed_for(client_for, admin):
    tokyo = client_for(admin, region="ap-northeast-1")
    put(tokyo, "/r/a")

    got = tokyo.get_parameters(Names=["/r/a"])["Parameters"][0]
    described = tokyo.describe_parameters()["Parameters"][0]
    by_path = tokyo.get_parameters_by_path(Path="/r")["Parameters"][0]

    arn = f"arn:aws:ssm:ap-northeast-1:{ACCOUNT}:parameter/r/a"
    assert got["ARN"] == described["ARN"] == by_path["ARN"] == arn


# --- GetParametersByPath --------------------------------------------------------------------


def test_get_parameters_by_path_reads_one_level_or_recursively(ssm):
    for name in ("/p/a", "/p/b", "/p/deep/c", "/p/deep/er/d", "/q/e"):
        put(ssm, name)

    one_level = ssm.get_parameters_by_path(Path="/p")
    recursive = ssm.get_parameters_by_path(Path="/p/", Recursive=True)

    assert names_of(one_level["Parameters"]) == ["/p/a", "/p/b"]
    assert "NextToken" not in one_level
    assert names_of(recursive["Parameters"]) == ["/p/a", "/p/b", "/p/deep/c", "/p/deep/er/d"]
    assert set(recursive["Parameters"][0]) == VALUE_FIELDS


def test_get_parameters_by_path_filters_by_type_and_label_and_decrypts_when_asked(ssm):
    put(ssm, "/f/plain", "p")
    put(ssm, "/f/list", "a,b", "StringList")
    put(ssm, "/f/secret", "s", "SecureString")
    ssm.label_parameter_version(Name="/f/list", Labels=["live"])

    secure = ssm.get_parameters_by_path(
        Path="/f",
        ParameterFilters=[{"Key": "Type", "Option": "Equals", "Values": ["SecureString"]}],
        WithDecryption=True,
    )
    labelled = ssm.get_parameters_by_path(
        Path="/f", ParameterFilters=[{"Key": "Label", "Values": ["live"]}]
    )

    assert [(p["Name"], p["Value"]) for p in secure["Parameters"]] == [("/f/secret", "s")]
    assert names_of(labelled["Parameters"]) == ["/f/list"]


def test_the_get_parameters_by_path_paginator_walks_every_page(ssm):
    for index in range(23):
        put(ssm, f"/many/p{index:02d}", str(index))

    pages = list(
        ssm.get_paginator("get_parameters_by_path").paginate(
            Path="/many", PaginationConfig={"PageSize": 10}
        )
    )

    assert [len(page["Parameters"]) for page in pages] == [10, 10, 3]
    assert "NextToken" in pages[0] and "NextToken" not in pages[-1]
    every = [p["Name"] for page in pages for p in page["Parameters"]]
    assert every == [f"/many/p{index:02d}" for index in range(23)]


def test_get_parameters_by_path_refuses_more_than_ten_results_a_page(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.get_parameters_by_path(Path="/p", MaxResults=11)
    code, message = error_of(raised)
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value ")
    assert message.endswith(
        "at 'maxResults' failed to satisfy constraint: Member must have value less than or "
        "equal to 10"
    )


def test_get_parameters_by_path_refuses_a_path_filter_as_an_invalid_filter_key(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.get_parameters_by_path(Path="/p", ParameterFilters=[{"Key": "Path", "Values": ["/p"]}])
    assert error_of(raised) == (
        "InvalidFilterKey",
        "The following filter key is not valid: Path. Valid filter keys include: "
        "[Type, KeyId, Label].",
    )


def test_a_next_token_bosun_did_not_make_is_an_invalid_next_token(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.get_parameters_by_path(Path="/p", NextToken="forged")
    assert error_of(raised) == ("InvalidNextToken", "The specified token is not valid.")


# --- DeleteParameter(s) ---------------------------------------------------------------------


def test_delete_parameter_deletes_and_a_second_delete_is_parameter_not_found(ssm):
    put(ssm, "/d/one")

    assert set(ssm.delete_parameter(Name="/d/one")) == {"ResponseMetadata"}
    with pytest.raises(ClientError) as raised:
        ssm.delete_parameter(Name="/d/one")

    assert error_of(raised) == ("ParameterNotFound", "Parameter /d/one not found.")
    with pytest.raises(ClientError) as raised:
        ssm.get_parameter(Name="/d/one")
    assert error_of(raised)[0] == "ParameterNotFound"


def test_delete_parameters_reports_what_it_deleted_and_which_names_were_invalid(ssm):
    put(ssm, "/d/a")
    put(ssm, "/d/b")

    answer = ssm.delete_parameters(Names=["/d/a", "/d/missing", "/d/b"])

    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["DeletedParameters"] == ["/d/a", "/d/b"]
    assert answer["InvalidParameters"] == ["/d/missing"]
    assert ssm.get_parameters(Names=["/d/a", "/d/b"])["Parameters"] == []


# --- DescribeParameters ---------------------------------------------------------------------


def test_describe_parameters_shows_aws_parameter_metadata(ssm):
    put(ssm, "/m/plain", "x", Description="a plain one", AllowedPattern="^[a-z]+$")
    put(ssm, "/m/secret", "s", "SecureString")
    expires = {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2099-01-01"}}
    put(ssm, "/m/advanced", "a", Tier="Advanced", Policies=json.dumps([expires]))

    found = {p["Name"]: p for p in ssm.describe_parameters()["Parameters"]}

    plain, secret, advanced = found["/m/plain"], found["/m/secret"], found["/m/advanced"]
    assert set(plain) == {
        "Name",
        "ARN",
        "Type",
        "LastModifiedDate",
        "LastModifiedUser",
        "Description",
        "AllowedPattern",
        "Version",
        "Tier",
        "Policies",
        "DataType",
    }
    assert plain["ARN"] == f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/m/plain"
    assert plain["Description"] == "a plain one" and plain["AllowedPattern"] == "^[a-z]+$"
    assert plain["LastModifiedUser"] == f"arn:aws:iam::{ACCOUNT}:user/ada"
    assert isinstance(plain["LastModifiedDate"], datetime)
    assert (plain["Version"], plain["Tier"], plain["Policies"], plain["DataType"]) == (
        1,
        "Standard",
        [],
        "text",
    )
    assert secret["KeyId"] == "alias/aws/ssm" and "Description" not in secret
    assert "KeyId" not in plain and "Value" not in secret
    assert advanced["Tier"] == "Advanced"
    assert [(p["PolicyType"], p["PolicyStatus"]) for p in advanced["Policies"]] == [
        ("Expiration", "Pending")
    ]
    assert json.loads(advanced["Policies"][0]["PolicyText"])["Type"] == "Expiration"


def test_describe_parameters_filters_by_path_name_type_label_and_tag(ssm):
    put(ssm, "/app/a")
    put(ssm, "/app/key", "k", "SecureString")
    put(ssm, "/app/sub/c", "c", "StringList")
    put(ssm, "/ops/d", Tags=[{"Key": "Env", "Value": "prod"}])
    put(ssm, "top")
    ssm.label_parameter_version(Name="/app/sub/c", Labels=["live"])

    def described(**filters) -> list[str]:
        return names_of(ssm.describe_parameters(**filters)["Parameters"])

    one_level = [{"Key": "Path", "Option": "OneLevel", "Values": ["/app"]}]
    assert described(ParameterFilters=one_level) == ["/app/a", "/app/key"]
    recursive = [{"Key": "Path", "Values": ["/app"]}]
    assert described(ParameterFilters=recursive) == ["/app/a", "/app/key", "/app/sub/c"]
    begins = [{"Key": "Name", "Option": "BeginsWith", "Values": ["/app/s"]}]
    assert described(ParameterFilters=begins) == ["/app/sub/c"]
    secure = [{"Key": "Type", "Values": ["SecureString"]}]
    assert described(ParameterFilters=secure) == ["/app/key"]
    assert described(ParameterFilters=[{"Key": "Label", "Values": ["live"]}]) == ["/app/sub/c"]
    assert described(ParameterFilters=[{"Key": "tag:Env", "Values": ["prod"]}]) == ["/ops/d"]
    assert described(Filters=[{"Key": "Name", "Values": ["top"]}]) == ["top"]


def test_describe_parameters_takes_filters_or_parameter_filters_but_not_both(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_parameters(
            Filters=[{"Key": "Name", "Values": ["a"]}],
            ParameterFilters=[{"Key": "Name", "Values": ["a"]}],
        )
    assert error_of(raised) == (
        "ValidationException",
        "You can use either Filters or ParameterFilters in a single request.",
    )


def test_describe_parameters_refuses_an_option_a_filter_does_not_take(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_parameters(
            ParameterFilters=[{"Key": "Label", "Option": "BeginsWith", "Values": ["a"]}]
        )
    assert error_of(raised) == (
        "InvalidFilterOption",
        "The following filter option is not valid: BeginsWith. Valid options for the Label "
        "filter are: [Equals].",
    )


def test_describe_parameters_refuses_a_type_that_does_not_exist(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_parameters(ParameterFilters=[{"Key": "Type", "Values": ["Secret"]}])
    assert error_of(raised) == (
        "InvalidFilterValue",
        "The Type filter takes String, StringList or SecureString.",
    )


def test_an_overlong_filter_option_gets_aws_validation_exception_text(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "BeginsWithIt", "Values": ["a"]}]
        )
    assert error_of(raised) == (
        "ValidationException",
        "1 validation error detected: Value 'BeginsWithIt' at "
        "'parameterFilters.1.member.option' failed to satisfy constraint: Member must have "
        "length less than or equal to 10",
    )


def test_the_describe_parameters_paginator_walks_every_page(ssm):
    for index in range(12):
        put(ssm, f"/page/p{index:02d}")

    pages = list(
        ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Path", "Values": ["/page"]}],
            PaginationConfig={"PageSize": 5},
        )
    )

    assert [len(page["Parameters"]) for page in pages] == [5, 5, 2]
    every = [p["Name"] for page in pages for p in page["Parameters"]]
    assert every == [f"/page/p{index:02d}" for index in range(12)]


def test_describe_parameters_lists_nothing_shared_by_other_accounts(ssm):
    put(ssm, "/mine")
    assert ssm.describe_parameters(Shared=True)["Parameters"] == []


# --- GetParameterHistory --------------------------------------------------------------------


def test_get_parameter_history_lists_every_version_with_labels_and_writer(ssm):
    put(ssm, "/h/db", "one", Description="the database")
    ssm.put_parameter(Name="/h/db", Value="two", Overwrite=True)
    ssm.label_parameter_version(Name="/h/db", ParameterVersion=1, Labels=["old", "first"])

    history = ssm.get_parameter_history(Name="/h/db")

    assert "NextToken" not in history
    first, second = history["Parameters"]
    assert set(first) == {
        "Name",
        "Type",
        "LastModifiedDate",
        "LastModifiedUser",
        "Description",
        "Value",
        "Version",
        "Labels",
        "Tier",
        "Policies",
        "DataType",
    }
    assert (first["Version"], first["Value"], first["Labels"]) == (1, "one", ["first", "old"])
    assert (second["Version"], second["Value"], second["Labels"]) == (2, "two", [])
    assert first["Name"] == "/h/db" and first["Type"] == "String"
    assert first["Description"] == "the database"
    assert first["LastModifiedUser"] == f"arn:aws:iam::{ACCOUNT}:user/ada"
    assert (first["Tier"], first["Policies"], first["DataType"]) == ("Standard", [], "text")
    assert isinstance(first["LastModifiedDate"], datetime)


def test_get_parameter_history_shows_a_secure_string_decrypted_only_when_asked(ssm):
    put(ssm, "/h/secret", "s3cr3t", "SecureString")

    hidden = ssm.get_parameter_history(Name="/h/secret")["Parameters"][0]
    shown = ssm.get_parameter_history(Name="/h/secret", WithDecryption=True)["Parameters"][0]

    assert hidden["Value"] != "s3cr3t" and shown["Value"] == "s3cr3t"
    assert hidden["KeyId"] == "alias/aws/ssm"


def test_the_get_parameter_history_paginator_walks_every_page(ssm):
    put(ssm, "/h/busy", "0")
    for index in range(1, 5):
        ssm.put_parameter(Name="/h/busy", Value=str(index), Overwrite=True)

    pages = list(
        ssm.get_paginator("get_parameter_history").paginate(
            Name="/h/busy", PaginationConfig={"PageSize": 2}
        )
    )

    assert [[p["Version"] for p in page["Parameters"]] for page in pages] == [[1, 2], [3, 4], [5]]


def test_get_parameter_history_refuses_more_than_fifty_results_a_page(ssm):
    put(ssm, "/h/x")
    with pytest.raises(ClientError) as raised:
        ssm.get_parameter_history(Name="/h/x", MaxResults=51)
    code, message = error_of(raised)
    assert code == "ValidationException"
    assert "Member must have value less than or equal to 50" in message


def test_get_parameter_history_of_a_missing_parameter_is_parameter_not_found(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.get_parameter_history(Name="/h/nope")
    assert error_of(raised) == ("ParameterNotFound", "Parameter /h/nope not found.")


# --- Labels ---------------------------------------------------------------------------------


def test_label_parameter_version_labels_the_newest_version_by_default(ssm):
    put(ssm, "/l/app", "1")
    ssm.put_parameter(Name="/l/app", Value="2", Overwrite=True)

    answer = ssm.label_parameter_version(Name="/l/app", Labels=["prod"])

    assert answer["ParameterVersion"] == 2 and answer["InvalidLabels"] == []
    assert ssm.get_parameter(Name="/l/app:prod")["Parameter"]["Value"] == "2"


def test_a_label_moves_between_versions_and_invalid_labels_come_back(ssm):
    put(ssm, "/l/app", "1")
    ssm.put_parameter(Name="/l/app", Value="2", Overwrite=True)
    ssm.label_parameter_version(Name="/l/app", Labels=["prod"])

    answer = ssm.label_parameter_version(
        Name="/l/app", ParameterVersion=1, Labels=["prod", "9lives", "awsome", "a/b"]
    )

    assert answer["ParameterVersion"] == 1
    assert answer["InvalidLabels"] == ["9lives", "awsome", "a/b"]
    assert ssm.get_parameter(Name="/l/app:prod")["Parameter"]["Version"] == 1


def test_labelling_a_missing_version_is_parameter_version_not_found(ssm):
    put(ssm, "/l/app")
    with pytest.raises(ClientError) as raised:
        ssm.label_parameter_version(Name="/l/app", ParameterVersion=9, Labels=["x"])
    assert error_of(raised) == (
        "ParameterVersionNotFound",
        "Systems Manager could not find version 9 of /l/app. Verify the version and try again.",
    )


def test_labelling_a_missing_parameter_is_parameter_not_found(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.label_parameter_version(Name="/l/none", Labels=["x"])
    assert error_of(raised) == ("ParameterNotFound", "Parameter /l/none not found.")


def test_an_eleventh_label_on_a_version_is_parameter_version_label_limit_exceeded(ssm):
    put(ssm, "/l/app")
    ssm.label_parameter_version(Name="/l/app", Labels=[f"l{index}" for index in range(10)])

    with pytest.raises(ClientError) as raised:
        ssm.label_parameter_version(Name="/l/app", Labels=["one-more"])

    assert error_of(raised) == (
        "ParameterVersionLabelLimitExceeded",
        "A parameter version can have maximum 10 labels. Move one or more labels to another "
        "version and try again.",
    )


def test_a_label_over_a_hundred_characters_is_a_validation_exception(ssm):
    put(ssm, "/l/app")
    with pytest.raises(ClientError) as raised:
        ssm.label_parameter_version(Name="/l/app", Labels=["x" * 101])
    code, message = error_of(raised)
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 100" in message


def test_unlabel_parameter_version_removes_labels_and_returns_the_ones_it_lacked(ssm):
    put(ssm, "/l/app")
    ssm.label_parameter_version(Name="/l/app", Labels=["prod", "blue"])

    answer = ssm.unlabel_parameter_version(
        Name="/l/app", ParameterVersion=1, Labels=["prod", "green"]
    )

    assert answer["RemovedLabels"] == ["prod"] and answer["InvalidLabels"] == ["green"]
    assert ssm.get_parameter_history(Name="/l/app")["Parameters"][0]["Labels"] == ["blue"]


def test_unlabelling_a_missing_version_is_parameter_version_not_found(ssm):
    put(ssm, "/l/app")
    with pytest.raises(ClientError) as raised:
        ssm.unlabel_parameter_version(Name="/l/app", ParameterVersion=3, Labels=["x"])
    assert error_of(raised)[0] == "ParameterVersionNotFound"


# --- PutParameter's errors ------------------------------------------------------------------


def test_putting_an_existing_parameter_without_overwrite_is_parameter_already_exists(ssm):
    put(ssm, "/e/a")
    with pytest.raises(ClientError) as raised:
        put(ssm, "/e/a")
    assert error_of(raised) == ("ParameterAlreadyExists", ALREADY_EXISTS)


def test_putting_tags_with_overwrite_is_a_validation_exception(ssm):
    put(ssm, "/e/a")
    with pytest.raises(ClientError) as raised:
        ssm.put_parameter(
            Name="/e/a", Value="b", Overwrite=True, Tags=[{"Key": "Env", "Value": "dev"}]
        )
    code, message = error_of(raised)
    assert code == "ValidationException"
    assert message.startswith("Invalid request: tags and overwrite can't be used together.")


# --- Tagging --------------------------------------------------------------------------------


def test_a_parameter_is_tagged_listed_and_untagged_by_its_name(ssm):
    put(ssm, "/t/a", Tags=[{"Key": "Env", "Value": "dev"}])

    ssm.add_tags_to_resource(
        ResourceType="Parameter", ResourceId="/t/a", Tags=[{"Key": "Team", "Value": "core"}]
    )
    listed = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/t/a")
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/t/a", TagKeys=["Env"])
    left = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/t/a")

    assert listed["TagList"] == [
        {"Key": "Env", "Value": "dev"},
        {"Key": "Team", "Value": "core"},
    ]
    assert left["TagList"] == [{"Key": "Team", "Value": "core"}]


def test_tagging_a_missing_parameter_is_invalid_resource_id(ssm):
    for call, extra in (
        (ssm.add_tags_to_resource, {"Tags": [{"Key": "a", "Value": "b"}]}),
        (ssm.list_tags_for_resource, {}),
        (ssm.remove_tags_from_resource, {"TagKeys": ["a"]}),
    ):
        with pytest.raises(ClientError) as raised:
            call(ResourceType="Parameter", ResourceId="/t/none", **extra)
        assert error_of(raised) == (
            "InvalidResourceId",
            "The resource ID /t/none isn't valid. Verify that you entered the correct ID and "
            "try again.",
        )


# --- Authorization --------------------------------------------------------------------------


def test_a_user_without_a_policy_is_denied_every_parameter_operation(ssm, client_for):
    put(ssm, "/secret/a")
    stranger = client_for(UserFactory(username="oscar"))

    calls = [
        ("GetParameters", lambda: stranger.get_parameters(Names=["/secret/a"])),
        ("GetParametersByPath", lambda: stranger.get_parameters_by_path(Path="/secret")),
        ("DescribeParameters", lambda: stranger.describe_parameters()),
        ("GetParameterHistory", lambda: stranger.get_parameter_history(Name="/secret/a")),
        ("DeleteParameter", lambda: stranger.delete_parameter(Name="/secret/a")),
        ("DeleteParameters", lambda: stranger.delete_parameters(Names=["/secret/a"])),
        (
            "LabelParameterVersion",
            lambda: stranger.label_parameter_version(Name="/secret/a", Labels=["x"]),
        ),
        (
            "ListTagsForResource",
            lambda: stranger.list_tags_for_resource(
                ResourceType="Parameter", ResourceId="/secret/a"
            ),
        ),
    ]
    for action, call in calls:
        with pytest.raises(ClientError) as raised:
            call()
        code, message = error_of(raised)
        assert code == "AccessDeniedException", action
        assert f"is not authorized to perform ssm:{action}" in message
    assert ssm.get_parameter(Name="/secret/a")["Parameter"]["Value"] == "v"


def test_a_path_read_returns_only_the_parameters_the_caller_may_read(ssm, client_for):
    for name in ("/shop/api/key", "/shop/db/password", "/shop/db/user"):
        put(ssm, name)
    reader = UserFactory(username="rita")
    policy = ManagedPolicy.objects.create(
        name="ShopDbReader",
        document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ssm:GetParametersByPath",
                        "Resource": "arn:aws:ssm:*:*:parameter/shop/db/*",
                    }
                ],
            }
        ),
    )
    policy.users.add(reader)

    answer = client_for(reader).get_parameters_by_path(Path="/shop", Recursive=True)

    assert names_of(answer["Parameters"]) == ["/shop/db/password", "/shop/db/user"]


# --- The aws CLI ----------------------------------------------------------------------------


def test_the_aws_cli_puts_and_reads_a_tree_recursively(aws_cli):
    for index in range(12):
        put_done = aws_cli(
            "ssm", "put-parameter", "--name", f"/x/n{index:02d}", "--value", "v", "--type", "String"
        )
        assert cli_json(put_done) == {"Version": 1, "Tier": "Standard"}
    aws_cli("ssm", "put-parameter", "--name", "/x/deep/er", "--value", "d", "--type", "String")

    # The CLI follows NextToken itself: 13 parameters take two pages of 10.
    tree = cli_json(aws_cli("ssm", "get-parameters-by-path", "--path", "/x", "--recursive"))

    names = [p["Name"] for p in tree["Parameters"]]
    assert names == ["/x/deep/er", *[f"/x/n{index:02d}" for index in range(12)]]
    # aws CLI v1 prints timestamps as they came: epoch seconds.
    assert isinstance(tree["Parameters"][0]["LastModifiedDate"], int | float)


def test_the_aws_cli_deletes_a_parameter_and_fails_with_255_on_a_missing_one(ssm, aws_cli):
    put(ssm, "/x/gone")

    assert cli_json(aws_cli("ssm", "delete-parameter", "--name", "/x/gone")) is None
    missing = aws_cli("ssm", "delete-parameter", "--name", "/x/gone")

    assert missing.returncode == 255
    assert (
        "An error occurred (ParameterNotFound) when calling the DeleteParameter operation: "
        "Parameter /x/gone not found." in missing.stderr
    )
