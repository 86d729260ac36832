"""Parameter Store's AWS operations: translate AWS's shapes to the services and back.

Registered on the AWS endpoint (access.aws_endpoint) by bosun.lib.aws.registry; the services
and selectors authorize and audit, exactly as for the pages and the REST API.
"""

from __future__ import annotations

from typing import Any

from bosun.lib.aws import registry
from bosun.lib.aws.registry import AwsCall, operation
from parameters import policies as policy_rules
from parameters import selectors, services
from parameters.exceptions import InvalidResourceId, ParameterNotFound
from parameters.models import Parameter, ParameterType, ParameterVersion
from parameters.services import UNSET


def _given(params: dict[str, Any], name: str) -> Any:
    """A member the caller sent, or UNSET: an overwrite keeps what was not sent."""
    return params.get(name, UNSET)


def _arn(call: AwsCall, name: str) -> str:
    return call.arn(f"parameter/{name.lstrip('/')}")


def _value(call: AwsCall, found: selectors.ParameterValue) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Name": found.name,
        "Type": found.type,
        "Value": found.value,
        "Version": found.version,
        "LastModifiedDate": found.last_modified_at,
        "ARN": _arn(call, found.name),
        "DataType": found.data_type,
    }
    if found.selector:
        shape["Selector"] = found.selector
    return shape


@operation("PutParameter")
def put_parameter(call: AwsCall) -> dict[str, Any]:
    p = call.params
    result = services.parameter_put(
        principal=call.principal,
        name=p["Name"],
        value=p["Value"],
        parameter_type=p.get("Type"),
        description=_given(p, "Description"),
        key_id=_given(p, "KeyId"),
        overwrite=p.get("Overwrite", False),
        allowed_pattern=_given(p, "AllowedPattern"),
        tags=p.get("Tags"),
        tier=p.get("Tier"),
        policies=_given(p, "Policies"),
        data_type=_given(p, "DataType"),
    )
    return {"Version": result.version, "Tier": result.tier}


@operation("GetParameter")
def get_parameter(call: AwsCall) -> dict[str, Any]:
    found = selectors.parameter_get(
        principal=call.principal,
        name=call.params["Name"],
        with_decryption=call.params.get("WithDecryption", False),
    )
    return {"Parameter": _value(call, found)}


@operation("GetParameters")
def get_parameters(call: AwsCall) -> dict[str, Any]:
    found, invalid = selectors.parameters_get(
        principal=call.principal,
        names=call.params["Names"],
        with_decryption=call.params.get("WithDecryption", False),
    )
    return {
        "Parameters": [_value(call, value) for value in found],
        "InvalidParameters": invalid,
    }


@operation("GetParametersByPath")
def get_parameters_by_path(call: AwsCall) -> dict[str, Any]:
    p = call.params
    page = selectors.parameters_by_path(
        principal=call.principal,
        path=p["Path"],
        recursive=p.get("Recursive", False),
        filters=p.get("ParameterFilters"),
        with_decryption=p.get("WithDecryption", False),
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
    )
    return _paged(page, [_value(call, value) for value in page.items])


@operation("DeleteParameter")
def delete_parameter(call: AwsCall) -> dict[str, Any]:
    services.parameter_delete(principal=call.principal, name=call.params["Name"])
    return {}


@operation("DeleteParameters")
def delete_parameters(call: AwsCall) -> dict[str, Any]:
    result = services.parameters_delete(principal=call.principal, names=call.params["Names"])
    return {"DeletedParameters": result.deleted, "InvalidParameters": result.invalid}


@operation("DescribeParameters")
def describe_parameters(call: AwsCall) -> dict[str, Any]:
    p = call.params
    if p.get("Shared"):
        # Parameters other accounts share through AWS RAM: one account, none are shared.
        return {"Parameters": []}
    page = selectors.parameters_describe(
        principal=call.principal,
        filters=p.get("Filters"),
        parameter_filters=p.get("ParameterFilters"),
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
    )
    return _paged(page, [_metadata(call, item) for item in page.items])


