"""Writes of the fleet (DESIGN.md §4): every face (pages, API, AWS endpoint) calls these.

Each takes the acting principal, authorizes first (before any transaction, so a denial's
audit event is never rolled back with it), owns its transaction, audits the change, writes
the node's timeline, and publishes live events after the commit.
"""

from fleet.services.activations import NewActivation, activation_create, activation_delete
from fleet.services.node_tags import (
    BulkTagResult,
    node_tags_add,
    node_tags_bulk_edit,
    node_tags_remove,
)
from fleet.services.nodes import node_clone_alert_clear, node_deregister
from fleet.services.resource_groups import (
    resource_group_create,
    resource_group_delete,
    resource_group_update,
)

__all__ = [
    "BulkTagResult",
    "NewActivation",
    "activation_create",
    "activation_delete",
    "node_clone_alert_clear",
    "node_deregister",
    "node_tags_add",
    "node_tags_bulk_edit",
    "node_tags_remove",
    "resource_group_create",
    "resource_group_delete",
    "resource_group_update",
]
