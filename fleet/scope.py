"""Which managed nodes a principal may act on: node ARNs, tag context, and scoping whole lists.

A node is authorized as AWS authorizes a managed instance: the action on its ARN
(`arn:aws:ssm:<region>:<account>:managed-instance/mi-…`) with its tags in the request context
as `ssm:resourceTag/<Key>` (and `aws:ResourceTag/<Key>`), so a policy conditioned on
`"StringEquals": {"ssm:resourceTag/Env": "dev"}` admits exactly the Env=dev nodes.

Scoping a list of N nodes naively costs N policy evaluations. The principal's statements for
the action say how much of a node the decision can depend on, and `node_scope()` picks the
cheapest sound plan:

- `ALL` / `NONE`: the decision is the same for every node (a superuser; statements whose
  resources take in every node, or none, and whose conditions name no resource tag), so it is
  made once;
- `TAGS`: only the tags matter (such resources, plus tag conditions): one evaluation per
  distinct combination of the tags the conditions name, memoized;
- `NODE`: the ARN itself matters (a statement naming particular node ids): one evaluation
  per node.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from access.authorization import Principal, decide
from access.policy.conditions import ContextValue
from access.policy.statement import Statement
from access.policy.wildcard import compiled
from bosun.lib.arn import arn
from bosun.lib.errors import AccessDenied
from fleet.codes import node_arn

DESCRIBE_NODES = "ssm:DescribeInstanceInformation"
_TAG_KEY_PREFIXES = ("ssm:resourcetag/", "aws:resourcetag/")
# Node ids are "mi-" + 17 hex digits: always 20 characters.
_NODE_ID_LENGTH = 20
_HEX = frozenset("0123456789abcdef")
_PROBE_NODE_ID = "mi-" + "0" * 17

Tags = Iterable[tuple[str, str]]


def resource_group_arn(name: str) -> str:
    return arn("resource-groups", f"group/{name}")


def activation_arn(activation_id: str) -> str:
    """For the audit trail only: AWS authorizes activations on `*`, as Bosun does."""
    return arn("ssm", f"activation/{activation_id}")


def tag_context(tags: Tags) -> dict[str, str]:
    """A node's tags as condition keys, under both spellings AWS accepts for managed nodes."""
    context: dict[str, str] = {}
    for key, value in tags:
        context[f"ssm:resourceTag/{key}"] = value
        context[f"aws:ResourceTag/{key}"] = value
    return context


def node_decision_allowed(
    principal: Principal,
    action: str,
    node_id: str,
    tags: Tags,
    context: Mapping[str, ContextValue] | None = None,
) -> bool:
    """`action` on one node, its tags as context (with `context`, the request's own keys)."""
    merged: dict[str, ContextValue] = {**tag_context(tags), **(context or {})}
    return decide(principal, action, node_arn(node_id), merged).allowed


class Mode(Enum):
    ALL = "all"
    NONE = "none"
    TAGS = "tags"
    NODE = "node"


@dataclass
class NodeScope:
    """A plan for deciding `action` over many nodes for one principal (see the module doc)."""

    principal: Principal
    action: str
    mode: Mode
    # TAGS mode: the lower-cased tag keys the conditions name; None when any tag may matter.
    tag_keys: frozenset[str] | None = None
    # Keys of the request, the same for every node (aws:RequestTag/..., aws:TagKeys).
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    _memo: dict[tuple[tuple[str, str], ...], bool] = field(default_factory=dict, repr=False)

    def allows(self, node_id: str, tags: Tags) -> bool:
        if self.mode is Mode.ALL:
            return True
        if self.mode is Mode.NONE:
            return False
        if self.mode is Mode.NODE:
            return node_decision_allowed(self.principal, self.action, node_id, tags, self.context)
        signature = tuple(
            sorted(
                (key, value)
                for key, value in tags
                if self.tag_keys is None or key.lower() in self.tag_keys
            )
        )
        allowed = self._memo.get(signature)
        if allowed is None:
            # Sound: in TAGS mode no statement can tell one node's ARN from another's.
            allowed = node_decision_allowed(
                self.principal, self.action, _PROBE_NODE_ID, signature, self.context
            )
            self._memo[signature] = allowed
        return allowed

    def allowed_ids(self, tags_by_node: Mapping[str, Tags]) -> list[str]:
        return [node_id for node_id, tags in tags_by_node.items() if self.allows(node_id, tags)]


