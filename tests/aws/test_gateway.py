"""The gateway between a signed request and an operation: the target, the JSON body, input
checked against botocore's model with AWS's texts, domain errors, authorization, the audit
trail, request ids and timestamps on the wire."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from botocore.model import StringShape
from django.test import RequestFactory

from access.aws_endpoint import aws_endpoint
from audit.models import AuditEvent
from bosun.lib.aws import model, registry
from tests.aws.signing import Answer, call, sign
from tests.factories import UserFactory


@pytest.fixture
def raw(live_server, admin, keys_for):
    """`raw(body, target="AmazonSSM.X")`: a properly signed request as the administrator."""
    key_id, secret = keys_for(admin)

    def send(body: bytes | str | dict = b"{}", target: str | None = "AmazonSSM.GetParameter"):
        data = json.dumps(body) if isinstance(body, dict) else body
        return call(live_server.url + "/", data, key_id=key_id, secret=secret, target=target)

    return send


@pytest.fixture
def loose(client_for, admin):
    """boto3 as the administrator, with its own input checks off: the server's answer."""
    return client_for(admin, parameter_validation=False)


def error_of(answer: Answer) -> tuple[str, str]:
    assert answer.status == 400, answer.raw
    body = answer.json
    assert body["message"] == body["Message"]
    return body["__type"], body["message"]


def error_code_and_message(error: ClientError) -> tuple[str, str]:
    return error.response["Error"]["Code"], error.response["Error"]["Message"]


def constraint(operation: str, member: str, key: str):
    return model.operation_model(operation).input_shape.members[member].metadata[key]


def an_unserved_operation() -> str:
    served = set(registry.served())
    return next(
        name
        for name in sorted(model.service_model().operation_names)
        if name not in served and name.startswith("Describe")
    )


# The target


def test_an_operation_bosun_does_not_serve_is_an_unknown_operation(raw):
    name = an_unserved_operation()
    code, message = error_of(raw({}, target=f"AmazonSSM.{name}"))
    assert code == "UnknownOperationException"
    assert message == f"The operation 'AmazonSSM.{name}' is not served by Bosun yet."


@pytest.mark.parametrize(
    "target",
    ["AmazonSSM.NoSuchThing", "AmazonS3.GetParameter", "GetParameter", "AmazonSSM.Get-Parameter"],
)
def test_a_target_that_names_no_ssm_operation_is_an_unknown_operation(raw, target):
    code, message = error_of(raw({}, target=target))
    assert code == "UnknownOperationException"
    assert repr(target) in message


def test_a_request_without_a_target_is_an_unknown_operation(raw):
    code, message = error_of(raw({}, target=None))
    assert code == "UnknownOperationException"
    assert "X-Amz-Target" in message


# The body


@pytest.mark.parametrize(
    "body", [b'{"Name": ', b"\xff\xfe", b'{"Name": NaN}', b"[1,2]", b'"text"', b"17"]
)
def test_a_body_that_is_not_a_json_object_is_a_serialization_error(raw, body):
    code, _ = error_of(raw(body))
    assert code == "SerializationException"


def test_an_empty_body_is_an_empty_object(raw):
    code, message = error_of(raw(b""))
    assert (code, message) == (
        "ValidationException",
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
        "Member must not be null",
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"Name": 5}, "Expected a string at 'name'."),
        ({"Name": "x", "WithDecryption": "yes"}, "Expected true or false at 'withDecryption'."),
        ({"Name": ["x"]}, "Expected a string at 'name'."),
    ],
)
def test_a_member_of_the_wrong_json_type_is_a_serialization_error(raw, body, expected):
    assert error_of(raw(body)) == ("SerializationException", expected)


@pytest.mark.parametrize(
    ("target", "body", "expected"),
    [
        (
            "AmazonSSM.LabelParameterVersion",
            {"Name": "p", "ParameterVersion": 2**63, "Labels": ["l"]},
            "Expected a 64-bit integer at 'parameterVersion'.",
        ),
        (
            "AmazonSSM.GetParametersByPath",
            {"Path": "/", "MaxResults": -(2**31) - 1},
            "Expected a 32-bit integer at 'maxResults'.",
        ),
        (
            "AmazonSSM.GetParametersByPath",
            {"Path": "/", "MaxResults": 2.5},
            "Expected an integer at 'maxResults'.",
        ),
    ],
)
def test_a_number_java_cannot_hold_is_a_serialization_error(raw, target, body, expected):
    assert error_of(raw(body, target=target)) == ("SerializationException", expected)


