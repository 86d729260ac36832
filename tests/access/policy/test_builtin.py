"""The built-in managed policies: each parses, and each grants what its name says."""

import pytest

from access.policy import KNOWN_ACTIONS, evaluate
from access.policy.builtin import BUILTIN_POLICIES, builtin_policy

from .helpers import INSTANCE, PARAMETER

SECRET = f"{PARAMETER}/app/prod/db-password"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NODE = f"{INSTANCE}/mi-0123456789abcdef0"
SESSION = "arn:aws:ssm:eu-west-1:123456789012:session"


def may(name: str, action: str, resource: str = "*", username: str = "alice") -> bool:
    policies = [(name, builtin_policy(name))]
    context = {"aws:username": username}
    return evaluate(policies, action=action, resource=resource, context=context).allowed


def test_the_issue_names_exactly_these_built_ins():
    assert set(BUILTIN_POLICIES) == {
        "AdministratorAccess",
        "ReadOnlyAccess",
        "ParameterStoreReadOnly",
        "SessionManagerUser",
        "RunCommandOperator",
        "ChangeApprover",
        "AuditViewer",
    }


@pytest.mark.parametrize("name", sorted(BUILTIN_POLICIES))
def test_every_built_in_parses_and_says_what_it_is_for(name):
    builtin = BUILTIN_POLICIES[name]
    assert builtin_policy(name).statements
    assert builtin.description


def test_administrator_access_allows_every_catalogued_action():
    assert all(may("AdministratorAccess", action, SECRET) for action in KNOWN_ACTIONS)


def test_read_only_access_reads_but_never_decrypts_writes_or_reads_the_audit_trail():
    assert may("ReadOnlyAccess", "ssm:DescribeParameters")
    assert may("ReadOnlyAccess", "ssm:GetParameter", SECRET)
    assert may("ReadOnlyAccess", "bosun:ListUsers")
    assert may("ReadOnlyAccess", "bosun:ViewDashboard")
    assert not may("ReadOnlyAccess", "kms:Decrypt", KEY)
    assert not may("ReadOnlyAccess", "ssm:PutParameter", SECRET)
    assert not may("ReadOnlyAccess", "ssm:SendCommand", NODE)
    assert not may("ReadOnlyAccess", "bosun:ReadAuditTrail")
    assert not may("ReadOnlyAccess", "bosun:ManageUsers")


def test_parameter_store_read_only_reads_and_decrypts_parameters_only():
    assert may("ParameterStoreReadOnly", "ssm:GetParametersByPath", f"{PARAMETER}/app/prod")
    assert may("ParameterStoreReadOnly", "ssm:GetParameter", SECRET)
    assert may("ParameterStoreReadOnly", "kms:Decrypt", KEY)
    assert may("ParameterStoreReadOnly", "ssm:DescribeParameters")
    assert not may("ParameterStoreReadOnly", "ssm:GetParameter", NODE)
    assert not may("ParameterStoreReadOnly", "ssm:PutParameter", SECRET)
    assert not may("ParameterStoreReadOnly", "ssm:SendCommand", NODE)


def test_session_manager_user_starts_sessions_and_ends_only_its_own():
    assert may("SessionManagerUser", "ssm:StartSession", NODE)
    assert may("SessionManagerUser", "ssm:DescribeInstanceInformation")
    assert may("SessionManagerUser", "ssm:TerminateSession", f"{SESSION}/alice-0a1b")
    assert may("SessionManagerUser", "ssm:ResumeSession", f"{SESSION}/alice-0a1b")
    assert not may("SessionManagerUser", "ssm:TerminateSession", f"{SESSION}/bob-0a1b")
    assert not may("SessionManagerUser", "ssm:TerminateSession", f"{SESSION}/alice2-0a1b")
    assert not may("SessionManagerUser", "ssm:SendCommand", NODE)
    assert not may("SessionManagerUser", "ssm:GetParameter", SECRET)


def test_run_command_operator_sends_and_follows_commands_but_opens_no_shell():
    assert may("RunCommandOperator", "ssm:SendCommand", NODE)
    assert may("RunCommandOperator", "ssm:GetCommandInvocation")
    assert may("RunCommandOperator", "ssm:CancelCommand")
    assert not may("RunCommandOperator", "ssm:StartSession", NODE)
    assert not may("RunCommandOperator", "ssm:CreateDocument")
    assert not may("RunCommandOperator", "ssm:GetParameter", SECRET)


def test_change_approver_reviews_and_approves_changes_only():
    assert may("ChangeApprover", "bosun:ApproveChange")
    assert may("ChangeApprover", "bosun:GetChange")
    assert not may("ChangeApprover", "bosun:ManagePolicies")
    assert not may("ChangeApprover", "ssm:SendCommand", NODE)


def test_audit_viewer_reads_and_exports_the_trail_and_nothing_else():
    assert may("AuditViewer", "bosun:ReadAuditTrail")
    assert may("AuditViewer", "bosun:ExportAuditTrail")
    assert not may("AuditViewer", "ssm:GetParameter", SECRET)
    assert not may("AuditViewer", "bosun:ManageUsers")