def node_scope(
    principal: Principal,
    action: str = DESCRIBE_NODES,
    *,
    context: Mapping[str, ContextValue] | None = None,
) -> NodeScope:
    """The cheapest sound plan for deciding `action` over many nodes (see the module doc);
    `context` holds request keys that are the same for every node."""
    context = dict(context or {})

    def plan(mode: Mode, tag_keys: frozenset[str] | None = None) -> NodeScope:
        return NodeScope(principal, action, mode, tag_keys, context)

    user = principal.user
    if not user.is_active:
        return plan(Mode.NONE)
    if user.is_superuser:
        return plan(Mode.ALL)
    statements = [
        (policy.source, statement)
        for _, policy in principal.policies()
        for statement in policy.statements_for(action.lower())
    ]
    if not any(statement.allow for _, statement in statements):
        return plan(Mode.NONE)
    if not all(_same_for_every_node(statement) for _, statement in statements):
        return plan(Mode.NODE)
    tag_keys: set[str] | None = set()
    for source, statement in statements:
        named = _tag_keys_named(source, statement)
        tag_keys = None if named is None or tag_keys is None else tag_keys | named
    if tag_keys is not None and not tag_keys:
        allowed = node_decision_allowed(principal, action, _PROBE_NODE_ID, (), context)
        return plan(Mode.ALL if allowed else Mode.NONE)
    return plan(Mode.TAGS, None if tag_keys is None else frozenset(tag_keys))


def authorize_node_listing(principal: Principal, action: str = DESCRIBE_NODES) -> NodeScope:
    """The scope of a node list, or AccessDenied (audited) when no node could ever be allowed.

    A list page cannot authorize on `*` as IAM's list actions do: a policy conditioned on
    node tags allows some nodes and never `*`, and such a user must still get their list.
    """
    scope = node_scope(principal, action)
    if scope.mode is Mode.NONE:
        resource = node_arn("*")
        principal.record(
            action, outcome="denied", resources=[resource], error_code=AccessDenied.aws_code
        )
        raise AccessDenied(
            f"User {principal.name} is not authorized to perform {action} on any managed node"
        )
    return scope


# --- How much of a node a statement can depend on -------------------------------------------


def _same_for_every_node(statement: Statement) -> bool:
    """Whether the Resource (or NotResource) element hits every node ARN, or none of them."""
    patterns = statement.resources
    if any("${" in pattern for pattern in patterns):
        return False  # a policy variable: not worth proving anything about
    return any(_takes_every_node(p) for p in patterns) or all(
        not _could_take_a_node(p) for p in patterns
    )


def _takes_every_node(pattern: str) -> bool:
    """Proof that a pattern matches every node ARN: it matches one whose id is made of a
    character no literal in the pattern can match, so only wildcards cover the id, and they
    would cover any id of that length just the same."""
    probe = node_arn("\x00" * _NODE_ID_LENGTH)
    return compiled(pattern).fullmatch(probe) is not None


def _could_take_a_node(pattern: str) -> bool:
    """False only with proof that no node ARN matches: some literal run of the pattern fits
    nowhere in `<fixed prefix><mi-id>`. (True means "maybe", which costs speed, never safety.)"""
    prefix = node_arn("")
    runs = [run for run in pattern.replace("?", "*").split("*") if run]
    return all(_fits_somewhere(run, prefix) for run in runs)


def _fits_somewhere(run: str, prefix: str) -> bool:
    total = len(prefix) + _NODE_ID_LENGTH
    for start in range(total - len(run) + 1):
        if all(
            _position_may_hold(start + offset, character, prefix)
            for offset, character in enumerate(run)
        ):
            return True
    return False


def _position_may_hold(position: int, character: str, prefix: str) -> bool:
    if position < len(prefix):
        return prefix[position] == character
    id_position = position - len(prefix)
    if id_position < 3:
        return "mi-"[id_position] == character
    return character in _HEX


def _tag_keys_named(source: str, statement: Statement) -> set[str] | None:
    """The lower-cased tag keys a statement's conditions test, or None when resource tags
    matter in some other way too (a policy variable such as `${ssm:resourceTag/Owner}`)."""
    named = {
        clause.key.split("/", 1)[1]
        for clause in statement.conditions
        if clause.key.startswith(_TAG_KEY_PREFIXES)
    }
    text = _statement_text(source, statement.index).lower()
    for clause in statement.conditions:
        if clause.key.startswith(_TAG_KEY_PREFIXES):
            text = text.replace(json.dumps(clause.key, ensure_ascii=False), "")
    return None if "resourcetag/" in text else named


def _statement_text(source: str, index: int) -> str:
    raw = json.loads(source)["Statement"]
    statement = raw[index] if isinstance(raw, list) else raw
    return json.dumps(statement, ensure_ascii=False)
