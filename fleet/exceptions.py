"""Fleet errors, each with the AWS error code the SSM API face will render (DESIGN.md §4)."""

from __future__ import annotations

from bosun.lib.errors import BosunError


class FleetError(BosunError):
    aws_code = "ValidationException"
    code = "fleet_error"


class FleetValidationError(FleetError):
    aws_code = "ValidationException"
    code = "validation_error"


class InvalidInstanceId(FleetError):
    aws_code = "InvalidInstanceId"
    code = "invalid_instance_id"
    http_status = 404


class InvalidActivation(FleetError):
    aws_code = "InvalidActivation"
    code = "invalid_activation"
    http_status = 404


class InvalidActivationId(FleetError):
    aws_code = "InvalidActivationId"
    code = "invalid_activation_id"
    http_status = 404


class InvalidResourceId(FleetError):
    aws_code = "InvalidResourceId"
    code = "invalid_resource_id"
    http_status = 404


class TooManyTagsError(FleetError):
    aws_code = "TooManyTagsError"
    code = "too_many_tags"


class ResourceGroupNotFound(FleetError):
    aws_code = "InvalidTarget"
    code = "resource_group_not_found"
    http_status = 404


class InvalidTarget(FleetError):
    aws_code = "InvalidTarget"
    code = "invalid_target"
