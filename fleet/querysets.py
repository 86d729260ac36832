"""The fleet's QuerySets: every listable model reads `visible_to(principal, action)`.

Kept apart from models.py so the models stay declarations; this module imports no model
(it reaches tags through the `tags` relation), so models.py can import it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Self

from django.db import models

from access.authorization import Principal, is_allowed
from fleet.scope import DESCRIBE_NODES, Mode, node_scope, resource_group_arn

if TYPE_CHECKING:
    # For the type arguments below, written as strings: models.py imports this module.
    from fleet.models import Activation, ManagedNode, ResourceGroup  # noqa: F401
    from fleet.scope import NodeScope

DESCRIBE_ACTIVATIONS = "ssm:DescribeActivations"
GET_GROUP = "resource-groups:GetGroup"


class ManagedNodeQuerySet(models.QuerySet["ManagedNode"]):
    def visible_to(
        self, principal: Principal, action: str = DESCRIBE_NODES, *, scope: NodeScope | None = None
    ) -> Self:
        """The nodes whose ARN, with their tags as context, the policy allows `action` on.

        Apply filters first: only the nodes left are evaluated. Costs one extra query, of
        (id, tag) pairs, unless the decision is the same for every node (see fleet.scope).
        """
        scope = scope or node_scope(principal, action)
        if scope.mode is Mode.ALL:
            return self
        if scope.mode is Mode.NONE:
            return self.none()
        return self.filter(pk__in=scope.allowed_ids(self.tags_by_node()))

    def tags_by_node(self) -> dict[str, list[tuple[str, str]]]:
        """{node id: [(key, value), ...]} for the nodes of this queryset, in one query."""
        tags: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for node_id, key, value in self.order_by().values_list("id", "tags__key", "tags__value"):
            entries = tags[node_id]  # a node without tags still gets its (empty) entry
            if key is not None:
                entries.append((key, value))
        return tags

    def with_tags(self) -> Self:
        return self.prefetch_related("tags")

    def active(self) -> Self:
        """Nodes not deregistered: the ones work can still be sent to."""
        return self.exclude(status="Deregistered")


class ActivationQuerySet(models.QuerySet["Activation"]):
    def visible_to(self, principal: Principal, action: str = DESCRIBE_ACTIVATIONS) -> Self:
        """All activations or none: AWS authorizes activation actions on `*`."""
        return self if is_allowed(principal, action) else self.none()


class ResourceGroupQuerySet(models.QuerySet["ResourceGroup"]):
    def visible_to(self, principal: Principal, action: str = GET_GROUP) -> Self:
        """The groups whose ARN the policy allows `action` on (groups number in the tens, so
        each is decided on its own)."""
        user = principal.user
        if user.is_active and user.is_superuser:
            return self
        names = self.order_by().values_list("name", flat=True)
        allowed = [
            name for name in names if is_allowed(principal, action, resource_group_arn(name))
        ]
        return self.filter(name__in=allowed)
