"""Parameter Store errors, each carrying the AWS error code the SSM API face renders
(DESIGN.md §4); the messages follow AWS's wording where clients or people know it."""

from __future__ import annotations

from bosun.lib.errors import BosunError


class ParameterError(BosunError):
    aws_code = "ValidationException"
    code = "parameter_error"


class ParameterValidationError(ParameterError):
    aws_code = "ValidationException"
    code = "validation_error"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        # The form field the error belongs to, so pages can show it inline.
        self.field = field


class ParameterNotFound(ParameterError):
    aws_code = "ParameterNotFound"
    code = "parameter_not_found"
    http_status = 404


class ParameterVersionNotFound(ParameterError):
    aws_code = "ParameterVersionNotFound"
    code = "parameter_version_not_found"
    http_status = 404


class ParameterAlreadyExists(ParameterError):
    aws_code = "ParameterAlreadyExists"
    code = "parameter_already_exists"
    http_status = 409


class ParameterLimitExceeded(ParameterError):
    aws_code = "ParameterLimitExceeded"
    code = "parameter_limit_exceeded"


class ParameterMaxVersionLimitExceeded(ParameterError):
    aws_code = "ParameterMaxVersionLimitExceeded"
    code = "parameter_max_version_limit_exceeded"
    http_status = 409


class ParameterVersionLabelLimitExceeded(ParameterError):
    aws_code = "ParameterVersionLabelLimitExceeded"
    code = "parameter_version_label_limit_exceeded"


class HierarchyLevelLimitExceeded(ParameterError):
    aws_code = "HierarchyLevelLimitExceededException"
    code = "hierarchy_level_limit_exceeded"


class HierarchyTypeMismatch(ParameterError):
    aws_code = "HierarchyTypeMismatchException"
    code = "hierarchy_type_mismatch"


class InvalidAllowedPattern(ParameterError):
    aws_code = "InvalidAllowedPatternException"
    code = "invalid_allowed_pattern"


class ParameterPatternMismatch(ParameterError):
    aws_code = "ParameterPatternMismatchException"
    code = "parameter_pattern_mismatch"


class UnsupportedParameterType(ParameterError):
    aws_code = "UnsupportedParameterType"
    code = "unsupported_parameter_type"


class InvalidKeyId(ParameterError):
    aws_code = "InvalidKeyId"
    code = "invalid_key_id"


class InvalidPolicyType(ParameterError):
    aws_code = "InvalidPolicyTypeException"
    code = "invalid_policy_type"


class InvalidPolicyAttribute(ParameterError):
    aws_code = "InvalidPolicyAttributeException"
    code = "invalid_policy_attribute"


class PoliciesLimitExceeded(ParameterError):
    aws_code = "PoliciesLimitExceededException"
    code = "policies_limit_exceeded"


class IncompatiblePolicy(ParameterError):
    aws_code = "IncompatiblePolicyException"
    code = "incompatible_policy"


class InvalidFilterKey(ParameterError):
    aws_code = "InvalidFilterKey"
    code = "invalid_filter_key"


class InvalidFilterOption(ParameterError):
    aws_code = "InvalidFilterOption"
    code = "invalid_filter_option"


class InvalidFilterValue(ParameterError):
    aws_code = "InvalidFilterValue"
    code = "invalid_filter_value"


class InvalidNextToken(ParameterError):
    aws_code = "InvalidNextToken"
    code = "invalid_next_token"


class InvalidResourceId(ParameterError):
    aws_code = "InvalidResourceId"
    code = "invalid_resource_id"
    http_status = 404


class TooManyTagsError(ParameterError):
    aws_code = "TooManyTagsError"
    code = "too_many_tags"


class TooManyUpdates(ParameterError):
    aws_code = "TooManyUpdates"
    code = "too_many_updates"
    http_status = 409
