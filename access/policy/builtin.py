"""The built-in managed policies, as documents, for seeding and for the policy pages.

Choices worth knowing:
- ReadOnlyAccess reads everything but secrets: `ssm:Get*` returns String parameters, and
  without `kms:Decrypt` a SecureString stays sealed (AWS's own ReadOnlyAccess works the same).
- ParameterStoreReadOnly grants `kms:Decrypt` on `*`: a reader must open SecureStrings
  whichever key sealed them, including keys added or rotated later. Decryption in Bosun
  happens only inside a parameter read, which also needs `ssm:GetParameter*` on that
  parameter, so the parameter grant is what bounds the secrets a reader sees.
- SessionManagerUser may resume and terminate only its own sessions, by AWS's convention that
  a session id starts with the user name (`session/${aws:username}-*`).
- Region and account are `*`: a Bosun install is one account.
"""

from __future__ import annotations

from functools import cache
from types import MappingProxyType
from typing import Any, NamedTuple

from access.policy.document import Policy, parse_policy

_SSM = "arn:aws:ssm:*:*"


class BuiltinPolicy(NamedTuple):
    name: str
    description: str
    document: dict[str, Any]


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(sid: str, actions: list[str], resources: str | list[str] = "*") -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


_BUILTINS = (
    BuiltinPolicy(
        "AdministratorAccess",
        "Every action on every resource.",
        _document(_allow("AdministratorAccess", ["*"])),
    ),
    BuiltinPolicy(
        "ReadOnlyAccess",
        "Read everything except secrets: no SecureString values, no audit trail.",
        _document(
            _allow(
                "ReadOnly",
                [
                    "ssm:Get*",
                    "ssm:Describe*",
                    "ssm:List*",
                    "kms:Describe*",
                    "kms:List*",
                    "bosun:List*",
                    "bosun:ViewDashboard",
                    "resource-groups:Get*",
                    "resource-groups:List*",
                ],
            )
        ),
    ),
    BuiltinPolicy(
        "ParameterStoreReadOnly",
        "Read parameters, SecureString values included.",
        _document(
            _allow(
                "ReadParameters",
                [
                    "ssm:GetParameter",
                    "ssm:GetParameters",
                    "ssm:GetParametersByPath",
                    "ssm:GetParameterHistory",
                    "ssm:ListTagsForResource",
                ],
                f"{_SSM}:parameter/*",
            ),
            _allow("DescribeParameters", ["ssm:DescribeParameters", "bosun:ViewDashboard"]),
            _allow("DecryptSecureStrings", ["kms:Decrypt"]),
        ),
    ),
    BuiltinPolicy(
        "SessionManagerUser",
        "Open shells on managed nodes; resume and end one's own sessions.",
        _document(
            _allow(
                "StartSessions",
                ["ssm:StartSession"],
                [f"{_SSM}:managed-instance/*", f"{_SSM}:document/*"],
            ),
            _allow(
                "OwnSessions",
                ["ssm:ResumeSession", "ssm:TerminateSession"],
                f"{_SSM}:session/${{aws:username}}-*",
            ),
            _allow(
                "SeeNodesAndSessions",
                [
                    "ssm:DescribeSessions",
                    "ssm:DescribeInstanceInformation",
                    "ssm:GetConnectionStatus",
                    "bosun:ViewDashboard",
                ],
            ),
        ),
    ),
    BuiltinPolicy(
        "RunCommandOperator",
        "Send commands to managed nodes, follow and cancel them.",
        _document(
            _allow(
                "RunCommands",
                [
                    "ssm:SendCommand",
                    "ssm:ListCommands",
                    "ssm:ListCommandInvocations",
                    "ssm:GetCommandInvocation",
                    "ssm:CancelCommand",
                    "ssm:ListDocuments",
                    "ssm:ListDocumentVersions",
                    "ssm:GetDocument",
                    "ssm:DescribeDocument",
                    "ssm:DescribeInstanceInformation",
                    "bosun:ViewDashboard",
                ],
            )
        ),
    ),
    BuiltinPolicy(
        "ChangeApprover",
        "Review and approve change requests.",
        _document(
            _allow(
                "ApproveChanges",
                ["bosun:ListChanges", "bosun:GetChange", "bosun:ApproveChange"],
            ),
            _allow("Dashboard", ["bosun:ViewDashboard"]),
        ),
    ),
    BuiltinPolicy(
        "AuditViewer",
        "Read and export the audit trail.",
        _document(
            _allow(
                "ReadAuditTrail",
                ["bosun:ReadAuditTrail", "bosun:ExportAuditTrail", "bosun:ViewDashboard"],
            )
        ),
    ),
)

BUILTIN_POLICIES: MappingProxyType[str, BuiltinPolicy] = MappingProxyType(
    {builtin.name: builtin for builtin in _BUILTINS}
)


@cache
def builtin_policy(name: str) -> Policy:
    """A built-in policy, parsed once; KeyError for a name that is not built in."""
    return parse_policy(BUILTIN_POLICIES[name].document)
