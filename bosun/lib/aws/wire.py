"""AWS JSON 1.1 on the wire: the operation from X-Amz-Target, the JSON body, and answers with
`x-amzn-RequestId` and `Date`, timestamps as epoch numbers (ssm-api.md "Protocol")."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.http import HttpResponse
from django.utils.http import http_date

from bosun.lib.aws import errors

TARGET_PREFIX = "AmazonSSM."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 1024 * 1024  # a document is the largest input: 64 KiB of content, escaped
MAX_NESTING = 32


def new_request_id() -> str:
    return str(uuid.uuid4())


def operation_of(target: str) -> str:
    """`AmazonSSM.GetParameter` → `GetParameter`; UnknownOperationException otherwise."""
    prefix, dot, name = target.partition(".")
    if not dot or f"{prefix}." != TARGET_PREFIX or not name.isalnum():
        raise errors.unknown_operation(target[:100])
    return name


def body_of(raw: bytes) -> dict[str, Any]:
    """The request's JSON object; SerializationException for anything else."""
    if len(raw) > MAX_BODY_BYTES:
        raise errors.serialization(
            f"The request body is {len(raw)} bytes; Bosun accepts at most {MAX_BODY_BYTES}."
        )
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.serialization("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise errors.serialization("The request body must be a JSON object.")
    if _depth(data) > MAX_NESTING:
        raise errors.serialization("The request body is nested too deeply.")
    return data


def respond(data: dict[str, Any], *, request_id: str, status: int = 200) -> HttpResponse:
    body = json.dumps(data, default=_encode, ensure_ascii=False, separators=(",", ":"))
    response = HttpResponse(body.encode(), status=status, content_type=CONTENT_TYPE)
    response["x-amzn-RequestId"] = request_id
    response["Date"] = http_date()
    response["Cache-Control"] = "no-store"  # answers carry decrypted secrets
    return response


def respond_error(error: errors.AwsError, *, request_id: str) -> HttpResponse:
    # Parameter Store's shapes name the text `message`, the others `Message`: send both.
    return respond(
        {"__type": error.code, "message": error.message, "Message": error.message},
        request_id=request_id,
        status=error.status,
    )


def epoch(moment: datetime) -> float:
    return round(moment.timestamp(), 3)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return epoch(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_NESTING:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level + 1)
    return level
