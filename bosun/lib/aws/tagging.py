"""AddTagsToResource, ListTagsForResource, RemoveTagsFromResource: one operation each for
every resource type, so each app registers the tagging of its own types
(`registry.tagging("Parameter", Tagging(...))`) and these dispatch on `ResourceType`."""

from __future__ import annotations

from typing import Any

from bosun.lib.aws import errors
from bosun.lib.aws.registry import AwsCall, operation, tagging_for


def _handlers(call: AwsCall) -> Any:
    resource_type = call.params["ResourceType"]
    handlers = tagging_for(resource_type)
    if handlers is None:
        raise errors.AwsError(
            "InvalidResourceType",
            f"The resource type {resource_type} is not valid here: Bosun tags Parameter, "
            "Document and ManagedInstance resources.",
        )
    return handlers


@operation("AddTagsToResource")
def add_tags_to_resource(call: AwsCall) -> dict[str, Any]:
    _handlers(call).add(call, call.params["ResourceId"], call.params["Tags"])
    return {}


@operation("ListTagsForResource")
def list_tags_for_resource(call: AwsCall) -> dict[str, Any]:
    tags = _handlers(call).tags(call, call.params["ResourceId"])
    return {"TagList": [{"Key": key, "Value": value} for key, value in sorted(tags.items())]}


@operation("RemoveTagsFromResource")
def remove_tags_from_resource(call: AwsCall) -> dict[str, Any]:
    _handlers(call).remove(call, call.params["ResourceId"], call.params["TagKeys"])
    return {}
