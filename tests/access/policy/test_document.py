"""Malformed policies are refused, naming the statement and the element at fault."""

import json

import pytest

from access.policy import Policy, PolicyError, parse_policy
from access.policy.document import MAX_CHARACTERS

GOOD = {
    "Sid": "ReadProd",
    "Effect": "Allow",
    "Action": ["ssm:GetParameter"],
    "Resource": "arn:aws:ssm:*:*:parameter/app/prod/*",
}


def with_second_statement(**changes):
    """A document whose statement 1 is GOOD with changes (None removes an element)."""
    second = {**GOOD, **changes}
    second = {key: value for key, value in second.items() if value is not None}
    first = {"Effect": "Allow", "Action": "bosun:ViewDashboard", "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [first, second]}


def refusal(document) -> PolicyError:
    with pytest.raises(PolicyError) as refused:
        parse_policy(document)
    return refused.value


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"Effect": None}, "Effect", 'must be "Allow" or "Deny", not missing'),
        ({"Effect": "allow"}, "Effect", 'must be "Allow" or "Deny", not "allow"'),
        ({"NotAction": "ssm:PutParameter"}, "NotAction", "give Action or NotAction, not both"),
        ({"Action": None}, "Action", "missing (give Action or NotAction)"),
        ({"Action": []}, "Action", "must not be an empty list"),
        ({"Action": [7]}, "Action", "must be a string or a list of strings, not a number"),
        ({"Action": "ssm:GetParamter"}, "Action", 'unknown action "ssm:GetParamter"'),
        ({"Action": "ec2:RunInstances"}, "Action", 'unknown service prefix "ec2"'),
        ({"Action": None, "NotAction": "ssm:Gte*"}, "NotAction", "matches no known action"),
        ({"Resource": None}, "Resource", "missing (give Resource or NotResource)"),
        ({"NotResource": "*"}, "NotResource", "give Resource or NotResource, not both"),
        ({"Resource": ""}, "Resource", "must not hold an empty string"),
        ({"Resource": "parameter/app/*"}, "Resource", "is not an ARN"),
        ({"Resource": "arn:aws:ssm:*:*"}, "Resource", "is not an ARN"),
        ({"Resource": "arn:aws:s3:::bucket/*"}, "Resource", 'unknown service "s3"'),
        ({"Resource": "arn:aws-cn:ssm:*:*:parameter/x"}, "Resource", "partition"),
        ({"Resource": "arn:aws:ssm:EU:*:parameter/x"}, "Resource", '"EU" is not a region'),
        ({"Resource": "arn:aws:ssm:*:acct:parameter/x"}, "Resource", "not an account id"),
        ({"Resource": "arn:aws:ssm:*:*:parameter/a b"}, "Resource", "no whitespace"),
        (
            {"Resource": "arn:aws:ssm:*:*:parameter/${aws:username"},
            "Resource",
            "not closed",
        ),
        ({"Resource": "arn:aws:ssm:*:*:parameter/${ }"}, "Resource", "not a policy variable"),
        ({"Principal": {"AWS": "*"}}, "Principal", "not allowed"),
        ({"effect": "Allow"}, "effect", 'did you mean "Effect"?'),
        ({"Colour": "blue"}, "Colour", "unknown element"),
        ({"Condition": "yes"}, "Condition", "must be an object of operators, not a string"),
        (
            {"Condition": {"StringEqualz": {"aws:username": "a"}}},
            "Condition",
            'unknown condition operator "StringEqualz"',
        ),
        (
            {"Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.300"}}},
            "Condition",
            '"10.0.0.300" is not an IP address or CIDR block',
        ),
        (
            {"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "yes"}}},
            "Condition",
            'takes "true" or "false", not "yes"',
        ),
        (
            {"Condition": {"StringEquals": {"username": "a"}}},
            "Condition",
            '"username" is not a condition key',
        ),
        ({"Condition": {"StringEquals": {}}}, "Condition", "must map condition keys to values"),
        (
            {"Condition": {"StringEquals": {"aws:username": []}}},
            "Condition",
            '"aws:username" has no values',
        ),
        (
            {"Condition": {"StringEquals": {"aws:username": {"a": 1}}}},
            "Condition",
            "values must be strings, not an object",
        ),
        (
            {"Condition": {"ForAnyValue:Null": {"aws:username": "true"}}},
            "Condition",
            "Null takes neither a set qualifier nor IfExists",
        ),
        (
            {"Condition": {"StringEquals": {"aws:username": "a", "AWS:UserName": "b"}}},
            "Condition",
            "appears twice",
        ),
    ],
)
def test_a_malformed_statement_is_refused_naming_statement_sid_and_field(changes, field, message):
    error = refusal(with_second_statement(**changes))
    assert (error.statement, error.sid, error.field) == (1, "ReadProd", field)
    assert str(error).startswith(f'Statement 1 (Sid "ReadProd"): {field}: ')
    assert message in str(error)


def test_the_message_reads_as_the_issue_shows():
    error = refusal(with_second_statement(Action="ssm:GetParamter"))
    assert str(error) == 'Statement 1 (Sid "ReadProd"): Action: unknown action "ssm:GetParamter"'


def test_a_statement_without_a_sid_is_named_by_its_index_alone():
    error = refusal(with_second_statement(Sid=None, Effect="Maybe"))
    assert str(error) == 'Statement 1: Effect: must be "Allow" or "Deny", not "Maybe"'


def test_a_sid_must_be_letters_and_digits():
    error = refusal(with_second_statement(Sid="read-prod"))
    assert (error.statement, error.field) == (1, "Sid")


