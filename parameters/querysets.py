"""Parameter QuerySets: listable reads go through `visible_to(principal, action)`."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Self

from django.db import models
from django.db.models import Value
from django.db.models.functions import Substr
from django.db.models.lookups import Exact

from access.authorization import Principal
from parameters.scope import Mode, ParameterScope, parameter_scope

if TYPE_CHECKING:
    from parameters.models import Parameter  # noqa: F401

DESCRIBE = "ssm:DescribeParameters"


class ParameterQuerySet(models.QuerySet["Parameter"]):
    def visible_to(
        self,
        principal: Principal,
        action: str = DESCRIBE,
        *,
        scope: ParameterScope | None = None,
    ) -> Self:
        """The parameters `action` is allowed on. Apply filters first: what is left is decided
        (one query of names, and of tags when a policy condition reads them)."""
        scope = scope or parameter_scope(principal, action)
        if scope.mode is Mode.ALL:
            return self
        if scope.mode is Mode.NONE:
            return self.none()
        tags = self.tags_by_parameter() if scope.needs_tags else {}
        names = self.order_by().values_list("pk", "name")
        allowed = [pk for pk, name in names if scope.allows(name, tags.get(pk, ()))]
        return self.filter(pk__in=allowed)

    def tags_by_parameter(self) -> dict[int, list[tuple[str, str]]]:
        tags: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for pk, key, value in self.order_by().values_list("pk", "tags__key", "tags__value"):
            if key is not None:
                tags[pk].append((key, value))
        return tags

    def under(self, path: str, *, recursive: bool) -> Self:
        """Parameters below `path` ("/" for all): every level, or the one just below."""
        if not recursive:
            return self.filter(parent_path=path)
        if path == "/":
            return self
        prefix = path + "/"
        # startswith is LIKE, which SQLite compares without case: the equality on the prefix
        # keeps /Team out of /team (names are case-sensitive) on every database.
        return self.filter(lookup__startswith=prefix).filter(
            Exact(Substr("lookup", 1, len(prefix)), Value(prefix))
        )
