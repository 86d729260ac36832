"""Tags on managed nodes: add and remove on one node, or on many at once.

Tag edits authorize as AWS does for managed instances: `ssm:AddTagsToResource` /
`ssm:RemoveTagsFromResource` on the node's ARN, with its current tags as
`ssm:resourceTag/<Key>` and the request's as `aws:RequestTag/<Key>` and `aws:TagKeys`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from access.authorization import Principal
from bosun.lib.errors import AccessDenied
from fleet import tag_rules
from fleet.codes import node_arn
from fleet.exceptions import FleetValidationError, InvalidInstanceId, TooManyTagsError
from fleet.models import ManagedNode, NodeStatus, NodeTag
from fleet.realtime import publish_node_status_on_commit
from fleet.scope import node_scope
from fleet.selectors import node_authorized
from fleet.services.common import audit
from fleet.tags import tag_keys_validated, tags_as_list, tags_validated
from fleet.timeline import node_event_record

ADD_TAGS = "ssm:AddTagsToResource"
REMOVE_TAGS = "ssm:RemoveTagsFromResource"
MAX_BULK_NODES = 1000


def _request_context(tags: Mapping[str, str] | None, keys: Sequence[str]) -> dict[str, Any]:
    context: dict[str, Any] = {"aws:TagKeys": list(keys)}
    for key, value in (tags or {}).items():
        context[f"aws:RequestTag/{key}"] = value
    return context


def node_tags_add(
    *, principal: Principal, node_id: str, tags: Mapping[str, str] | Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Add or overwrite tags on one node; returns all its tags. TooManyTagsError past 50."""
    wanted = tags_validated(tags)
    if not wanted:
        raise FleetValidationError("Give at least one tag to add.")
    node = node_authorized(
        principal, ADD_TAGS, node_id, context=_request_context(wanted, list(wanted))
    )
    _check_live(node)
    with transaction.atomic():
        if _tags_write(principal, [node], add=wanted):
            raise TooManyTagsError(
                f"{node.pk} would hold more than {tag_rules.MAX_TAGS} tags; remove some first."
            )
        audit(principal, ADD_TAGS, [node_arn(node.pk)], **_params([node.pk], tags=wanted))
    return _tags_of(node.pk)


def node_tags_remove(
    *, principal: Principal, node_id: str, keys: Iterable[object]
) -> dict[str, str]:
    """Remove tags by key from one node (keys it lacks are ignored); returns its tags."""
    unwanted = tag_keys_validated(keys)
    node = node_authorized(
        principal, REMOVE_TAGS, node_id, context=_request_context(None, unwanted)
    )
    _check_live(node)
    with transaction.atomic():
        _tags_write(principal, [node], remove=unwanted)
        audit(principal, REMOVE_TAGS, [node_arn(node.pk)], **_params([node.pk], keys=unwanted))
    return _tags_of(node.pk)


@dataclass
class BulkTagResult:
    """What a bulk tag edit did, node by node: nothing refused or skipped was touched."""

    changed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # the policy does not allow it
    skipped: dict[str, str] = field(default_factory=dict)  # node id → why (unknown, ...)


