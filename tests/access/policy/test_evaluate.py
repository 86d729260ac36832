"""The evaluation table: explicit deny wins, then any allow, else an implicit deny."""

import pytest

from access.policy import Decision, evaluate

from .helpers import INSTANCE, PARAMETER, decide, policy, statement

PROD_DB = f"{PARAMETER}/app/prod/db"


def test_no_policies_at_all_is_an_implicit_deny():
    assert decide() == Decision(False, "implicit_deny")


def test_a_matching_allow_names_its_policy_statement_and_sid():
    readers = policy(
        statement("Allow", "kms:Decrypt", sid="Keys"),
        statement("Allow", "ssm:GetParameter", f"{PARAMETER}/app/*", sid="Params"),
    )
    assert decide(("readers", readers)) == Decision(True, "allowed", "readers", 1, "Params")


def test_an_allow_for_another_action_leaves_an_implicit_deny():
    assert decide(policy(statement("Allow", "ssm:PutParameter"))).reason == "implicit_deny"


def test_a_deny_in_a_later_policy_beats_an_allow_in_an_earlier_one():
    admin = policy(statement("Allow", "*", "*"))
    fence = policy(statement("Deny", "ssm:*", f"{PARAMETER}/app/prod/*", sid="NoProd"))
    decision = decide(("admin", admin), ("fence", fence))
    assert decision == Decision(False, "explicit_deny", "fence", 0, "NoProd")


def test_the_first_matching_deny_is_the_one_reported():
    first = policy(statement("Allow", "*"), statement("Deny", "ssm:Get*", sid="First"))
    second = policy(statement("Deny", "ssm:GetParameter", sid="Second"))
    assert decide(("a", first), ("b", second)).sid == "First"


def test_the_first_matching_allow_is_the_one_reported():
    one = policy(statement("Allow", "kms:*"), statement("Allow", "ssm:Get*", sid="One"))
    two = policy(statement("Allow", "*", sid="Two"))
    assert decide(("one", one), ("two", two)) == Decision(True, "allowed", "one", 1, "One")


def test_a_deny_on_other_resources_does_not_block_an_allow():
    allow = policy(statement("Allow", "ssm:GetParameter", f"{PARAMETER}/*"))
    deny = policy(statement("Deny", "ssm:GetParameter", f"{PARAMETER}/other/*"))
    assert decide(allow, deny).allowed


def test_not_action_allows_everything_but_the_actions_it_names():
    all_but_deletes = policy(statement("Allow", not_action=["ssm:Delete*", "kms:*"]))
    assert decide(all_but_deletes, action="ssm:GetParameter").allowed
    assert decide(all_but_deletes, action="bosun:ViewDashboard").allowed
    assert not decide(all_but_deletes, action="ssm:DeleteParameters").allowed
    assert not decide(all_but_deletes, action="kms:Decrypt").allowed


def test_a_deny_with_not_action_refuses_everything_but_the_named_actions():
    admin = policy(statement("Allow", "*"))
    only_mfa = policy(statement("Deny", not_action=["bosun:ManageOwnMfa", "bosun:ViewDashboard"]))
    assert decide(admin, only_mfa, action="bosun:ManageOwnMfa").allowed
    assert decide(admin, only_mfa, action="ssm:GetParameter").reason == "explicit_deny"


def test_not_resource_allows_every_resource_but_the_ones_it_names():
    not_prod = policy(
        statement("Allow", "ssm:GetParameter", not_resource=f"{PARAMETER}/app/prod/*")
    )
    assert decide(not_prod, resource=f"{PARAMETER}/app/dev/db").allowed
    assert not decide(not_prod, resource=PROD_DB).allowed


def test_a_deny_with_not_resource_fences_in_a_path():
    admin = policy(statement("Allow", "*"))
    only_dev = policy(statement("Deny", "ssm:*", not_resource=f"{PARAMETER}/app/dev/*"))
    assert decide(admin, only_dev, resource=f"{PARAMETER}/app/dev/x").allowed
    assert not decide(admin, only_dev, resource=PROD_DB).allowed


