"""Document parameters: their definitions, checking values against them, substituting them.

A send gives values as AWS's wire does, `{name: [text, ...]}` (a bare text is taken as one
value); each is checked against its definition (type, allowedValues, allowedPattern, item and
character counts), a missing one takes its default, and a missing required one is refused.
`{{ name }}` in a step's inputs is then replaced: a string that is only the placeholder takes
the value itself (so `"runCommand": "{{ commands }}"` becomes the list), otherwise the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from commands.exceptions import InvalidParameters

PLACEHOLDER = re.compile(r"\{\{\s*([a-zA-Z0-9_]+)\s*\}\}")
MAX_VALUE_CHARS = 64 * 1024


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: str
    description: str = ""
    default: Any = None
    has_default: bool = False
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str = ""
    min_items: int | None = None
    max_items: int | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    display_type: str = ""

    @property
    def required(self) -> bool:
        return not self.has_default

    @property
    def is_list(self) -> bool:
        return self.type == "StringList"


def value_problem(spec: ParameterSpec, raw: Any, *, is_default: bool = False) -> str:
    """What is wrong with `raw` as a value of `spec` ("" when nothing is)."""
    try:
        value_parse(spec, raw, is_default=is_default)
    except ValueError as exc:
        return str(exc)
    return ""


def value_parse(spec: ParameterSpec, raw: Any, *, is_default: bool = False) -> Any:
    """The typed value: str, list[str], int, bool, dict or list[dict]. ValueError says why not."""
    if spec.type == "StringList":
        items = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(item, str) for item in items):
            raise ValueError("every item of a StringList is text")
        _check_count(spec, len(items))
        for item in items:
            _check_text(spec, item)
        return list(items)
    value = _single(spec, raw, is_default)
    if spec.type == "String":
        if not isinstance(value, str):
            raise ValueError("a String parameter takes text")
        _check_text(spec, value)
        return value
    if spec.type == "Integer":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError("an Integer parameter takes a whole number")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number") from None
        _check_allowed(spec, str(number))
        return number
    if spec.type == "Boolean":
        if isinstance(value, bool):
            flag = value
        elif isinstance(value, str) and value.lower() in ("true", "false"):
            flag = value.lower() == "true"
        else:
            raise ValueError("a Boolean parameter takes true or false")
        return flag
    decoded = _json_value(value)
    if spec.type == "StringMap":
        if not isinstance(decoded, dict):
            raise ValueError("a StringMap parameter takes a JSON object")
        return decoded
    if not isinstance(decoded, list) or not all(isinstance(item, dict) for item in decoded):
        raise ValueError("a MapList parameter takes a JSON list of objects")
    _check_count(spec, len(decoded))
    return decoded


def _single(spec: ParameterSpec, raw: Any, is_default: bool) -> Any:
    if isinstance(raw, list) and not is_default:
        if len(raw) != 1:
            raise ValueError(f"a {spec.type} parameter takes exactly one value, not {len(raw)}")
        return raw[0]
    return raw


def _json_value(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return value
    if not isinstance(value, str):
        raise ValueError("expected JSON text")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the value is not JSON ({exc.msg})") from None


def _check_count(spec: ParameterSpec, count: int) -> None:
    if spec.min_items is not None and count < spec.min_items:
        raise ValueError(f"at least {spec.min_items} item(s) are required, {count} given")
    if spec.max_items is not None and count > spec.max_items:
        raise ValueError(f"at most {spec.max_items} item(s) are allowed, {count} given")


def _check_text(spec: ParameterSpec, text: str) -> None:
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(f"a value is at most {MAX_VALUE_CHARS} characters")
    if spec.min_chars is not None and len(text) < spec.min_chars:
        raise ValueError(f"at least {spec.min_chars} characters are required")
    if spec.max_chars is not None and len(text) > spec.max_chars:
        raise ValueError(f"at most {spec.max_chars} characters are allowed")
    if spec.allowed_pattern and not re.fullmatch(spec.allowed_pattern, text):
        # The value is not echoed: it may be something the sender would not want logged.
        raise ValueError(f"a value does not match the allowed pattern {spec.allowed_pattern}")
    _check_allowed(spec, text)


def _check_allowed(spec: ParameterSpec, text: str) -> None:
    if spec.allowed_values and text not in spec.allowed_values:
        raise ValueError(f"the value must be one of: {', '.join(spec.allowed_values)}")


def values_resolve(
    specs: Mapping[str, ParameterSpec], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Every declared parameter's typed value: the given one, else the default.

    Raises InvalidParameters naming the parameter (and the field, for forms)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise InvalidParameters(
            f"Parameter {unknown[0]} is not defined in the document "
            f"(it defines: {', '.join(specs) or 'no parameters'}).",
            field=f"parameters.{unknown[0]}",
        )
    values = {}
    for name, spec in specs.items():
        if name in given:
            raw = given[name]
            if not isinstance(raw, (list, str)):
                raise InvalidParameters(
                    f"Parameter {name}: give a list of text values.", field=f"parameters.{name}"
                )
            try:
                values[name] = value_parse(spec, raw)
            except ValueError as exc:
                raise InvalidParameters(
                    f"Parameter {name}: {exc}.", field=f"parameters.{name}"
                ) from None
        elif spec.has_default:
            values[name] = value_parse(spec, spec.default, is_default=True)
        else:
            raise InvalidParameters(
                f"Parameter {name} is required and has no default.", field=f"parameters.{name}"
            )
    return values


def substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """`value` (an input: text, list or mapping) with `{{ name }}` replaced."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value.strip())
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: _as_text(values.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            replaced = substitute(item, values)
            # ["{{ commands }}"] with a StringList: the lines join the list, not nest in it.
            if isinstance(item, str) and isinstance(replaced, list):
                items.extend(replaced)
            else:
                items.append(replaced)
        return items
    if isinstance(value, dict):
        return {key: substitute(item, values) for key, item in value.items()}
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
