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
import logging
import re
import sys
import unicodedata
from datetime import UTC, datetime
from typing import Any

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

from bosun.lib.aws import errors

logger = logging.getLogger(__name__)

_INTEGERS = frozenset({"integer", "long"})
_FLOATS = frozenset({"double", "float"})
_BOUNDS = {"integer": 2**31, "long": 2**63}


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
        # AWS reports the keys once for the whole map, with every constraint of the key's
        # shape: "Value '{a=b}' at 'parameters' failed to satisfy constraint: Map keys must
        # satisfy constraint: [Member must have length less than or equal to 255, …]".
        key_problems: list[str] = []
        cleaned = {
            _check(key_shape, key, f"{path}.key", key_problems): _check(
                value_shape, item, f"{path}.value", problems
            )
            for key, item in value.items()
            if item is not None
        }
        if key_problems:
            problems.append(
                _failed(
                    shape,
                    value,
                    path,
                    f"Map keys must satisfy constraint: [{', '.join(_constraints(key_shape))}]",
                )
            )
        return cleaned
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
        # Past the maximum length the value is refused anyway; a pattern is not run on it
        # (some of the model's patterns backtrack quadratically on a megabyte of input).
        high = shape.metadata.get("max")
        if pattern and (high is None or len(value) <= high) and not _matches(pattern, value):
            problems.append(
                _failed(
                    shape, value, path, f"Member must satisfy regular expression pattern: {pattern}"
                )
            )
        return value
    if kind in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(path, "an integer")
        # Java's int and long, as AWS's deserializer reads them: past those, not a number.
        if not -_BOUNDS[kind] <= value < _BOUNDS[kind]:
            raise _wrong_type(path, f"a {32 if kind == 'integer' else 64}-bit integer")
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


def _constraints(shape: Shape) -> list[str]:
    """Every constraint of a scalar shape, in the order AWS lists them."""
    listed = []
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if high is not None:
        listed.append(f"Member must have length less than or equal to {high}")
    if low is not None:
        listed.append(f"Member must have length greater than or equal to {low}")
    enum = getattr(shape, "enum", None)
    if enum:
        listed.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
    if shape.metadata.get("pattern"):
        listed.append(
            f"Member must satisfy regular expression pattern: {shape.metadata['pattern']}"
        )
    return listed


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
    if shape.metadata.get("sensitive") or _holds_secrets(shape.name):
        return f"Value at '{path}' failed to satisfy constraint: {constraint}"
    return f"Value {_shown(value)} at '{path}' failed to satisfy constraint: {constraint}"


@functools.cache
def _holds_secrets(name: str) -> bool:
    """Whether a value of the shape `name` may hold a sensitive member: a list of
    associations with sensitive parameters is never echoed either."""
    shapes = set(service_model().shape_names)
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen or current not in shapes:  # not SSM's: its own metadata decides
            continue
        shape = service_model().shape_for(current)
        seen.add(shape.name)
        if shape.metadata.get("sensitive"):
            return True
        kind = shape.type_name
        if kind == "structure":
            pending.extend(member.name for member in shape.members.values())
        elif kind == "list":
            pending.append(shape.member.name)
        elif kind == "map":
            pending.extend((shape.key.name, shape.value.name))
    return False


def _shown(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 200 else value[:200] + "…"
        return f"'{text}'"
    if isinstance(value, list | dict):
        # As Java prints collections: [a, b] and {key=value, …}.
        text = _java(value)
        return f"'{text if len(text) <= 200 else text[:200] + '…'}'"
    # Numbers are quoted too: "Value '100' at 'maxResults' failed to satisfy constraint: …".
    return f"'{value}'"


def _java(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_java(item) for item in value[:20]) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{key}={_java(item)}" for key, item in list(value.items())[:20]) + "}"
        )
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:200]


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(_pythonic(pattern))
    except re.error:
        # Java syntax Python lacks: the operation's own checks still apply.
        logger.warning("the SSM model's pattern %r does not compile here; not checked", pattern)
        return None


_JAVA_CATEGORY = re.compile(r"\\p\{([LMNPSZC])\}")
_JAVA_SHORTHAND_DASH = re.compile(r"(?<!\\)(\\[wdsWDS])-")


def _pythonic(pattern: str) -> str:
    """The model's Java pattern in Python's syntax: `\\p{L}` and kin (tag keys and values)
    become explicit code point ranges; `[\\w-\\/]` (Java: a literal `-` after a class
    shorthand) escapes its `-`."""
    pattern = _JAVA_SHORTHAND_DASH.sub(r"\1\\-", pattern)
    if "\\p{" not in pattern:
        return pattern
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        found = _JAVA_CATEGORY.match(pattern, index)
        if found:
            ranges = _category_ranges()[found.group(1)]
            out.append(ranges if in_class else f"[{ranges}]")
            index = found.end()
            continue
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


@functools.cache
def _category_ranges() -> dict[str, str]:
    """Each Unicode major category (L, M, N, P, S, Z, C) as a regex class body of ranges."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    previous, start, end = "", 0, -1
    for point in range(sys.maxunicode + 1):
        major = unicodedata.category(chr(point))[0]
        if major == previous and point == end + 1:
            end = point
            continue
        if previous:
            ranges.setdefault(previous, []).append((start, end))
        previous, start, end = major, point, point
    ranges.setdefault(previous, []).append((start, end))
    return {
        major: "".join(
            re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
            for low, high in spans
        )
        for major, spans in ranges.items()
    }


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
