"""Errors of identity and access, each with its AWS error code."""

from bosun.lib.errors import AccessDenied, BosunError

__all__ = ["AccessDenied", "AccessKeyError", "PolicyInvalid", "PolicyReadOnly"]


class PolicyInvalid(BosunError):
    aws_code = "MalformedPolicyDocumentException"
    code = "policy_invalid"


class PolicyReadOnly(BosunError):
    aws_code = "InvalidInputException"
    code = "policy_read_only"


class AccessKeyError(BosunError):
    aws_code = "InvalidInputException"
    code = "access_key_invalid"