@operation("GetParameterHistory")
def get_parameter_history(call: AwsCall) -> dict[str, Any]:
    p = call.params
    page = selectors.parameter_history(
        principal=call.principal,
        name=p["Name"],
        with_decryption=p.get("WithDecryption", False),
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
    )
    return _paged(page, [_history(entry) for entry in page.items])


@operation("LabelParameterVersion")
def label_parameter_version(call: AwsCall) -> dict[str, Any]:
    result = services.parameter_label(
        principal=call.principal,
        name=call.params["Name"],
        labels=call.params["Labels"],
        version=call.params.get("ParameterVersion"),
    )
    return {"InvalidLabels": result.invalid, "ParameterVersion": result.version}


@operation("UnlabelParameterVersion")
def unlabel_parameter_version(call: AwsCall) -> dict[str, Any]:
    result = services.parameter_unlabel(
        principal=call.principal,
        name=call.params["Name"],
        version=call.params["ParameterVersion"],
        labels=call.params["Labels"],
    )
    return {"RemovedLabels": result.removed, "InvalidLabels": result.invalid}


# --- Shapes ---------------------------------------------------------------------------------


def _paged(page: selectors.Page, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A listing's output: the last page leaves NextToken out."""
    shape: dict[str, Any] = {"Parameters": items}
    if page.next_token:
        shape["NextToken"] = page.next_token
    return shape


def _settings(shape: dict[str, Any], row: Parameter | ParameterVersion) -> dict[str, Any]:
    """What AWS shows only when set: a SecureString's key, a description, a pattern."""
    if row.type == ParameterType.SECURE_STRING and row.key_id:
        shape["KeyId"] = row.key_id
    if row.description:
        shape["Description"] = row.description
    if row.allowed_pattern:
        shape["AllowedPattern"] = row.allowed_pattern
    return shape


def _metadata(call: AwsCall, item: selectors.ParameterMetadata) -> dict[str, Any]:
    parameter = item.parameter
    return _settings(
        {
            "Name": parameter.name,
            "ARN": _arn(call, parameter.name),
            "Type": parameter.type,
            "LastModifiedDate": parameter.last_modified_at,
            "LastModifiedUser": parameter.last_modified_user,
            "Version": parameter.version,
            "Tier": parameter.tier,
            "Policies": item.policies,
            "DataType": parameter.data_type,
        },
        parameter,
    )


def _history(entry: selectors.HistoryEntry) -> dict[str, Any]:
    row = entry.row
    return _settings(
        {
            "Name": entry.name,
            "Type": row.type,
            "LastModifiedDate": row.modified_at,
            "LastModifiedUser": row.modified_user,
            "Value": entry.value,
            "Version": row.version,
            "Labels": entry.labels,
            "Tier": row.tier,
            "Policies": policy_rules.public(row.policies),
            "DataType": row.data_type,
        },
        row,
    )


# --- Tagging (ResourceType "Parameter", ResourceId the parameter's name) --------------------


def _invalid_resource_id(name: str) -> InvalidResourceId:
    # AWS answers the tagging operations on a missing parameter with InvalidResourceId.
    return InvalidResourceId(
        f"The resource ID {name} isn't valid. Verify that you entered the correct ID and try again."
    )


def _add_tags(call: AwsCall, name: str, tags: list[dict[str, str]]) -> None:
    try:
        services.parameter_tags_add(principal=call.principal, name=name, tags=tags)
    except ParameterNotFound:
        raise _invalid_resource_id(name) from None


def _tags(call: AwsCall, name: str) -> dict[str, str]:
    try:
        return selectors.parameter_tags(principal=call.principal, name=name)
    except ParameterNotFound:
        raise _invalid_resource_id(name) from None


def _remove_tags(call: AwsCall, name: str, keys: list[str]) -> None:
    try:
        services.parameter_tags_remove(principal=call.principal, name=name, keys=keys)
    except ParameterNotFound:
        raise _invalid_resource_id(name) from None


registry.tagging("Parameter", registry.Tagging(add=_add_tags, tags=_tags, remove=_remove_tags))
