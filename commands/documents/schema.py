"""SSM document schema 2.2 for Command documents: what a valid document is.

`document_validate(body)` checks a parsed document and returns its `DocumentSpec`; a problem
raises InvalidDocumentContent naming the field's path (`mainSteps[1].inputs.runCommand`),
which `document_parse()` turns into a line of the text as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bosun_agent import protocol

from commands.documents.content import Path, content_load, line_of, path_text
from commands.documents.values import PLACEHOLDER, ParameterSpec, value_problem
from commands.exceptions import InvalidDocumentContent, InvalidDocumentSchemaVersion

SCHEMA_VERSIONS = ("2.2",)
PARAMETER_TYPES = ("String", "StringList", "Integer", "Boolean", "StringMap", "MapList")
PLATFORMS = ("Linux", "Windows", "MacOS")
SCRIPT_ACTIONS = (protocol.ACTION_RUN_SHELL_SCRIPT, protocol.ACTION_RUN_POWERSHELL_SCRIPT)
ACTIONS = (*SCRIPT_ACTIONS, protocol.ACTION_REFRESH_HOST_FACTS)
# Which platforms each action runs on; a document's platform types are their union.
ACTION_PLATFORMS = {
    protocol.ACTION_RUN_SHELL_SCRIPT: ("Linux", "MacOS"),
    protocol.ACTION_RUN_POWERSHELL_SCRIPT: ("Windows", "Linux", "MacOS"),
    protocol.ACTION_REFRESH_HOST_FACTS: PLATFORMS,
}
MAX_STEPS = 100
MAX_PARAMETERS = 50
PARAMETER_NAME = re.compile(r"^[a-zA-Z0-9_]{1,64}$")
STEP_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,100}$")
_TOP_KEYS = {"schemaVersion", "description", "parameters", "mainSteps"}
_PARAMETER_KEYS = {
    "type",
    "description",
    "default",
    "allowedValues",
    "allowedPattern",
    "minItems",
    "maxItems",
    "minChars",
    "maxChars",
    "displayType",
}
_SCRIPT_INPUTS = {"runCommand", "workingDirectory", "timeoutSeconds"}
MAX_TIMEOUT_SECONDS = 172800  # 48 hours, as AWS's runShellScript


@dataclass(frozen=True)
class StepSpec:
    name: str
    action: str
    inputs: dict[str, Any]
    precondition: dict[str, Any] | None = None


@dataclass(frozen=True)
class DocumentSpec:
    schema_version: str
    description: str
    parameters: dict[str, ParameterSpec] = field(default_factory=dict)
    steps: tuple[StepSpec, ...] = ()

    @property
    def platform_types(self) -> list[str]:
        platforms: set[str] = set()
        for step in self.steps:
            allowed = set(ACTION_PLATFORMS[step.action])
            if step.precondition:
                allowed &= {step.precondition["StringEquals"][1]}
            platforms |= allowed
        return [p for p in PLATFORMS if p in platforms]


class _Problem(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def document_parse(content: str, content_format: str) -> tuple[dict[str, Any], DocumentSpec]:
    """Parse and validate document text; errors name the field and, where it can, the line."""
    body = content_load(content, content_format)
    try:
        return body, _validated(body)
    except _Problem as problem:
        line = line_of(content, problem.path)
        where = path_text(problem.path)
        at = f" (line {line})" if line else ""
        error_class = (
            InvalidDocumentSchemaVersion
            if problem.path == ("schemaVersion",)
            else InvalidDocumentContent
        )
        raise error_class(f"{where}{at}: {problem.message}", field=where, line=line) from None


def document_spec(body: dict[str, Any]) -> DocumentSpec:
    """The spec of a stored (already validated) document body."""
    try:
        return _validated(body)
    except _Problem as problem:
        raise InvalidDocumentContent(f"{path_text(problem.path)}: {problem.message}") from None


def _validated(body: dict[str, Any]) -> DocumentSpec:
    unknown = sorted(set(body) - _TOP_KEYS)
    if unknown:
        raise _Problem(
            (unknown[0],),
            f"unknown key; a Command document has {', '.join(sorted(_TOP_KEYS))}",
        )
    version = body.get("schemaVersion")
    if version is None:
        raise _Problem(("schemaVersion",), 'is required; write "2.2"')
    if str(version) not in SCHEMA_VERSIONS:
        raise _Problem(
            ("schemaVersion",), f"{version!r} is not supported; Command documents use 2.2"
        )
    description = body.get("description", "")
    if not isinstance(description, str):
        raise _Problem(("description",), "must be text")
    parameters = _parameters(body.get("parameters") or {})
    steps = _steps(body.get("mainSteps"), parameters)
    return DocumentSpec(str(version), description, parameters, steps)


def _parameters(raw: Any) -> dict[str, ParameterSpec]:
    if not isinstance(raw, dict):
        raise _Problem(("parameters",), "must be a mapping of parameter names to definitions")
    if len(raw) > MAX_PARAMETERS:
        raise _Problem(("parameters",), f"has {len(raw)} parameters; at most {MAX_PARAMETERS}")
    specs = {}
    for name, definition in raw.items():
        specs[name] = _parameter(str(name), definition)
    return specs


def _parameter(name: str, raw: Any) -> ParameterSpec:
    here: Path = ("parameters", name)
    if not PARAMETER_NAME.match(name):
        raise _Problem(here, "a parameter name is letters, digits and _ (at most 64)")
    if not isinstance(raw, dict):
        raise _Problem(here, "a parameter definition is a mapping with at least a type")
    unknown = sorted(set(raw) - _PARAMETER_KEYS)
    if unknown:
        raise _Problem((*here, unknown[0]), "unknown key in a parameter definition")
    kind = raw.get("type")
    if kind not in PARAMETER_TYPES:
        raise _Problem((*here, "type"), f"must be one of {', '.join(PARAMETER_TYPES)}")
    allowed_values = raw.get("allowedValues", [])
    if not isinstance(allowed_values, list) or not all(
        isinstance(v, (str, int, bool)) for v in allowed_values
    ):
        raise _Problem((*here, "allowedValues"), "must be a list of values")
    pattern = raw.get("allowedPattern", "")
    if not isinstance(pattern, str):
        raise _Problem((*here, "allowedPattern"), "must be a regular expression (text)")
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _Problem(
                (*here, "allowedPattern"), f"is not a regular expression: {exc}"
            ) from None
    numbers = {}
    for key in ("minItems", "maxItems", "minChars", "maxChars"):
        value = raw.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise _Problem((*here, key), "must be a whole number, 0 or more")
        numbers[key] = value
    for text in ("description", "displayType"):
        if not isinstance(raw.get(text, ""), str):
            raise _Problem((*here, text), "must be text")
    spec = ParameterSpec(
        name=name,
        type=kind,
        description=raw.get("description", ""),
        default=raw.get("default"),
        has_default="default" in raw,
        allowed_values=tuple(_text(v) for v in allowed_values),
        allowed_pattern=pattern,
        min_items=numbers["minItems"],
        max_items=numbers["maxItems"],
        min_chars=numbers["minChars"],
        max_chars=numbers["maxChars"],
        display_type=raw.get("displayType", ""),
    )
    if spec.has_default:
        # A default must itself be a valid value (the send checks values the same way).
        from_default = value_problem(spec, spec.default, is_default=True)
        if from_default:
            raise _Problem((*here, "default"), from_default)
    return spec


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _steps(raw: Any, parameters: dict[str, ParameterSpec]) -> tuple[StepSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise _Problem(("mainSteps",), "is required: a list of at least one step")
    if len(raw) > MAX_STEPS:
        raise _Problem(("mainSteps",), f"has {len(raw)} steps; at most {MAX_STEPS}")
    steps = []
    names: set[str] = set()
    for index, step in enumerate(raw):
        here: Path = ("mainSteps", index)
        if not isinstance(step, dict):
            raise _Problem(here, "a step is a mapping with action, name and inputs")
        unknown = sorted(set(step) - {"action", "name", "inputs", "precondition"})
        if unknown:
            raise _Problem((*here, unknown[0]), "unknown key in a step")
        action = step.get("action")
        if action not in ACTIONS:
            raise _Problem((*here, "action"), f"must be one of {', '.join(ACTIONS)}")
        name = step.get("name")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            raise _Problem((*here, "name"), "is required: letters, digits, _ . - (at most 100)")
        if name in names:
            raise _Problem((*here, "name"), f"{name!r} is the name of an earlier step")
        names.add(name)
        inputs = step.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise _Problem((*here, "inputs"), "must be a mapping")
        _check_inputs(here, action, inputs)
        precondition = step.get("precondition")
        if precondition is not None:
            _check_precondition((*here, "precondition"), precondition)
        _check_references((*here, "inputs"), inputs, parameters)
        steps.append(StepSpec(name=name, action=action, inputs=inputs, precondition=precondition))
    return tuple(steps)


def _check_inputs(here: Path, action: str, inputs: dict[str, Any]) -> None:
    if action not in SCRIPT_ACTIONS:
        if inputs:
            raise _Problem((*here, "inputs"), f"{action} takes no inputs")
        return
    unknown = sorted(set(inputs) - _SCRIPT_INPUTS)
    if unknown:
        raise _Problem((*here, "inputs", unknown[0]), f"unknown input of {action}")
    commands = inputs.get("runCommand")
    if isinstance(commands, str):
        if not commands.strip():
            raise _Problem((*here, "inputs", "runCommand"), "is empty")
    elif (
        not isinstance(commands, list)
        or not commands
        or not all(isinstance(line, str) for line in commands)
    ):
        raise _Problem(
            (*here, "inputs", "runCommand"), "is required: a list of command lines (text)"
        )
    directory = inputs.get("workingDirectory", "")
    if not isinstance(directory, str):
        raise _Problem((*here, "inputs", "workingDirectory"), "must be text")
    timeout = inputs.get("timeoutSeconds")
    if timeout is not None and not _parameter_placeholder(timeout):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, str)):
            raise _Problem((*here, "inputs", "timeoutSeconds"), "must be a whole number of seconds")
        try:
            seconds = int(timeout)
        except ValueError:
            raise _Problem(
                (*here, "inputs", "timeoutSeconds"), "must be a whole number of seconds"
            ) from None
        if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
            raise _Problem(
                (*here, "inputs", "timeoutSeconds"),
                f"must be between 1 and {MAX_TIMEOUT_SECONDS} seconds",
            )


def _check_precondition(here: Path, raw: Any) -> None:
    if (
        not isinstance(raw, dict)
        or set(raw) != {"StringEquals"}
        or not isinstance(raw["StringEquals"], list)
        or len(raw["StringEquals"]) != 2
        or raw["StringEquals"][0] != "platformType"
    ):
        raise _Problem(here, 'must be {"StringEquals": ["platformType", "Linux"]}')
    if raw["StringEquals"][1] not in PLATFORMS:
        raise _Problem(here, f"the platform type must be one of {', '.join(PLATFORMS)}")


def _parameter_placeholder(value: Any) -> bool:
    return isinstance(value, str) and bool(PLACEHOLDER.fullmatch(value.strip()))


def _check_references(here: Path, value: Any, parameters: dict[str, ParameterSpec]) -> None:
    """Every `{{ name }}` a step uses must be a declared parameter."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            if match.group(1) not in parameters:
                raise _Problem(
                    here, f"uses {{{{ {match.group(1)} }}}}, which is not a declared parameter"
                )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_references((*here, index), item, parameters)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_references((*here, key), item, parameters)