def test_not_resource_star_matches_no_resource():
    assert not decide(policy(statement("Allow", "*", not_resource="*"))).allowed


@pytest.mark.parametrize(
    ("action_pattern", "action", "allowed"),
    [
        ("*", "ssm:DeleteParameter", True),
        ("ssm:*", "ssm:StartSession", True),
        ("ssm:Get*", "ssm:GetParametersByPath", True),
        ("ssm:Get*", "ssm:DescribeParameters", False),
        ("ssm:GetParameter?", "ssm:GetParameters", True),
        ("ssm:GetParameter?", "ssm:GetParameter", False),
        ("ssm:*Session", "ssm:TerminateSession", True),
        ("ssm:*Session", "ssm:DescribeSessions", False),
    ],
)
def test_action_wildcards_star_and_question_mark(action_pattern, action, allowed):
    assert decide(policy(statement("Allow", action_pattern)), action=action).allowed is allowed


@pytest.mark.parametrize(
    ("resource_pattern", "resource", "allowed"),
    [
        (f"{PARAMETER}/app/*", f"{PARAMETER}/app/prod/db", True),
        (f"{PARAMETER}/app/*", f"{PARAMETER}/apps/prod", False),
        (f"{PARAMETER}/app-?", f"{PARAMETER}/app-1", True),
        (f"{PARAMETER}/app-?", f"{PARAMETER}/app-10", False),
        ("arn:aws:ssm:*:*:parameter/app/*/db", f"{PARAMETER}/app/prod/db", True),
        ("arn:aws:ssm:*:*:parameter/app/*/db", f"{PARAMETER}/app/prod/db2", False),
        (f"{INSTANCE}/mi-*", f"{INSTANCE}/mi-0123456789abcdef0", True),
        (f"{PARAMETER}/app/prod/db", f"{PARAMETER}/app/prod/db", True),
    ],
)
def test_resource_wildcards_star_and_question_mark(resource_pattern, resource, allowed):
    grant = policy(statement("Allow", "ssm:GetParameter", resource_pattern))
    assert decide(grant, resource=resource).allowed is allowed


def test_action_names_ignore_case_in_the_policy_and_in_the_request():
    grant = policy(statement("Allow", "SSM:getparameter"))
    assert decide(grant, action="ssm:GETPARAMETER").allowed


def test_resources_are_case_sensitive_as_in_iam():
    grant = policy(statement("Allow", "ssm:GetParameter", f"{PARAMETER}/App/*"))
    assert decide(grant, resource=f"{PARAMETER}/App/x").allowed
    assert not decide(grant, resource=f"{PARAMETER}/app/x").allowed


def test_a_request_without_a_resource_is_matched_only_by_resource_star():
    scoped = policy(statement("Allow", "ssm:ListDocuments", "arn:aws:ssm:*:*:document/*"))
    anywhere = policy(statement("Allow", "ssm:ListDocuments", "*"))
    assert not decide(scoped, action="ssm:ListDocuments", resource="*").allowed
    assert decide(anywhere, action="ssm:ListDocuments", resource="*").allowed


def test_an_action_missing_from_the_catalogue_is_matched_by_its_patterns_only():
    wide = policy(statement("Allow", "ssm:*"))
    narrow = policy(statement("Allow", "ssm:GetParameter"))
    assert decide(wide, action="ssm:GetOpsSummary").allowed
    assert not decide(narrow, action="ssm:GetOpsSummary").allowed
    assert decide(policy(statement("Allow", not_action="kms:*")), action="ssm:Unheard").allowed


def test_a_decision_is_truthy_only_when_allowed():
    assert decide(policy(statement("Allow")))
    assert not decide(policy(statement("Deny")))
    assert not decide()


def test_policies_may_be_any_iterable_of_named_policies():
    grant = policy(statement("Allow"))
    named = (("p", grant) for _ in range(2))
    assert evaluate(named, action="kms:Decrypt", resource="*", context=None).allowed


def test_a_string_that_is_no_action_name_is_a_programming_error():
    with pytest.raises(ValueError, match="not an action name"):
        decide(policy(statement("Allow")), action="")