def test_a_number_too_large_for_a_double_is_a_serialization_error(raw):
    body = '{"Path": "/", "MaxResults": 1e400}'
    code, _ = error_of(raw(body, target="AmazonSSM.GetParametersByPath"))
    assert code == "SerializationException"


def test_a_wrongly_typed_nested_member_names_its_path(raw):
    body = {"Name": "x", "Value": "v", "Type": "String", "Tags": [{"Key": "k", "Value": 1}]}
    assert error_of(raw(body, target="AmazonSSM.PutParameter")) == (
        "SerializationException",
        "Expected a string at 'tags.1.member.value'.",
    )


def test_a_body_nested_too_deeply_is_a_serialization_error(raw):
    code, _ = error_of(raw(b'{"Name": ' + b"[" * 5000 + b"]" * 5000 + b"}"))
    assert code == "SerializationException"


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\udfff"])
def test_a_string_no_database_can_store_is_a_serialization_error(raw, escape):
    body = '{"Name": "x", "Value": "a' + escape + 'b", "Type": "String"}'
    code, _ = error_of(raw(body, target="AmazonSSM.PutParameter"))
    assert code == "SerializationException"


def test_a_surrogate_pair_is_an_ordinary_character(raw):
    body = '{"Name": "emoji", "Value": "\\ud83d\\ude00", "Type": "String"}'
    assert raw(body, target="AmazonSSM.PutParameter").status == 200
    assert raw({"Name": "emoji"}).json["Parameter"]["Value"] == "\U0001f600"


def test_unknown_members_are_ignored_as_aws_ignores_them(raw, ssm):
    ssm.put_parameter(Name="known", Value="v", Type="String")
    answer = raw({"Name": "known", "SomethingNew": {"deep": [1, 2]}})
    assert answer.status == 200, answer.raw


# ValidationException texts, character for character


def test_a_missing_required_member_is_null(loose):
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="x", Type="String")
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        "1 validation error detected: Value null at 'value' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_an_explicit_null_is_a_missing_member(raw):
    assert error_of(raw({"Name": None})) == (
        "ValidationException",
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_a_string_below_its_minimum_length(loose):
    low = constraint("GetParameter", "Name", "min")
    with pytest.raises(ClientError) as caught:
        loose.get_parameter(Name="")
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        "1 validation error detected: Value '' at 'name' failed to satisfy constraint: "
        f"Member must have length greater than or equal to {low}",
    )


def test_a_string_above_its_maximum_length(loose):
    high = constraint("PutParameter", "Description", "max")
    description = "d" * (high + 1)
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="x", Value="v", Type="String", Description=description)
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        f"1 validation error detected: Value '{description[:200]}…' at 'description' failed "
        f"to satisfy constraint: Member must have length less than or equal to {high}",
    )


def test_a_value_outside_its_enum(loose):
    enum = model.operation_model("PutParameter").input_shape.members["Type"].enum
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="x", Value="v", Type="Text")
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        "1 validation error detected: Value 'Text' at 'type' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(enum)}]",
    )
    assert enum == ["String", "StringList", "SecureString"]


def test_a_value_that_does_not_match_its_pattern(loose):
    pattern = constraint("PutParameter", "KeyId", "pattern")
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="x", Value="v", Type="SecureString", KeyId="my key")
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        "1 validation error detected: Value 'my key' at 'keyId' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {pattern}",
    )


