"""Reads of the fleet, scoped by policy: a principal sees only the nodes policy lets them see.

Lists go through the QuerySets' `visible_to` (fleet.querysets, planned by fleet.scope);
single objects through the same authorization a write would use, so the detail page of a
node the list hides is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from access.authorization import Principal, authorize
from fleet.codes import node_arn
from fleet.exceptions import InvalidActivationId, InvalidInstanceId, ResourceGroupNotFound
from fleet.filters import NodeFilter
from fleet.models import Activation, ManagedNode, NodeEvent, NodeStatus, ResourceGroup
from fleet.querysets import DESCRIBE_ACTIVATIONS, GET_GROUP, ManagedNodeQuerySet
from fleet.scope import (
    DESCRIBE_NODES,
    Mode,
    authorize_node_listing,
    node_scope,
    resource_group_arn,
    tag_context,
)
from fleet.tags import tag_query_q, tag_query_validated

LIST_GROUPS = "resource-groups:ListGroups"
STATUSES = tuple(NodeStatus)


@dataclass
class NodeListing:
    nodes: QuerySet[ManagedNode]  # filtered, visible, sorted, tags prefetched: paginate it
    counts: dict[str, int]  # by status, over every filter but the status one


def node_listing(*, principal: Principal, filters: NodeFilter) -> NodeListing:
    """The node list for a page or the API. AccessDenied when policy allows no node at all."""
    scope = authorize_node_listing(principal)
    visible = filters.filter_except_status(ManagedNode.objects.all()).visible_to(
        principal, scope=scope
    )
    nodes = filters.filter_status(visible).order_by(*filters.ordering()).with_tags()
    return NodeListing(nodes=nodes, counts=node_status_counts(visible))


def node_status_counts(nodes: QuerySet[ManagedNode]) -> dict[str, int]:
    rows = nodes.order_by().values_list("status").annotate(count=Count("pk"))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: count for status, count in rows})
    return {str(status): count for status, count in counts.items()}


def may_act_on_some_node(principal: Principal, action: str) -> bool:
    """For buttons and menus: whether policy could allow `action` on any node at all."""
    return node_scope(principal, action).mode is not Mode.NONE


def nodes_visible_to(principal: Principal, action: str = DESCRIBE_NODES) -> ManagedNodeQuerySet:
    return ManagedNode.objects.visible_to(principal, action)


def node_authorized(
    principal: Principal,
    action: str,
    node_id: str,
    *,
    context: Mapping[str, Any] | None = None,
) -> ManagedNode:
    """The node, once `action` on it is allowed (a denial is audited and raised).

    An unknown id is authorized without tags before it is reported unknown, so a principal
    scoped by tags cannot learn which ids exist.
    """
    node = ManagedNode.objects.filter(pk=node_id).prefetch_related("tags").first()
    tags = [(tag.key, tag.value) for tag in node.tags.all()] if node else []
    authorize(principal, action, node_arn(node_id), {**tag_context(tags), **(context or {})})
    if node is None:
        raise InvalidInstanceId(f"There is no managed node {node_id}.")
    return node


def node_get(*, principal: Principal, node_id: str) -> ManagedNode:
    """One node, if the principal may see it (AccessDenied, audited, or InvalidInstanceId)."""
    return node_authorized(principal, DESCRIBE_NODES, node_id)


def node_events(node: ManagedNode) -> QuerySet[NodeEvent]:
    return NodeEvent.objects.filter(node=node).order_by("-at", "-id")


@dataclass
class FleetSummary:
    counts: dict[str, int]
    suspected_clones: list[ManagedNode]


def fleet_summary(principal: Principal) -> FleetSummary | None:
    """For the dashboard: status counts and suspected clones; None when no node is visible."""
    scope = node_scope(principal)
    if scope.mode is Mode.NONE:
        return None
    visible = ManagedNode.objects.visible_to(principal, scope=scope)
    clones = visible.filter(clone_suspected_at__isnull=False).order_by("-clone_suspected_at")
    return FleetSummary(counts=node_status_counts(visible), suspected_clones=list(clones[:5]))


# --- Activations ----------------------------------------------------------------------------


def activations_visible_to(principal: Principal) -> QuerySet[Activation]:
    """With `expired` and `exhausted` flags, newest first; all or none (AWS decides on `*`)."""
    now = timezone.now()
    return (
        Activation.objects.visible_to(principal)
        .select_related("created_by")
        .annotate(
            expired=ExpressionWrapper(Q(expires_at__lte=now), output_field=BooleanField()),
            exhausted=ExpressionWrapper(
                Q(registrations_count__gte=F("registration_limit")), output_field=BooleanField()
            ),
        )
        .order_by("-created_at")
    )


def activation_listing(principal: Principal) -> QuerySet[Activation]:
    """The activation list of a page or the API: AccessDenied (audited) without the right."""
    authorize(principal, DESCRIBE_ACTIVATIONS)
    return activations_visible_to(principal)


def activation_get(*, principal: Principal, activation_id: str) -> Activation:
    authorize(principal, DESCRIBE_ACTIVATIONS)
    activation = activations_visible_to(principal).filter(pk=activation_id).first()
    if activation is None:
        raise InvalidActivationId(f"There is no activation {activation_id}.")
    return activation


def activation_nodes(activation: Activation, principal: Principal) -> ManagedNodeQuerySet:
    return ManagedNode.objects.filter(activation_id=activation.pk).visible_to(principal)


# --- Resource groups ------------------------------------------------------------------------


def resource_group_listing(principal: Principal) -> QuerySet[ResourceGroup]:
    """The group list: AccessDenied (audited) without ListGroups, then the groups the
    principal may read one by one."""
    authorize(principal, LIST_GROUPS)
    return ResourceGroup.objects.visible_to(principal).order_by("name")


def resource_group_get(*, principal: Principal, name: str) -> ResourceGroup:
    authorize(principal, GET_GROUP, resource_group_arn(name))
    group = ResourceGroup.objects.filter(name=name).first()
    if group is None:
        raise ResourceGroupNotFound(f"There is no resource group named {name}.")
    return group


def tag_query_nodes(principal: Principal, query: Any) -> ManagedNodeQuerySet:
    """The registered nodes a tag query matches that the principal may see (FleetValidationError
    for a malformed query): a group's members, or a preview while one is being edited."""
    cleaned = tag_query_validated(query)
    return (
        ManagedNode.objects.filter(tag_query_q(cleaned))
        .exclude(status=NodeStatus.DEREGISTERED)
        .visible_to(principal)
        .with_tags()
        .order_by("name", "id")
    )


# --- The AWS endpoint -----------------------------------------------------------------------


def node_search(*, principal: Principal, condition: Q) -> ManagedNodeQuerySet:
    """The registered nodes matching `condition` that the principal may see, by id, tags
    prefetched: DescribeInstanceInformation's list (AWS lists no deregistered node).
    AccessDenied (audited) when policy allows no node at all."""
    scope = authorize_node_listing(principal)
    return (
        ManagedNode.objects.filter(condition)
        .active()
        .visible_to(principal, scope=scope)
        .with_tags()
        .order_by("id")
    )


def activation_iam_roles(activation_ids: list[str]) -> dict[str, str]:
    """{activation id: IAM role} for the activations given that still exist and name a role:
    a node registered through one reports its role, as AWS's do."""
    rows = Activation.objects.filter(pk__in=activation_ids).exclude(iam_role="")
    return dict(rows.values_list("pk", "iam_role"))
