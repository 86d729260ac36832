"""Condition operators against the request context, by IAM's rules."""

import pytest

from .helpers import PARAMETER, decide, policy, statement


def holds(condition: dict, context: dict | None = None) -> bool:
    """Whether an Allow statement carrying only this condition allows the request."""
    return decide(policy(statement(condition=condition)), context=context).allowed


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"aws:username": "alice"}, True),
        ({"aws:username": "bob"}, True),
        ({"aws:username": "Alice"}, False),
        ({"aws:username": "carol"}, False),
        ({}, False),
    ],
)
def test_string_equals_is_case_sensitive_ors_its_values_and_fails_on_a_missing_key(
    context, expected
):
    assert holds({"StringEquals": {"aws:username": ["alice", "bob"]}}, context) is expected


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"aws:username": "alice"}, False),
        ({"aws:username": "bob"}, False),
        ({"aws:username": "carol"}, True),
        ({}, True),
    ],
)
def test_string_not_equals_nors_its_values_and_holds_on_a_missing_key(context, expected):
    assert holds({"StringNotEquals": {"aws:username": ["alice", "bob"]}}, context) is expected


def test_string_equals_ignore_case_and_its_negation():
    assert holds({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"})
    assert not holds({"StringEqualsIgnoreCase": {"aws:username": "bob"}}, {"aws:username": "al"})
    assert not holds(
        {"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}, {"aws:username": "alice"}
    )
    assert holds({"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}, {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("prod", True), ("production", True), ("pro", False), ("Prod", False), ("dev-1", True)],
)
def test_string_like_takes_wildcards_and_is_case_sensitive(value, expected):
    condition = {"StringLike": {"ssm:resourceTag/Env": ["prod*", "dev-?"]}}
    assert holds(condition, {"ssm:resourceTag/Env": value}) is expected


def test_string_not_like_excludes_matches_and_holds_on_a_missing_key():
    condition = {"StringNotLike": {"ssm:resourceTag/Env": "prod*"}}
    assert not holds(condition, {"ssm:resourceTag/Env": "production"})
    assert holds(condition, {"ssm:resourceTag/Env": "dev"})
    assert holds(condition, {})


@pytest.mark.parametrize(
    ("present", "expected"),
    [(True, True), ("true", True), ("TRUE", True), (False, False), ("false", False)],
)
def test_bool_compares_booleans_and_their_text(present, expected):
    condition = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert holds(condition, {"aws:MultiFactorAuthPresent": present}) is expected


def test_bool_takes_a_json_boolean_and_fails_on_a_missing_key():
    assert holds(
        {"Bool": {"aws:MultiFactorAuthPresent": True}}, {"aws:multifactorauthpresent": True}
    )
    assert not holds({"Bool": {"aws:MultiFactorAuthPresent": False}}, {})


def test_bool_if_exists_denies_unless_mfa_is_known_to_be_present():
    # AWS's pattern: IfExists makes a missing key (long-term credentials) deny as well.
    admin = policy(statement("Allow"))
    deny = policy(
        statement("Deny", condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}})
    )
    assert decide(admin, deny, context={"aws:MultiFactorAuthPresent": False}).reason == (
        "explicit_deny"
    )
    assert decide(admin, deny, context={"aws:MultiFactorAuthPresent": True}).allowed
    assert decide(admin, deny, context={}).reason == "explicit_deny"  # the key missing: IfExists


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.7", True),
        ("203.0.114.1", False),
        ("198.51.100.5", True),
        ("198.51.100.6", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("not-an-address", False),
    ],
)
def test_ip_address_matches_cidr_blocks_and_single_addresses(address, expected):
    condition = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "198.51.100.5", "2001:db8::/32"]}}
    assert holds(condition, {"aws:SourceIp": address}) is expected


def test_not_ip_address_excludes_the_blocks_and_holds_on_a_missing_key():
    condition = {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert not holds(condition, {"aws:SourceIp": "10.1.2.3"})
    assert holds(condition, {"aws:SourceIp": "192.0.2.1"})
    assert holds(condition, {})
    assert not holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {})


def test_if_exists_passes_a_missing_key_and_still_tests_a_present_one():
    condition = {"StringEqualsIfExists": {"ssm:resourceTag/Team": "ops"}}
    assert holds(condition, {})
    assert holds(condition, {"ssm:resourceTag/Team": "ops"})
    assert not holds(condition, {"ssm:resourceTag/Team": "dev"})


def test_null_tests_whether_a_key_is_present():
    assert holds({"Null": {"ssm:resourceTag/Team": "true"}}, {})
    assert not holds({"Null": {"ssm:resourceTag/Team": "true"}}, {"ssm:resourceTag/Team": "x"})
    assert holds({"Null": {"ssm:resourceTag/Team": "false"}}, {"ssm:resourceTag/Team": "x"})


def test_several_keys_under_one_operator_must_all_hold():
    condition = {"StringEquals": {"aws:username": "alice", "ssm:resourceTag/Team": "ops"}}
    assert holds(condition, {"aws:username": "alice", "ssm:resourceTag/Team": "ops"})
    assert not holds(condition, {"aws:username": "alice", "ssm:resourceTag/Team": "dev"})
    assert not holds(condition, {"aws:username": "alice"})


def test_several_operators_must_all_hold():
    condition = {
        "StringEquals": {"aws:username": "alice"},
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
    }
    good = {"aws:username": "alice", "aws:SourceIp": "10.0.0.1", "aws:MultiFactorAuthPresent": True}
    assert holds(condition, good)
    assert not holds(condition, {**good, "aws:SourceIp": "192.0.2.1"})
    assert not holds(condition, {**good, "aws:MultiFactorAuthPresent": False})