def test_a_number_outside_its_range_is_quoted_as_aws_quotes_it(loose):
    high = constraint("GetParametersByPath", "MaxResults", "max")
    low = constraint("GetParametersByPath", "MaxResults", "min")
    with pytest.raises(ClientError) as caught:
        loose.get_parameters_by_path(Path="/", MaxResults=high + 1)
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        f"1 validation error detected: Value '{high + 1}' at 'maxResults' failed to satisfy "
        f"constraint: Member must have value less than or equal to {high}",
    )
    with pytest.raises(ClientError) as caught:
        loose.get_parameters_by_path(Path="/", MaxResults=low - 1)
    assert error_code_and_message(caught.value)[1].endswith(
        f"Value '{low - 1}' at 'maxResults' failed to satisfy constraint: "
        f"Member must have value greater than or equal to {low}"
    )


def test_a_list_longer_than_its_maximum_shows_its_items(loose):
    high = model.operation_model("GetParameters").input_shape.members["Names"].metadata["max"]
    names = [f"n{index}" for index in range(high + 1)]
    with pytest.raises(ClientError) as caught:
        loose.get_parameters(Names=names)
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        f"1 validation error detected: Value '[{', '.join(names)}]' at 'names' failed to "
        f"satisfy constraint: Member must have length less than or equal to {high}",
    )


def test_a_nested_member_is_named_by_its_path(loose):
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="x", Value="v", Type="String", Tags=[{"Key": "k"}])
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        "1 validation error detected: Value null at 'tags.1.member.value' failed to satisfy "
        "constraint: Member must not be null",
    )


def test_a_tag_key_outside_the_unicode_classes_fails_its_pattern(loose):
    pattern = model.service_model().shape_for("TagKey").metadata["pattern"]
    assert "\\p{L}" in pattern
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="x", Value="v", Type="String", Tags=[{"Key": "a#b", "Value": "v"}])
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        "1 validation error detected: Value 'a#b' at 'tags.1.member.key' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {pattern}",
    )


def test_a_tag_key_in_any_script_passes_its_pattern(loose):
    put = loose.put_parameter(
        Name="tagged", Value="v", Type="String", Tags=[{"Key": "Größe 日本", "Value": "ça va"}]
    )
    assert put["Version"] == 1


def test_a_map_key_is_checked_against_every_constraint_of_its_shape(raw):
    key = model.service_model().shape_for("SessionManagerParameterName").metadata
    body = {"Target": "i-0123456789abcdef0", "Parameters": {"": ["x", "y"]}}
    assert error_of(raw(body, target="AmazonSSM.StartSession")) == (
        "ValidationException",
        "1 validation error detected: Value '{=[x, y]}' at 'parameters' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must have length less than or "
        f"equal to {key['max']}, Member must have length greater than or equal to {key['min']}]",
    )


def test_several_violations_are_counted_and_joined(loose):
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="", Value="v", Type="Text")
    assert error_code_and_message(caught.value) == (
        "ValidationException",
        "2 validation errors detected: Value '' at 'name' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; Value 'Text' at 'type' failed to "
        "satisfy constraint: Member must satisfy enum value set: "
        "[String, StringList, SecureString]",
    )


def test_a_sensitive_member_is_never_echoed(loose):
    secret = "TOPSECRET-" + "x" * 9000
    with pytest.raises(ClientError) as caught:
        loose.put_parameter(Name="big", Value=secret, Type="SecureString")
    code, message = error_code_and_message(caught.value)
    assert code == "ValidationException"
    assert "TOPSECRET" not in message


def test_the_model_names_a_sensitive_member_without_its_value():
    assert (
        model.operation_model("PutParameter").input_shape.members["Value"].metadata.get("sensitive")
    )
    secret = StringShape("Secret", {"type": "string", "max": 3, "sensitive": True})
    problems: list[str] = []
    model._check(secret, "hunter2", "value", problems)
    assert problems == [
        "Value at 'value' failed to satisfy constraint: Member must have length less than or "
        "equal to 3"
    ]


def test_a_list_that_holds_sensitive_members_is_never_echoed():
    entries = model.service_model().shape_for("CreateAssociationBatchRequestEntries")
    problems: list[str] = []
    model._check(entries, [], "entries", problems)
    assert problems == [
        "Value at 'entries' failed to satisfy constraint: Member must have length greater than "
        f"or equal to {entries.metadata['min']}"
    ]


# Domain errors, authorization, audit, the wire


