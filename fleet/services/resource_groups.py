"""Resource groups: named, saved tag queries over managed nodes (AWS Resource Groups' shape)."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction

from access.authorization import Principal, authorize
from fleet.exceptions import FleetValidationError, ResourceGroupNotFound
from fleet.models import ResourceGroup
from fleet.scope import resource_group_arn
from fleet.services.common import audit
from fleet.tags import tag_query_validated

CREATE_GROUP = "resource-groups:CreateGroup"
UPDATE_GROUP = "resource-groups:UpdateGroup"
DELETE_GROUP = "resource-groups:DeleteGroup"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
MAX_DESCRIPTION = 512


def resource_group_create(
    *, principal: Principal, name: str, query: Any, description: str = ""
) -> ResourceGroup:
    authorize(principal, CREATE_GROUP, resource_group_arn(name))
    _check_name(name)
    _check_description(description)
    cleaned = tag_query_validated(query)
    with transaction.atomic():
        if ResourceGroup.objects.filter(name=name).exists():
            raise FleetValidationError(f"A resource group named {name} already exists.")
        group = ResourceGroup.objects.create(
            name=name, description=description, query=cleaned, created_by=principal.user
        )
        audit(principal, CREATE_GROUP, [resource_group_arn(name)], Name=name, Query=cleaned)
    return group


def resource_group_update(
    *, principal: Principal, name: str, query: Any, description: str | None = None
) -> ResourceGroup:
    """Replace a group's query (and description, when given). Names never change: a group's
    name is its ARN, which policies may name."""
    authorize(principal, UPDATE_GROUP, resource_group_arn(name))
    group = _group(name)
    cleaned = tag_query_validated(query)
    if description is not None:
        _check_description(description)
        group.description = description
    with transaction.atomic():
        group.query = cleaned
        group.save(update_fields=["query", "description", "updated_at"])
        audit(principal, UPDATE_GROUP, [resource_group_arn(name)], Name=name, Query=cleaned)
    return group


def resource_group_delete(*, principal: Principal, name: str) -> None:
    """Delete the group; its nodes and their tags are untouched."""
    authorize(principal, DELETE_GROUP, resource_group_arn(name))
    group = _group(name)
    with transaction.atomic():
        group.delete()
        audit(principal, DELETE_GROUP, [resource_group_arn(name)], Name=name)


def _group(name: str) -> ResourceGroup:
    group = ResourceGroup.objects.filter(name=name).first()
    if group is None:
        raise ResourceGroupNotFound(f"There is no resource group named {name}.")
    return group


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise FleetValidationError(
            "A group name is 1 to 128 letters, digits and _ . - (no spaces)."
        )


def _check_description(description: object) -> None:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise FleetValidationError(
            f"The description is text of at most {MAX_DESCRIPTION} characters."
        )