def node_tags_bulk_edit(
    *,
    principal: Principal,
    node_ids: Iterable[str],
    add: Mapping[str, str] | None = None,
    remove: Iterable[object] | None = None,
) -> BulkTagResult:
    """Add (`add`) or remove (`remove`, keys) tags on many nodes, each authorized on its own.

    One call does one of the two. Refused nodes are reported, audited as one denial, and
    left untouched; so are unknown or deregistered nodes and nodes that would pass 50 tags.
    """
    if (add is None) == (remove is None):
        raise FleetValidationError("Either add tags or remove tag keys, one at a time.")
    wanted = tags_validated(add) if add is not None else None
    unwanted = tag_keys_validated(remove) if remove is not None else None
    if wanted is not None and not wanted:
        raise FleetValidationError("Give at least one tag to add.")
    ids = list(dict.fromkeys(node_ids))
    if not ids:
        raise FleetValidationError("Select at least one node.")
    if len(ids) > MAX_BULK_NODES:
        raise FleetValidationError(f"{len(ids)} nodes selected; at most {MAX_BULK_NODES}.")
    action = ADD_TAGS if wanted is not None else REMOVE_TAGS
    keys = list(wanted) if wanted is not None else list(unwanted or [])
    scope = node_scope(principal, action, context=_request_context(wanted, keys))

    result = BulkTagResult()
    nodes = {node.pk: node for node in ManagedNode.objects.filter(pk__in=ids)}
    tags = ManagedNode.objects.filter(pk__in=list(nodes)).tags_by_node()
    allowed: list[ManagedNode] = []
    for node_id in ids:
        node = nodes.get(node_id)
        # An unknown id is decided without tags, as node_authorized() does: a principal
        # scoped by tags learns nothing of which ids exist.
        if not scope.allows(node_id, tags.get(node_id, [])):
            result.refused.append(node_id)
        elif node is None:
            result.skipped[node_id] = "no such managed node"
        elif node.status == NodeStatus.DEREGISTERED:
            result.skipped[node_id] = "deregistered"
        else:
            allowed.append(node)
    if result.refused:
        principal.record(
            action,
            outcome="denied",
            resources=[node_arn(node_id) for node_id in result.refused],
            error_code=AccessDenied.aws_code,
        )
    if not allowed:
        return result
    with transaction.atomic():
        over = _tags_write(principal, allowed, add=wanted, remove=unwanted)
        result.skipped.update(
            dict.fromkeys(over, f"would hold more than {tag_rules.MAX_TAGS} tags")
        )
        result.changed = [node.pk for node in allowed if node.pk not in over]
        if result.changed:
            audit(
                principal,
                action,
                [node_arn(node_id) for node_id in result.changed],
                **_params(result.changed, tags=wanted, keys=unwanted),
            )
    return result


def _tags_write(
    principal: Principal,
    nodes: list[ManagedNode],
    *,
    add: Mapping[str, str] | None = None,
    remove: Sequence[str] | None = None,
) -> set[str]:
    """Apply one edit to nodes the caller has authorized; returns the ids left alone because
    they would pass the tag limit. Runs inside the caller's transaction."""
    ids = [node.pk for node in nodes]
    over: set[str] = set()
    if remove:
        NodeTag.objects.filter(node_id__in=ids, key__in=list(remove)).delete()
        summary = "Tags removed: " + ", ".join(remove)
    else:
        add = add or {}
        current = ManagedNode.objects.filter(pk__in=ids).tags_by_node()
        over = {
            node_id
            for node_id in ids
            if len({key for key, _ in current.get(node_id, [])} | set(add)) > tag_rules.MAX_TAGS
        }
        ids = [node_id for node_id in ids if node_id not in over]
        existing = NodeTag.objects.filter(node_id__in=ids, key__in=list(add))
        present = {(tag.node_id, tag.key): tag for tag in existing}
        for tag in present.values():
            tag.value = add[tag.key]
        NodeTag.objects.bulk_update(list(present.values()), ["value"])
        NodeTag.objects.bulk_create(
            NodeTag(node_id=node_id, key=key, value=value)
            for node_id in ids
            for key, value in add.items()
            if (node_id, key) not in present
        )
        summary = "Tags set: " + ", ".join(f"{key}={value}" for key, value in add.items())
    status_of = {node.pk: node.status for node in nodes}
    for node_id in ids:
        node_event_record(node_id, kind="tags", summary=summary, actor=principal.name)
        # Open node lists refetch the row, which shows the tags.
        publish_node_status_on_commit(node_id, status_of[node_id])
    return over


def _check_live(node: ManagedNode) -> None:
    if node.status == NodeStatus.DEREGISTERED:
        raise InvalidInstanceId(f"{node.pk} is deregistered; its tags can no longer change.")


def _tags_of(node_id: str) -> dict[str, str]:
    return dict(NodeTag.objects.filter(node_id=node_id).values_list("key", "value"))


def _params(
    node_ids: list[str],
    *,
    tags: Mapping[str, str] | None = None,
    keys: Sequence[str] | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"ResourceType": "ManagedInstance", "ResourceIds": node_ids}
    if tags is not None:
        params["Tags"] = tags_as_list(tags)
    if keys is not None:
        params["TagKeys"] = list(keys)
    return params
