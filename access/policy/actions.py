"""The catalogue of actions a policy may name, in AWS's spelling.

Action names compare case-insensitively, as in IAM. A pattern without wildcards must name a
catalogued action; a pattern with wildcards must match at least one, unless it is the whole
service (`ssm:*`) or everything (`*`). That refuses typos such as `ssm:GetParamter` or
`ssm:Gte*`, which IAM would accept and then silently never match.
"""

from __future__ import annotations

import re
from functools import lru_cache
from types import MappingProxyType

from access.policy.errors import PolicyError, json_type
from access.policy.wildcard import compiled, has_wildcard

_SSM = (
    # Parameter Store
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "GetParameterHistory",
    "PutParameter",
    "DeleteParameter",
    "DeleteParameters",
    "DescribeParameters",
    "LabelParameterVersion",
    "UnlabelParameterVersion",
    # Tags on parameters, documents and managed nodes
    "AddTagsToResource",
    "ListTagsForResource",
    "RemoveTagsFromResource",
    # Documents
    "CreateDocument",
    "GetDocument",
    "DescribeDocument",
    "UpdateDocument",
    "DeleteDocument",
    "ListDocuments",
    "ListDocumentVersions",
    "UpdateDocumentDefaultVersion",
    # Run Command
    "SendCommand",
    "ListCommands",
    "ListCommandInvocations",
    "GetCommandInvocation",
    "CancelCommand",
    # Managed nodes and hybrid activations
    "CreateActivation",
    "DescribeActivations",
    "DeleteActivation",
    "DescribeInstanceInformation",
    "DeregisterManagedInstance",
    # Session Manager
    "StartSession",
    "TerminateSession",
    "ResumeSession",
    "DescribeSessions",
    "GetConnectionStatus",
    # The rest of the console's sections, named now so policies written for them validate
    "StartAutomationExecution",
    "StopAutomationExecution",
    "GetAutomationExecution",
    "DescribeAutomationExecutions",
    "CreateAssociation",
    "DescribeAssociation",
    "ListAssociations",
    "UpdateAssociation",
    "DeleteAssociation",
    "CreateMaintenanceWindow",
    "DescribeMaintenanceWindows",
    "UpdateMaintenanceWindow",
    "DeleteMaintenanceWindow",
    "DescribePatchBaselines",
    "GetPatchBaseline",
    "DescribeInstancePatchStates",
    "GetInventory",
    "ListInventoryEntries",
    "GetCalendarState",
)

_KMS = (
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "DescribeKey",
    "ListKeys",
    "ListAliases",
    "CreateKey",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "EnableKey",
    "DisableKey",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
)

# What AWS has no action for: Bosun's own users, groups, policies and audit trail.
_BOSUN = (
    "ListUsers",
    "ManageUsers",
    "ManageGroups",
    "ListPolicies",
    "ManagePolicies",
    "ManageAccessKeys",
    "ManageOwnAccessKeys",
    "ManageOwnMfa",
    "ReadAuditTrail",
    "ExportAuditTrail",
    "SimulatePolicy",
    "ListChanges",
    "GetChange",
    "ApproveChange",
    "ViewDashboard",
    "RunSystemCheck",
    # Dismissing a managed node's suspected-clone alert (AWS has no such alert).
    "ResolveNodeAlert",
    # Asking a managed node's agent to rotate its key now (AWS rotates hybrid keys itself).
    "RotateNodeKey",
    # Webhook endpoints that receive Bosun's events (parameter changes, policy notices).
    "ListWebhooks",
    "ManageWebhooks",
)

# AWS Resource Groups, as far as Bosun keeps them: named tag queries over managed nodes.
_RESOURCE_GROUPS = (
    "CreateGroup",
    "UpdateGroup",
    "DeleteGroup",
    "GetGroup",
    "ListGroups",
)

ACTIONS_BY_SERVICE: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "ssm": tuple(f"ssm:{name}" for name in _SSM),
        "kms": tuple(f"kms:{name}" for name in _KMS),
        "bosun": tuple(f"bosun:{name}" for name in _BOSUN),
        "resource-groups": tuple(f"resource-groups:{name}" for name in _RESOURCE_GROUPS),
    }
)
KNOWN_ACTIONS: frozenset[str] = frozenset(
    action for actions in ACTIONS_BY_SERVICE.values() for action in actions
)
# Lower-cased name → AWS spelling. Matching works on lower-case names throughout.
_CANONICAL: MappingProxyType[str, str] = MappingProxyType(
    {action.lower(): action for action in KNOWN_ACTIONS}
)
KNOWN_ACTIONS_LOWER: frozenset[str] = frozenset(_CANONICAL)

# A service prefix may hold a hyphen (resource-groups); an action name may not.
_PATTERN = re.compile(r"[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+")


def canonical_action(name: str) -> str | None:
    """The catalogue's spelling of an action name in any case, or None when unknown."""
    return _CANONICAL.get(name.lower())


def action_matches(pattern: str, action: str) -> bool:
    """Whether an action pattern (`ssm:Get*`, `*`, `kms:Decrypt`) covers an action name."""
    return compiled(pattern.lower()).fullmatch(action.lower()) is not None


def expand_action_pattern(pattern: object) -> frozenset[str]:
    """The catalogued actions (lower-cased) a pattern covers; PolicyError when it is refused."""
    if not isinstance(pattern, str):
        raise PolicyError(f"an action must be a string, not {json_type(pattern)}")
    return _expand(pattern)


@lru_cache(maxsize=1024)
def _expand(pattern: str) -> frozenset[str]:
    if pattern == "*":
        return KNOWN_ACTIONS_LOWER
    if not _PATTERN.fullmatch(pattern):
        raise PolicyError(f'"{pattern}" is not an action: write service:ActionName, e.g. ssm:Get*')
    service, name = pattern.lower().split(":")
    if has_wildcard(service):
        raise PolicyError(f'"{pattern}": the service prefix cannot hold wildcards')
    if service not in ACTIONS_BY_SERVICE:
        known = ", ".join(ACTIONS_BY_SERVICE)
        raise PolicyError(f'unknown service prefix "{pattern.split(":")[0]}" (known: {known})')
    in_service = frozenset(action.lower() for action in ACTIONS_BY_SERVICE[service])
    if not has_wildcard(name):
        if pattern.lower() not in in_service:
            raise PolicyError(f'unknown action "{pattern}"')
        return frozenset({pattern.lower()})
    matcher = compiled(pattern.lower())
    covered = frozenset(action for action in in_service if matcher.fullmatch(action))
    if not covered and name.strip("*"):
        raise PolicyError(f'"{pattern}" matches no known action')
    return covered
