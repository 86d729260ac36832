"""Target resolution: which managed nodes a request aimed at `Targets` reaches.

Run Command, Session Manager and every later feature name nodes the way AWS does, and all of
them resolve through `targets_resolve()`:

    [{"Key": "InstanceIds", "Values": ["mi-0123456789abcdef0", ...]},
     {"Key": "tag:Env", "Values": ["dev", "test"]},
     {"Key": "tag-key", "Values": ["Role"]},
     {"Key": "resource-groups:Name", "Values": ["web"]}]

Semantics, as AWS's:
- targets AND together; the values of one target OR together: the example reaches nodes that
  are among those ids, AND tagged Env=dev or Env=test, AND have a Role tag, AND belong to
  the `web` group;
- `InstanceIds`: these nodes (at most 50 ids); `tag:<Key>`: nodes whose tag `Key` has one of
  the values; `tag-key`: nodes holding any of the keys; `resource-groups:Name`: nodes
  matching any of these groups' tag queries (the principal must be allowed
  `resource-groups:GetGroup` on each group);
- at most 5 targets, at most 50 values each; an unknown key is InvalidTarget.

The result holds only nodes the policy allows `action` on (their tags as
`ssm:resourceTag/<Key>`), never deregistered ones. Explicitly named ids that are refused by
policy, unknown or deregistered are reported by id, so a caller can say why a node it named
was left out; nodes matched by tag or group that the policy refuses are left out silently,
as the caller never named them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from access.authorization import Principal, authorize
from fleet.codes import NODE_ID_PATTERN
from fleet.exceptions import InvalidTarget, ResourceGroupNotFound
from fleet.models import ManagedNode, NodeStatus, ResourceGroup
from fleet.querysets import GET_GROUP
from fleet.scope import NodeScope, node_scope, resource_group_arn
from fleet.tags import node_has_tag, tag_key_problem, tag_query_q, tag_value_problem

MAX_TARGETS = 5
MAX_VALUES = 50
MAX_INSTANCE_IDS = 50
INSTANCE_IDS = "InstanceIds"
TAG_KEY = "tag-key"
TAG_PREFIX = "tag:"
GROUP_NAME = "resource-groups:Name"


@dataclass
class Resolution:
    node_ids: list[str] = field(default_factory=list)  # the nodes reached, sorted
    online: int = 0
    offline: int = 0  # ConnectionLost: reached, but the agent is not answering now
    refused_ids: list[str] = field(default_factory=list)  # named ids the policy refuses
    unknown_ids: list[str] = field(default_factory=list)  # named ids that are no node
    deregistered_ids: list[str] = field(default_factory=list)  # named, but deregistered

    @property
    def total(self) -> int:
        return len(self.node_ids)

    @property
    def nodes(self) -> QuerySet[ManagedNode]:
        return ManagedNode.objects.filter(pk__in=self.node_ids).order_by("name", "id")

    def as_dict(self) -> dict[str, Any]:
        return {
            "InstanceIds": self.node_ids,
            "Total": self.total,
            "Online": self.online,
            "Offline": self.offline,
            "RefusedInstanceIds": self.refused_ids,
            "UnknownInstanceIds": self.unknown_ids,
            "DeregisteredInstanceIds": self.deregistered_ids,
        }


def targets_resolve(
    *, principal: Principal, targets: Sequence[Mapping[str, Any]], action: str
) -> Resolution:
    """The nodes `targets` reach that the policy allows `action` on (see the module doc).

    Raises InvalidTarget for a malformed target, ResourceGroupNotFound for an unknown group,
    AccessDenied (audited) for a group the principal may not read.
    """
    parsed = _validated(targets)
    condition = Q()
    named_ids: list[str] = []
    for key, values in parsed:
        if key == INSTANCE_IDS:
            named_ids.extend(values)
            condition &= Q(pk__in=values)
        elif key == TAG_KEY:
            either = Q()
            for tag_key in values:
                either |= node_has_tag(tag_key)
            condition &= either
        elif key == GROUP_NAME:
            condition &= _groups_q(principal, values)
        else:
            condition &= node_has_tag(key.removeprefix(TAG_PREFIX), values)

    scope = node_scope(principal, action)
    matching = ManagedNode.objects.filter(condition).exclude(status=NodeStatus.DEREGISTERED)
    reached = matching.visible_to(principal, action, scope=scope)
    resolution = Resolution()
    for node_id, status in reached.order_by("id").values_list("id", "status"):
        resolution.node_ids.append(node_id)
        if status == NodeStatus.ONLINE:
            resolution.online += 1
        else:
            resolution.offline += 1
    if named_ids:
        _explain_named(resolution, scope, named_ids)
    return resolution


def _explain_named(resolution: Resolution, scope: NodeScope, ids: list[str]) -> None:
    """Why named ids were not reached: refused, unknown or deregistered. (Ids that exist and
    are allowed but fail another target are simply not matched.)"""
    reached = set(resolution.node_ids)
    wanted = [node_id for node_id in dict.fromkeys(ids) if node_id not in reached]
    statuses = dict(ManagedNode.objects.filter(pk__in=wanted).values_list("id", "status"))
    tags = ManagedNode.objects.filter(pk__in=list(statuses)).tags_by_node()
    for node_id in wanted:
        # Unknown ids are decided without tags, so a tag-scoped principal cannot probe ids.
        if not scope.allows(node_id, tags.get(node_id, [])):
            resolution.refused_ids.append(node_id)
        elif node_id not in statuses:
            resolution.unknown_ids.append(node_id)
        elif statuses[node_id] == NodeStatus.DEREGISTERED:
            resolution.deregistered_ids.append(node_id)


def _groups_q(principal: Principal, names: list[str]) -> Q:
    groups = {group.name: group for group in ResourceGroup.objects.filter(name__in=names)}
    either = Q()
    for name in names:
        authorize(principal, GET_GROUP, resource_group_arn(name))
        group = groups.get(name)
        if group is None:
            raise ResourceGroupNotFound(f"There is no resource group named {name}.")
        either |= tag_query_q(group.query)
    return either


def _validated(targets: object) -> list[tuple[str, list[str]]]:
    if not isinstance(targets, Sequence) or isinstance(targets, str) or not targets:
        raise InvalidTarget('Targets is a list of {"Key": ..., "Values": [...]}, at least one.')
    if len(targets) > MAX_TARGETS:
        raise InvalidTarget(f"{len(targets)} targets given; at most {MAX_TARGETS}.")
    parsed = []
    for number, target in enumerate(targets, start=1):
        if not isinstance(target, Mapping) or set(target) != {"Key", "Values"}:
            raise InvalidTarget(f'Target {number} must be {{"Key": ..., "Values": [...]}}.')
        key, values = target["Key"], target["Values"]
        if not isinstance(values, list) or not values:
            raise InvalidTarget(f"Target {number} ({key}): Values is a list of at least one value.")
        if not all(isinstance(value, str) for value in values):
            raise InvalidTarget(f"Target {number} ({key}): every value is text.")
        if len(values) > MAX_VALUES:
            raise InvalidTarget(
                f"Target {number} ({key}) has {len(values)} values; at most {MAX_VALUES}."
            )
        parsed.append((key, _checked_values(number, key, values)))
    return parsed


def _checked_values(number: int, key: object, values: list[str]) -> list[str]:
    where = f"Target {number} ({key})"
    if key == INSTANCE_IDS:
        if len(values) > MAX_INSTANCE_IDS:
            raise InvalidTarget(f"{where}: at most {MAX_INSTANCE_IDS} instance ids.")
        for value in values:
            if not NODE_ID_PATTERN.fullmatch(value):
                raise InvalidTarget(
                    f'{where}: "{value}" is not a managed node id (mi- and 17 hex).'
                )
    elif key == TAG_KEY:
        for value in values:
            problem = tag_key_problem(value)
            if problem:
                raise InvalidTarget(f"{where}: {problem}")
    elif key == GROUP_NAME:
        for value in values:
            if not value or len(value) > 128:
                raise InvalidTarget(f'{where}: "{value}" is not a resource group name.')
    elif isinstance(key, str) and key.startswith(TAG_PREFIX):
        tag_key = key.removeprefix(TAG_PREFIX)
        problem = tag_key_problem(tag_key)
        for value in values:
            problem = problem or tag_value_problem(tag_key, value)
        if problem:
            raise InvalidTarget(f"{where}: {problem}")
    else:
        raise InvalidTarget(
            f"Target {number}: unknown key {key!r}; use InstanceIds, tag:<key>, tag-key or "
            "resource-groups:Name."
        )
    return list(dict.fromkeys(values))