def test_a_domain_error_is_rendered_with_its_aws_code(raw):
    answer = raw({"Name": "/nowhere"})
    assert answer.status == 400
    assert answer.json == {
        "__type": "ParameterNotFound",
        "message": "Parameter /nowhere not found.",
        "Message": "Parameter /nowhere not found.",
    }


def test_boto3_raises_the_domain_error_as_its_modelled_exception(ssm):
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/nowhere")


def test_a_user_without_policies_is_denied_with_http_400_and_the_denial_is_audited(client_for, ssm):
    ssm.put_parameter(Name="/team/db", Value="v", Type="String")
    nobody = client_for(UserFactory(username="nobody"))
    with pytest.raises(ClientError) as caught:
        nobody.get_parameter(Name="/team/db")
    error = caught.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "nobody" in error["Error"]["Message"]
    request_id = error["ResponseMetadata"]["RequestId"]
    denial = AuditEvent.objects.get(request_id=request_id)
    assert (denial.outcome, denial.face, denial.error_code) == (
        "denied",
        "aws",
        "AccessDeniedException",
    )


def test_a_successful_call_is_audited_with_the_aws_face_and_its_request_id(ssm):
    put = ssm.put_parameter(Name="/audited", Value="v", Type="String")
    request_id = put["ResponseMetadata"]["RequestId"]
    event = AuditEvent.objects.get(request_id=request_id, action="ssm:PutParameter")
    assert (event.outcome, event.face) == ("success", "aws")
    assert "access-key:" in event.principal


def test_boto3_sees_the_request_id_header_as_its_request_id(ssm):
    put = ssm.put_parameter(Name="/rid", Value="v", Type="String")
    metadata = put["ResponseMetadata"]
    assert metadata["RequestId"] == metadata["HTTPHeaders"]["x-amzn-requestid"]
    assert metadata["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"
    assert "date" in metadata["HTTPHeaders"]


def test_every_answer_has_its_own_request_id(ssm):
    ids = {ssm.get_parameters(Names=["a"])["ResponseMetadata"]["RequestId"] for _ in range(3)}
    assert len(ids) == 3


def test_timestamps_are_json_numbers(raw, ssm):
    ssm.put_parameter(Name="/when", Value="v", Type="String")
    body = raw({"Name": "/when"}).json
    stamp = body["Parameter"]["LastModifiedDate"]
    assert isinstance(stamp, int | float) and not isinstance(stamp, bool)
    got = ssm.get_parameter(Name="/when")["Parameter"]["LastModifiedDate"]
    assert abs(got.timestamp() - stamp) < 0.001


def test_a_get_parameter_costs_the_key_lookup_and_the_read_only(
    admin, keys_for, ssm, django_assert_max_num_queries
):
    ssm.put_parameter(Name="/fast", Value="v", Type="String")
    key_id, secret = keys_for(admin)
    body = json.dumps({"Name": "/fast"})
    factory = RequestFactory()

    def get() -> int:
        headers = sign("http://testserver/", body, key_id=key_id, secret=secret)
        meta = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in headers.items()
            if name.lower() != "content-type"
        }
        request = factory.post("/", data=body, content_type=headers["Content-Type"], **meta)
        return aws_endpoint(request).status_code

    assert get() == 200  # records the key's first use
    # The key with its user, then the parameter's current version: nothing else per request.
    with django_assert_max_num_queries(2):
        assert get() == 200


def test_the_aws_cli_reports_a_domain_error_by_its_code(aws_cli):
    done = aws_cli("ssm", "get-parameter", "--name", "/nowhere")
    assert done.returncode == 255, done.stderr
    assert "(ParameterNotFound) when calling the GetParameter operation" in done.stderr
    assert "Parameter /nowhere not found." in done.stderr


def test_the_aws_cli_reports_a_validation_error_with_the_aws_text(aws_cli):
    done = aws_cli("ssm", "get-parameters-by-path", "--path", "/", "--max-results", "11")
    # The CLI's own check knows only the minimum: the maximum is the server's to refuse.
    assert done.returncode == 255, done.stderr
    assert (
        "Value '11' at 'maxResults' failed to satisfy constraint: Member must have value less "
        "than or equal to 10" in done.stderr
    )
