"""AWS JSON 1.1 on the wire: the operation from X-Amz-Target, the JSON body, and answers with
`x-amzn-RequestId` and `Date`, timestamps as epoch numbers (ssm-api.md "Protocol")."""

from __future__ import annotations

import json
import math
import re
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


def check_length(content_length: str | None) -> None:
    """SerializationException when the declared body is larger than Bosun accepts."""
    try:
        size = int(content_length or 0)
    except ValueError:
        raise errors.serialization("The Content-Length header is not a number.") from None
    if size > MAX_BODY_BYTES:
        raise errors.serialization(
            f"The request body is {size} bytes; Bosun accepts at most {MAX_BODY_BYTES}."
        )


def body_of(raw: bytes) -> dict[str, Any]:
    """The request's JSON object; SerializationException for anything else."""
    if len(raw) > MAX_BODY_BYTES:
        raise errors.serialization(
            f"The request body is {len(raw)} bytes; Bosun accepts at most {MAX_BODY_BYTES}."
        )
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.serialization("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise errors.serialization("The request body must be a JSON object.")
    if _depth(data) > MAX_NESTING:
        raise errors.serialization("The request body is nested too deeply.")
    # Only the escapes `\u0000` and `\ud800`-`\udfff` make strings no database or UTF-8
    # encoder takes (raw control characters and invalid UTF-8 are not JSON): look for those
    # only when the text has such an escape.
    if "\\u" in text and _UNSTORABLE_ESCAPE.search(text) and _unstorable(data):
        raise errors.serialization(
            "The request body holds a NUL character or a lone UTF-16 surrogate (\\u0000, "
            "\\ud800-\\udfff), which Bosun does not store."
        )
    return data


def respond(data: dict[str, Any], *, request_id: str, status: int = 200) -> HttpResponse:
    body = json.dumps(data, default=_encode, ensure_ascii=False, separators=(",", ":"))
    # "replace": a lone surrogate that reached an answer must not turn it into a 500.
    response = HttpResponse(
        body.encode("utf-8", "replace"), status=status, content_type=CONTENT_TYPE
    )
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


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):  # 1e400: no number a client meant, and not JSON once echoed
        raise ValueError(f"{text[:40]} is out of range")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_unstorable(key) or _unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_NESTING:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level + 1)
    return level
