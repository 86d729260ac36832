"""Reads of identity and access, scoped by policy (DESIGN.md §4: every list is `visible_to`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Model, QuerySet

from access.authorization import Principal, is_allowed
from access.models import ManagedPolicy

M = TypeVar("M", bound=Model)


def visible_to(
    principal: Principal,
    action: str,
    queryset: QuerySet[M],
    *,
    resource_of: Callable[[M], str],
) -> list[M]:
    """The rows whose resource (`resource_of(row)`, an ARN) the principal may `action`.

    Cost: every row is fetched and evaluated in Python, one policy evaluation per row (the
    principal's policies are read once and compiled documents are cached), so it is linear in
    the size of the queryset. Fine for the lists built so far (tens to hundreds of rows);
    a large list should narrow the queryset first (filters, pagination bounds) or translate
    simple Resource patterns into a database filter. Superusers skip the evaluation.
    """
    if principal.user.is_active and principal.user.is_superuser:
        return list(queryset)
    return [row for row in queryset if is_allowed(principal, action, resource_of(row))]


def policies_visible_to(principal: Principal) -> QuerySet[ManagedPolicy]:
    """Every managed policy to whoever may `bosun:ListPolicies`, none to anyone else.

    All or nothing, as IAM's list actions are: they authorize on `*`, not per item.
    """
    policies = ManagedPolicy.objects.order_by("name")
    return policies if is_allowed(principal, "bosun:ListPolicies") else policies.none()


def users_visible_to(principal: Principal) -> QuerySet[User]:
    """Every user to whoever may `bosun:ListUsers`, none to anyone else (all or nothing)."""
    users = get_user_model().objects.order_by("username")
    return users if is_allowed(principal, "bosun:ListUsers") else users.none()
