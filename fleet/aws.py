"""Managed nodes' AWS operations: activations, DescribeInstanceInformation, deregistration and
the tagging of `ManagedInstance` resources, translated to the fleet's services and selectors.

Registered on the AWS endpoint (access.aws_endpoint) by bosun.lib.aws.registry; the services
and selectors authorize and audit, exactly as for the pages and the REST API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bosun_agent import __version__ as LATEST_AGENT_VERSION
from django.db.models import Q

from bosun.lib.aws import errors
from bosun.lib.aws.paging import offset_page
from bosun.lib.aws.registry import AwsCall, Tagging, operation, tagging
from fleet import selectors, services
from fleet.exceptions import InvalidInstanceId, InvalidResourceId
from fleet.models import Activation, ManagedNode
from fleet.tags import node_has_tag, tag_key_problem

RESOURCE_TYPE = "ManagedInstance"
SOURCE_TYPE = "AWS::SSM::ManagedInstance"
LIST_TAGS = "ssm:ListTagsForResource"
# AWS's MaxResults ranges: 5 to 50 for DescribeInstanceInformation, 1 to 50 for activations.
NODES_PAGE = 50
ACTIVATIONS_PAGE = 50
PING_STATUSES = ("Online", "ConnectionLost", "Inactive")
PLATFORM_TYPES = ("Windows", "Linux", "MacOS")
RESOURCE_TYPES = (RESOURCE_TYPE, "EC2Instance")
_INSTANCE_ID = re.compile(r"^(i-(\w{8}|\w{17})|mi-\w{17})$")
_NOTHING = Q(pk__in=[])


# --- Activations ----------------------------------------------------------------------------


@operation("CreateActivation")
def create_activation(call: AwsCall) -> dict[str, Any]:
    # IamRole is required by AWS; activation_create takes no role (Bosun's nodes authenticate
    # with their own keys, not with a role), so it is accepted and not kept.
    p = call.params
    created = services.activation_create(
        principal=call.principal,
        description=p.get("Description", ""),
        default_instance_name=p.get("DefaultInstanceName", ""),
        registration_limit=p.get("RegistrationLimit", 1),
        expires_at=p.get("ExpirationDate"),
        tags=p.get("Tags", ()),
    )
    return {"ActivationId": created.activation.id, "ActivationCode": created.code}


_ACTIVATION_FILTERS = {
    "ActivationIds": "pk__in",
    "DefaultInstanceName": "default_instance_name__in",
    "IamRole": "iam_role__in",
}


@operation("DescribeActivations")
def describe_activations(call: AwsCall) -> dict[str, Any]:
    activations = selectors.activation_listing(call.principal)
    for item in call.params.get("Filters", []):
        key, values = item.get("FilterKey"), item.get("FilterValues")
        if key is None or not values:
            raise errors.AwsError(
                "InvalidFilter", "Each filter needs a FilterKey and at least one FilterValue."
            )
        activations = activations.filter(**{_ACTIVATION_FILTERS[key]: values})
    page, token = offset_page(
        activations.order_by("-created_at", "pk"),
        call,
        kind="activations",
        default_size=ACTIVATIONS_PAGE,
    )
    answer: dict[str, Any] = {"ActivationList": [_activation(found) for found in page]}
    if token:
        answer["NextToken"] = token
    return answer


def _activation(activation: Activation) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "ActivationId": activation.id,
        "Description": activation.description,
        "DefaultInstanceName": activation.default_instance_name,
        "RegistrationLimit": activation.registration_limit,
        "RegistrationsCount": activation.registrations_count,
        "ExpirationDate": activation.expires_at,
        "Expired": bool(getattr(activation, "expired", False)),
        "CreatedDate": activation.created_at,
        "Tags": list(activation.node_tags or []),
    }
    if activation.iam_role:
        shape["IamRole"] = activation.iam_role
    return shape


@operation("DeleteActivation")
def delete_activation(call: AwsCall) -> dict[str, Any]:
    services.activation_delete(principal=call.principal, activation_id=call.params["ActivationId"])
    return {}


# --- Managed nodes --------------------------------------------------------------------------


@operation("DescribeInstanceInformation")
def describe_instance_information(call: AwsCall) -> dict[str, Any]:
    p = call.params
    legacy, filters = p.get("InstanceInformationFilterList"), p.get("Filters")
    if legacy and filters:
        raise errors.validation(
            "Use either InstanceInformationFilterList or Filters in a request, not both."
        )
    condition = Q()
    for item in legacy or []:
        condition &= _node_condition(item["key"], item["valueSet"])
    for item in filters or []:
        condition &= _node_condition(item["Key"], item["Values"])
    nodes = selectors.node_search(principal=call.principal, condition=condition)
    page, token = offset_page(nodes, call, kind="nodes", default_size=NODES_PAGE)
    roles = selectors.activation_iam_roles([node.activation_id for node in page])
    answer: dict[str, Any] = {"InstanceInformationList": [_node(node, roles) for node in page]}
    if token:
        answer["NextToken"] = token
    return answer


def _node_condition(key: str, values: list[str]) -> Q:
    """AWS's filter `key` (with its values, any of which may match) as a node query."""
    if key == "InstanceIds":
        for value in values:
            if not _INSTANCE_ID.match(value):
                raise InvalidInstanceId(f"The instance ID {value} is not valid.")
        return Q(pk__in=values)
    if key == "AgentVersion":
        return Q(agent_version__in=values)
    if key == "PingStatus":
        _check_values(key, values, PING_STATUSES)
        return Q(status__in=values)  # a Bosun node is never Inactive (an EC2 state)
    if key == "PlatformTypes":
        _check_values(key, values, PLATFORM_TYPES)
        return Q(platform_type__in=values)
    if key == "ActivationIds":
        return Q(activation_id__in=values)
    if key == "IamRole":
        return Q(activation_id__in=Activation.objects.filter(iam_role__in=values).values("pk"))
    if key == "ResourceType":
        _check_values(key, values, RESOURCE_TYPES)
        return Q() if RESOURCE_TYPE in values else _NOTHING
    if key == "AssociationStatus":
        return _NOTHING  # Bosun has no State Manager associations: no node has a status
    if key == "tag-key":
        return _any_of(node_has_tag(_tag_key(key, value)) for value in values)
    if key.startswith("tag:"):
        return node_has_tag(_tag_key(key, key[4:]), values)
    raise errors.AwsError(
        "InvalidFilterKey",
        f"The filter key {key} is not valid: use InstanceIds, AgentVersion, PingStatus, "
        "PlatformTypes, ActivationIds, IamRole, ResourceType, AssociationStatus, tag-key "
        "or tag:<key>.",
    )


