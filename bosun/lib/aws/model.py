"""SSM's service model, as botocore ships it, and input checked against it the way AWS checks.

The model (`botocore/data/ssm/2014-11-06/service-2.json`) is the schema every SDK was built
from: required members, types, lengths, ranges, enums and patterns. Checking our input against
it gives the same `ValidationException` texts AWS gives, e.g. "1 validation error detected:
Value '' at 'name' failed to satisfy constraint: Member must have length greater than or
equal to 1", with member paths in camelCase. A value of the wrong JSON type is a
`SerializationException`, as AWS's JSON protocol answers it. Sensitive members (a parameter's
value) are never echoed in a message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

from bosun.lib.aws import errors

logger = logging.getLogger(__name__)

_INTEGERS = frozenset({"integer", "long"})
_FLOATS = frozenset({"double", "float"})


@functools.cache
def service_model() -> ServiceModel:
    return ServiceModel(Loader().load_service_model("ssm", "service-2"), service_name="ssm")


def operation_model(name: str) -> OperationModel | None:
    try:
        return service_model().operation_model(name)
    except Exception:  # botocore's OperationNotFoundError and kin
        return None


def validate(operation: OperationModel, params: dict[str, Any]) -> dict[str, Any]:
    """`params` without null members, checked against the operation's input shape."""
    shape = operation.input_shape
    if shape is None:
        return {}
    problems: list[str] = []
    cleaned = _structure(shape, params, "", problems)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise errors.validation(f"{count} validation {noun} detected: " + "; ".join(problems))
    return cleaned


def _member_path(parent: str, name: str) -> str:
    member = name[:1].lower() + name[1:]
    return f"{parent}.{member}" if parent else member


def _structure(shape: Any, value: Any, path: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "a JSON object")
    cleaned: dict[str, Any] = {}
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(
                f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: "
                "Member must not be null"
            )
    for name, member in shape.members.items():
        if value.get(name) is None:
            continue
        cleaned[name] = _check(member, value[name], _member_path(path, name), problems)
    return cleaned


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, path, problems)
    if kind == "list":
        if not isinstance(value, list):
            raise _wrong_type(path, "a JSON array")
        _length(shape, value, len(value), path, problems)
        member = shape.member
        return [
            _check(member, item, f"{path}.{index}.member", problems)
            for index, item in enumerate(value, start=1)
            if item is not None
        ]
    if kind == "map":
        if not isinstance(value, dict):
            raise _wrong_type(path, "a JSON object")
        _length(shape, value, len(value), path, problems)
        key_shape, value_shape = shape.key, shape.value
        return {
            _check(key_shape, key, f"{path}.key", problems): _check(
                value_shape, item, f"{path}.value", problems
            )
            for key, item in value.items()
            if item is not None
        }
    if kind == "string":
        if not isinstance(value, str):
            raise _wrong_type(path, "a string")
        _length(shape, value, len(value), path, problems)
        enum = shape.enum
        if enum and value not in enum:
            problems.append(
                _failed(
                    shape, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"
                )
            )
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            problems.append(
                _failed(
                    shape, value, path, f"Member must satisfy regular expression pattern: {pattern}"
                )
            )
        return value
    if kind in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(path, "an integer")
        _range(shape, value, path, problems)
        return value
    if kind in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(path, "a number")
        _range(shape, value, path, problems)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _wrong_type(path, "true or false")
        return value
    if kind == "timestamp":
        return _timestamp(value, path)
    if kind == "blob":
        if not isinstance(value, str):
            raise _wrong_type(path, "a base64 string")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _wrong_type(path, "a base64 string") from None
        _length(shape, data, len(data), path, problems)
        return data
    return value


def _length(shape: Shape, value: Any, size: int, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        problems.append(
            _failed(shape, value, path, f"Member must have length greater than or equal to {low}")
        )
    if high is not None and size > high:
        problems.append(
            _failed(shape, value, path, f"Member must have length less than or equal to {high}")
        )


def _range(shape: Shape, value: float, path: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(
            _failed(shape, value, path, f"Member must have value greater than or equal to {low}")
        )
    if high is not None and value > high:
        problems.append(
            _failed(shape, value, path, f"Member must have value less than or equal to {high}")
        )


def _failed(shape: Shape, value: Any, path: str, constraint: str) -> str:
    if shape.metadata.get("sensitive"):
        return f"Value at '{path}' failed to satisfy constraint: {constraint}"
    return f"Value {_shown(value)} at '{path}' failed to satisfy constraint: {constraint}"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 200 else value[:200] + "…"
        return f"'{text}'"
    if isinstance(value, list):
        return "'[" + ", ".join(str(item)[:50] for item in value[:20]) + "]'"
    if isinstance(value, dict):
        return "'" + json.dumps(value, default=str)[:200] + "'"
    return str(value)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        # Java syntax Python lacks: the operation's own checks still apply.
        logger.warning("the SSM model's pattern %r does not compile here; not checked", pattern)
        return None


def _matches(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    # The model's patterns are Java's, matched against the whole value.
    return compiled is None or compiled.fullmatch(value) is not None


def _timestamp(value: Any, path: str) -> datetime:
    if isinstance(value, bool):
        raise _wrong_type(path, "a timestamp")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise _wrong_type(path, "a timestamp") from None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _wrong_type(path, "a timestamp") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise _wrong_type(path, "a timestamp")


def _wrong_type(path: str, expected: str) -> errors.AwsError:
    where = f"'{path}'" if path else "the top level"
    return errors.serialization(f"Expected {expected} at {where}.")
