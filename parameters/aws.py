"""Parameter Store's AWS operations: translate AWS's shapes to the services and back.

Registered on the AWS endpoint (access.aws_endpoint) by bosun.lib.aws.registry; the services
and selectors authorize and audit, exactly as for the pages and the REST API.
"""

from __future__ import annotations

from typing import Any

from bosun.lib.aws.registry import AwsCall, operation
from parameters import selectors, services
from parameters.services import UNSET


def _given(params: dict[str, Any], name: str) -> Any:
    """A member the caller sent, or UNSET: an overwrite keeps what was not sent."""
    return params.get(name, UNSET)


def _value(call: AwsCall, found: selectors.ParameterValue) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Name": found.name,
        "Type": found.type,
        "Value": found.value,
        "Version": found.version,
        "LastModifiedDate": found.last_modified_at,
        "ARN": call.arn(f"parameter/{found.name.lstrip('/')}"),
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