def _check_values(key: str, values: list[str], allowed: tuple[str, ...]) -> None:
    for value in values:
        if value not in allowed:
            raise errors.AwsError(
                "InvalidInstanceInformationFilterValue",
                f"The filter value {value} is not valid for {key}: use {', '.join(allowed)}.",
            )


def _tag_key(filter_key: str, tag_key: str) -> str:
    problem = tag_key_problem(tag_key)
    if problem:
        raise errors.AwsError("InvalidFilterKey", f"The filter {filter_key}: {problem}")
    return tag_key


def _any_of(conditions: Iterable[Q]) -> Q:
    combined = _NOTHING
    for condition in conditions:
        combined |= condition
    return combined


def _node(node: ManagedNode, roles: dict[str, str]) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "InstanceId": node.pk,
        "PingStatus": node.status,
        "ResourceType": RESOURCE_TYPE,
        "RegistrationDate": node.registered_at,
        "Name": node.name,
        "SourceId": node.pk,
        "SourceType": SOURCE_TYPE,
    }
    optional: dict[str, Any] = {
        "LastPingDateTime": node.last_seen_at,
        "AgentVersion": node.agent_version,
        "PlatformType": node.platform_type,
        "PlatformName": node.platform_name,
        "PlatformVersion": node.platform_version,
        "ActivationId": node.activation_id,
        "IamRole": roles.get(node.activation_id),
        "IPAddress": node.ip_address,
        "ComputerName": node.hostname,
    }
    shape.update({name: value for name, value in optional.items() if value})
    if node.agent_version:
        shape["IsLatestVersion"] = node.agent_version == LATEST_AGENT_VERSION
    return shape


@operation("DeregisterManagedInstance")
def deregister_managed_instance(call: AwsCall) -> dict[str, Any]:
    services.node_deregister(principal=call.principal, node_id=call.params["InstanceId"])
    return {}


# --- Tagging (ResourceType ManagedInstance, ResourceId mi-…) --------------------------------


def _resource(error: InvalidInstanceId) -> InvalidResourceId:
    """The tagging operations name an unknown resource InvalidResourceId, as AWS does."""
    return InvalidResourceId(error.message)


def _tags_add(call: AwsCall, node_id: str, tags: list[dict[str, str]]) -> None:
    try:
        services.node_tags_add(principal=call.principal, node_id=node_id, tags=tags)
    except InvalidInstanceId as error:
        raise _resource(error) from None


def _tags(call: AwsCall, node_id: str) -> dict[str, str]:
    try:
        node = selectors.node_authorized(call.principal, LIST_TAGS, node_id)
    except InvalidInstanceId as error:
        raise _resource(error) from None
    return {tag.key: tag.value for tag in node.tags.all()}


def _tags_remove(call: AwsCall, node_id: str, keys: list[str]) -> None:
    try:
        services.node_tags_remove(principal=call.principal, node_id=node_id, keys=keys)
    except InvalidInstanceId as error:
        raise _resource(error) from None


tagging(RESOURCE_TYPE, Tagging(add=_tags_add, tags=_tags, remove=_tags_remove))