def test_two_statements_may_not_share_a_sid():
    document = {"Version": "2012-10-17", "Statement": [GOOD, GOOD]}
    error = refusal(document)
    assert str(error) == 'Statement 1 (Sid "ReadProd"): Sid: the same Sid as statement 0'


def test_a_statement_that_is_not_an_object_is_named_by_its_index():
    error = refusal({"Version": "2012-10-17", "Statement": [GOOD, "Allow everything"]})
    assert str(error) == "Statement 1: must be an object, not a string"


def test_a_lone_statement_object_is_statement_zero():
    policy = parse_policy({"Version": "2012-10-17", "Statement": GOOD})
    assert [s.index for s in policy.statements] == [0]
    assert refusal({"Version": "2012-10-17", "Statement": {**GOOD, "Effect": 1}}).statement == 0


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        ({"Statement": [GOOD]}, "Version", "not missing"),
        ({"Version": "2012-10-18", "Statement": [GOOD]}, "Version", 'not "2012-10-18"'),
        ({"Version": "2012-10-17"}, "Statement", "missing"),
        ({"Version": "2012-10-17", "Statement": []}, "Statement", "at least one statement"),
        ({"Version": "2012-10-17", "Statement": "x"}, "Statement", "not a string"),
        ({"Version": "2012-10-17", "Statement": [GOOD], "Extra": 1}, "Extra", "unknown element"),
        ({"Version": "2012-10-17", "Statement": [GOOD], "Id": 5}, "Id", "must be a string"),
    ],
)
def test_a_malformed_document_names_the_top_level_element(document, field, message):
    error = refusal(document)
    assert (error.statement, error.field) == (None, field)
    assert str(error).startswith(f"{field}: ")
    assert message in str(error)


def test_text_that_is_not_json_is_refused_with_its_position():
    error = refusal('{"Version": "2012-10-17",\n "Statement": [}')
    assert "not valid JSON" in str(error)
    assert "line 2" in str(error)


def test_json_that_is_not_an_object_is_refused():
    assert "must be a JSON object, not a list" in str(refusal("[]"))


def test_an_element_given_twice_in_json_text_is_refused():
    text = (
        '{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Effect": "Allow",'
        ' "Action": "*", "Resource": "*"}}'
    )
    assert '"Effect" appears twice' in str(refusal(text))


def test_deeply_nested_json_is_refused_without_a_crash():
    assert "not valid JSON" in str(refusal("[" * 60_000))


def test_more_than_100_statements_are_refused():
    many = [{"Effect": "Allow", "Action": "*", "Resource": "*"}] * 101
    error = refusal({"Version": "2012-10-17", "Statement": many})
    assert str(error) == "Statement: 101 statements; the limit is 100"
    assert error.code == "LimitExceeded"


def _document_of_size(characters: int) -> dict:
    """A valid document whose compact JSON is exactly `characters` long."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "x"}],
    }
    base = len(json.dumps(document, separators=(",", ":")))
    path = "p" * (characters - base - len("arn:aws:ssm:::parameter/") + 1)
    document["Statement"][0]["Resource"] = f"arn:aws:ssm:::parameter/{path}"
    assert len(json.dumps(document, separators=(",", ":"))) == characters
    return document


def test_a_policy_at_the_size_limit_is_accepted_and_one_character_more_refused():
    parse_policy(_document_of_size(MAX_CHARACTERS))
    error = refusal(_document_of_size(MAX_CHARACTERS + 1))
    assert "6,145 characters long" in str(error)
    assert "the limit is 6,144" in str(error)
    assert error.code == "LimitExceeded"


def test_whitespace_does_not_count_towards_the_size_limit():
    indented = json.dumps(_document_of_size(MAX_CHARACTERS), indent=8)
    assert len(indented) > MAX_CHARACTERS
    parse_policy(indented)


def test_huge_text_is_refused_before_it_is_parsed():
    assert "over 65,536 characters" in str(refusal(" " * 70_000 + "{}"))


def test_both_versions_are_accepted():
    for version in ("2012-10-17", "2008-10-17"):
        assert parse_policy({"Version": version, "Statement": GOOD}).version == version


def test_a_parsed_policy_keeps_its_document_and_cannot_be_changed():
    document = {"Version": "2012-10-17", "Id": "Readers", "Statement": [GOOD]}
    policy = parse_policy(json.dumps(document))
    assert isinstance(policy, Policy)
    assert policy.document == document
    assert policy.id == "Readers"
    with pytest.raises(AttributeError):
        policy.version = "2008-10-17"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        policy.statements[0].effect = "Deny"  # type: ignore[misc]


def test_a_parsed_policy_does_not_follow_later_changes_to_its_input():
    document = {"Version": "2012-10-17", "Statement": [dict(GOOD)]}
    policy = parse_policy(document)
    document["Statement"][0]["Effect"] = "Deny"
    assert policy.statements[0].effect == "Allow"
    assert policy.document["Statement"][0]["Effect"] == "Allow"


def test_policy_errors_are_value_errors_carrying_their_location():
    error = refusal(with_second_statement(Action="ssm:Nope"))
    assert isinstance(error, ValueError)
    assert error.message == 'unknown action "ssm:Nope"'
    assert error.code == "MalformedPolicyDocument"


def test_a_mapping_is_checked_as_its_json_would_read():
    statement = {"Effect": "Allow", "Action": ("ssm:GetParameter",), "Resource": "*"}
    assert parse_policy({"Version": "2012-10-17", "Statement": (statement,)}).statements
    assert "not JSON data" in str(refusal({"Version": "2012-10-17", "Statement": {1, 2}}))
