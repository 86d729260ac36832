"""The action catalogue: AWS's names, compared without regard to case; typos refused."""

import pytest

from access.policy import KNOWN_ACTIONS, PolicyError, action_matches, canonical_action
from access.policy.actions import expand_action_pattern

REQUIRED = [
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:DeleteParameters",
    "ssm:DescribeParameters",
    "ssm:LabelParameterVersion",
    "ssm:UnlabelParameterVersion",
    "ssm:AddTagsToResource",
    "ssm:ListTagsForResource",
    "ssm:RemoveTagsFromResource",
    "ssm:CreateDocument",
    "ssm:GetDocument",
    "ssm:DescribeDocument",
    "ssm:UpdateDocument",
    "ssm:DeleteDocument",
    "ssm:ListDocuments",
    "ssm:ListDocumentVersions",
    "ssm:UpdateDocumentDefaultVersion",
    "ssm:SendCommand",
    "ssm:ListCommands",
    "ssm:ListCommandInvocations",
    "ssm:GetCommandInvocation",
    "ssm:CancelCommand",
    "ssm:CreateActivation",
    "ssm:DescribeActivations",
    "ssm:DeleteActivation",
    "ssm:DescribeInstanceInformation",
    "ssm:DeregisterManagedInstance",
    "ssm:StartSession",
    "ssm:TerminateSession",
    "ssm:ResumeSession",
    "ssm:DescribeSessions",
    "ssm:GetConnectionStatus",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
    "kms:ListKeys",
    "kms:ListAliases",
    "kms:CreateKey",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:EnableKeyRotation",
    "kms:ScheduleKeyDeletion",
    "bosun:ListUsers",
    "bosun:ManageUsers",
    "bosun:ManageGroups",
    "bosun:ManagePolicies",
    "bosun:ListPolicies",
    "bosun:ManageAccessKeys",
    "bosun:ManageOwnAccessKeys",
    "bosun:ManageOwnMfa",
    "bosun:ReadAuditTrail",
    "bosun:ExportAuditTrail",
    "bosun:SimulatePolicy",
    "bosun:ApproveChange",
    "bosun:ViewDashboard",
]


def test_the_catalogue_holds_every_action_the_issue_names():
    assert set(REQUIRED) <= KNOWN_ACTIONS


def test_an_action_name_in_any_case_finds_its_aws_spelling():
    assert canonical_action("SSM:getparametersbypath") == "ssm:GetParametersByPath"
    assert canonical_action("ssm:GetParamter") is None


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("ssm:Get*", "ssm:GetParameter", True),
        ("ssm:Get*", "ssm:PutParameter", False),
        ("*", "kms:Decrypt", True),
        ("ssm:*", "kms:Decrypt", False),
        ("ssm:GetParameter?", "ssm:GetParameters", True),
        ("ssm:GetParameter?", "ssm:GetParameter", False),
        ("SSM:GETPARAMETER", "ssm:getparameter", True),
        ("kms:*Key*", "kms:ScheduleKeyDeletion", True),
    ],
)
def test_action_patterns_match_as_iam_does(pattern, action, expected):
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("ssm:GetParamter", 'unknown action "ssm:GetParamter"'),
        ("ssm:Gte*", '"ssm:Gte*" matches no known action'),
        ("s3:GetObject", 'unknown service prefix "s3"'),
        ("ssm", "is not an action"),
        ("ssm:Get Parameter", "is not an action"),
        ("*:Get*", "the service prefix cannot hold wildcards"),
        ("", "is not an action"),
    ],
)
def test_an_unknown_or_malformed_action_is_refused_with_a_reason(pattern, message):
    with pytest.raises(PolicyError) as refused:
        expand_action_pattern(pattern)
    assert message in str(refused.value)


def test_a_non_string_action_is_refused():
    with pytest.raises(PolicyError, match="must be a string, not a list"):
        expand_action_pattern(["ssm:GetParameter"])


@pytest.mark.parametrize("pattern", ["*", "ssm:*", "SSM:get*", "kms:*Key*", "bosun:Manage*"])
def test_wildcards_that_reach_known_actions_are_accepted(pattern):
    assert expand_action_pattern(pattern)


def test_a_service_wide_wildcard_covers_exactly_that_service():
    assert expand_action_pattern("kms:*") == {a.lower() for a in KNOWN_ACTIONS if "kms:" in a}