def test_condition_keys_ignore_case_on_both_sides():
    assert holds({"StringEquals": {"AWS:UserName": "alice"}}, {"aws:USERNAME": "alice"})


def test_a_multi_valued_key_without_a_qualifier_matches_when_any_value_does():
    condition = {"StringEquals": {"aws:TagKeys": "Team"}}
    assert holds(condition, {"aws:TagKeys": ["Env", "Team"]})
    assert not holds({"StringNotEquals": {"aws:TagKeys": "Team"}}, {"aws:TagKeys": ["Env", "Team"]})


@pytest.mark.parametrize(
    ("keys", "any_value", "all_values"),
    [
        (["Env", "Team"], True, True),
        (["Env", "Owner"], True, False),
        (["Owner"], False, False),
        ([], False, True),
        (None, False, True),
    ],
)
def test_set_qualifiers_compare_every_request_value(keys, any_value, all_values):
    context = {} if keys is None else {"aws:TagKeys": keys}
    allowed = {"aws:TagKeys": ["Env", "Team"]}
    assert holds({"ForAnyValue:StringEquals": allowed}, context) is any_value
    assert holds({"ForAllValues:StringEquals": allowed}, context) is all_values


def test_for_all_values_with_a_negated_operator_holds_when_no_value_matches():
    condition = {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}
    assert holds(condition, {"aws:TagKeys": ["key2:audit"]})
    assert not holds(condition, {"aws:TagKeys": ["key1:legal", "key2:x"]})
    assert holds(condition, {})
    assert not holds({"ForAnyValue:StringNotLike": {"aws:TagKeys": "key1*"}}, {})


def test_a_qualified_if_exists_operator_passes_a_missing_key():
    assert holds({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "Env"}}, {})


def test_numbers_in_a_condition_compare_as_their_text():
    assert holds({"StringEquals": {"bosun:Port": 22}}, {"bosun:Port": "22"})


def test_a_failed_condition_on_a_deny_leaves_the_allow_standing():
    admin = policy(statement("Allow"))
    deny = policy(statement("Deny", condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    assert decide(admin, deny, context={"aws:SourceIp": "10.9.9.9"}).allowed
    assert not decide(admin, deny, context={"aws:SourceIp": "192.0.2.9"}).allowed


HOME = "arn:aws:ssm:*:*:parameter/home/${aws:username}/*"


def test_a_policy_variable_in_a_resource_takes_the_requesters_name():
    own = policy(statement("Allow", "ssm:GetParameter", HOME))
    mine = f"{PARAMETER}/home/alice/token"
    assert decide(own, resource=mine, context={"aws:username": "alice"}).allowed
    assert not decide(own, resource=mine, context={"aws:username": "bob"}).allowed


def test_an_unresolved_variable_matches_no_resource():
    own = policy(statement("Allow", "ssm:GetParameter", HOME))
    assert not decide(own, resource=f"{PARAMETER}/home//token", context={}).allowed


def test_a_variable_may_carry_a_default():
    shared = policy(
        statement(
            "Allow", "ssm:GetParameter", "arn:aws:ssm:*:*:parameter/${aws:username, 'shared'}"
        )
    )
    assert decide(shared, resource=f"{PARAMETER}/shared", context={}).allowed
    assert decide(shared, resource=f"{PARAMETER}/bob", context={"aws:username": "bob"}).allowed


def test_substituted_text_is_literal_never_a_wildcard():
    own = policy(statement("Allow", "ssm:GetParameter", HOME))
    context = {"aws:username": "*"}
    assert not decide(own, resource=f"{PARAMETER}/home/alice/x", context=context).allowed


def test_the_literal_variables_stand_for_the_wildcard_characters_themselves():
    star = policy(statement("Allow", "ssm:GetParameter", "arn:aws:ssm:*:*:parameter/a${*}b"))
    assert decide(star, resource=f"{PARAMETER}/a*b").allowed
    assert not decide(star, resource=f"{PARAMETER}/axb").allowed


def test_a_variable_in_a_condition_value_compares_request_keys_with_each_other():
    owner = {"StringEquals": {"ssm:resourceTag/Owner": "${aws:username}"}}
    assert holds(owner, {"aws:username": "alice", "ssm:resourceTag/Owner": "alice"})
    assert not holds(owner, {"aws:username": "bob", "ssm:resourceTag/Owner": "alice"})
    assert not holds(owner, {"ssm:resourceTag/Owner": "alice"})
    like = {"StringLike": {"ssm:resourceTag/Owner": ["${aws:username}-*", "root"]}}
    assert holds(like, {"aws:username": "al", "ssm:resourceTag/Owner": "al-team"})
    assert holds(like, {"ssm:resourceTag/Owner": "root"})
    assert not holds(like, {"aws:username": "al", "ssm:resourceTag/Owner": "bob-team"})


def test_version_2008_policies_have_no_variables():
    old = policy(statement("Allow", "ssm:GetParameter", HOME), version="2008-10-17")
    literal = f"{PARAMETER}/home/${{aws:username}}/x"
    assert decide(old, resource=literal, context={"aws:username": "alice"}).allowed
    assert not decide(
        old, resource=f"{PARAMETER}/home/alice/x", context={"aws:username": "alice"}
    ).allowed


def test_tag_keys_in_condition_keys_may_hold_spaces():
    condition = {"StringEquals": {"ssm:resourceTag/Cost Centre": "ops"}}
    assert holds(condition, {"ssm:resourceTag/cost centre": "ops"})
