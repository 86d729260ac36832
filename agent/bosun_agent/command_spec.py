"""What a RunCommand asks for and the parts of its reply (PROTOCOL.md "Run Command").

Shared by the real runner (`bosun_agent.commands`) and the simulator's virtual nodes, so the
two parse a payload and shape a reply the same way.
"""

from __future__ import annotations

import contextlib
import math
import platform
import re
import time
from dataclasses import dataclass, field
from typing import Any

from bosun_agent import protocol
from bosun_agent.messages import Reply

DEFAULT_TIMEOUT_SECONDS = 3600.0
DEFAULT_OUTPUT_LIMIT = 8 * 1024 * 1024
# {{ssm-secure:NAME}}: the only references the server leaves for the agent to fill in.
SECURE_REFERENCE = re.compile(r"\{\{\s*ssm-secure:([^{}\s]+)\s*\}\}")
PLATFORM_VARIABLES = ("platformType", "{{platformType}}", "{{ platformType }}")
# What an agent-side failure reports as the step's exit code (it could not start the step).
AGENT_FAILURE_RESPONSE_CODE = 1


class PayloadError(ValueError):
    """The payload (or one step's part of it) is not what the protocol describes."""


def _number(value: Any, name: str, default: float) -> float:
    """A positive number of seconds. Documents pass them through parameters, which are
    strings ("timeoutSeconds": "{{ executionTimeout }}"), so "3600" counts as 3600."""
    if value is None or value == "":
        return default
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is None or not math.isfinite(number) or number <= 0:
        raise PayloadError(f"{name} must be a positive number of seconds, not {value!r}")
    return number


@dataclass(frozen=True)
class StepSpec:
    index: int
    name: str
    action: str
    precondition: Any
    inputs: dict[str, Any]

    def commands(self) -> list[str]:
        lines = self.inputs.get("runCommand", [])
        if isinstance(lines, str):
            return [lines]
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise PayloadError("runCommand must be a list of strings")
        return lines

    def timeout_seconds(self) -> float:
        return _number(self.inputs.get("timeoutSeconds"), "timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)

    def working_directory(self) -> str:
        directory = self.inputs.get("workingDirectory") or ""
        if not isinstance(directory, str):
            raise PayloadError("workingDirectory must be a string")
        return directory


@dataclass(frozen=True)
class CommandSpec:
    command_id: str
    execution_timeout: float
    output_limit: int
    secure_parameters: tuple[str, ...]
    steps: tuple[StepSpec, ...]

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CommandSpec:
        command_id = payload.get("command_id")
        if not isinstance(command_id, str) or not command_id:
            raise PayloadError("command_id is missing")
        limit = payload.get("output_limit", DEFAULT_OUTPUT_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise PayloadError(f"output_limit must be a positive integer, not {limit!r}")
        names = payload.get("secure_parameters") or []
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise PayloadError("secure_parameters must be a list of parameter names")
        raw_steps = payload.get("steps")
        if not isinstance(raw_steps, list):
            raise PayloadError("steps must be a list")
        steps = []
        for index, raw in enumerate(raw_steps):
            if not isinstance(raw, dict):
                raise PayloadError(f"step {index} is not an object")
            action = raw.get("action")
            if not isinstance(action, str) or not action:
                raise PayloadError(f"step {index} has no action")
            inputs = raw.get("inputs") or {}
            if not isinstance(inputs, dict):
                raise PayloadError(f"step {index} has inputs that are not an object")
            name = raw.get("name")
            steps.append(
                StepSpec(
                    index=index,
                    name=name if isinstance(name, str) and name else f"step{index}",
                    action=action,
                    precondition=raw.get("precondition"),
                    inputs=inputs,
                )
            )
        return cls(
            command_id=command_id,
            execution_timeout=_number(
                payload.get("execution_timeout"), "execution_timeout", DEFAULT_TIMEOUT_SECONDS
            ),
            output_limit=limit,
            secure_parameters=tuple(dict.fromkeys(names)),
            steps=tuple(steps),
        )


def host_platform_type() -> str:
    """This host as a precondition names it: Linux, Windows or MacOS."""
    system = platform.system()
    return {"Darwin": "MacOS"}.get(system, system)


def precondition_holds(precondition: Any, platform_type: str) -> bool:
    """`{"StringEquals": ["platformType", "Linux"]}`, the one form there is; absent: true.
    PayloadError for anything else (the step fails rather than guess)."""
    if precondition is None:
        return True
    operands = precondition.get("StringEquals") if isinstance(precondition, dict) else None
    if (
        not isinstance(precondition, dict)
        or len(precondition) != 1
        or not isinstance(operands, list)
        or len(operands) != 2
        or not all(isinstance(operand, str) for operand in operands)
    ):
        raise PayloadError(f"unsupported precondition {precondition!r}")
    first, second = str(operands[0]), str(operands[1])
    if first in PLATFORM_VARIABLES:
        return second == platform_type
    if second in PLATFORM_VARIABLES:
        return first == platform_type
    raise PayloadError(f"a precondition can only test platformType, not {precondition!r}")


def secure_references(text: str) -> list[str]:
    return SECURE_REFERENCE.findall(text)


def substitute_secure(text: str, values: dict[str, str]) -> str:
    return SECURE_REFERENCE.sub(lambda match: values[match.group(1)], text)


@dataclass
class StepResult:
    name: str
    action: str
    status: str = protocol.STEP_SKIPPED
    status_details: str = ""
    response_code: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    facts: dict[str, Any] | None = None
    ran: bool = False  # it started (a process, the facts): "the last step that ran" counts it

    def end(self, status: str, details: str = "", response_code: int | None = None) -> None:
        self.status = status
        self.status_details = details
        if response_code is not None:
            self.response_code = response_code
        self.finished_at = time.time()

    def fail(self, details: str) -> None:
        self.ran = True
        self.end(protocol.STEP_FAILED, details, AGENT_FAILURE_RESPONSE_CODE)

    def to_wire(self, streams: dict[str, Any]) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "name": self.name,
            "action": self.action,
            "status": self.status,
            "status_details": self.status_details,
            "response_code": self.response_code,
            "started_at": round(self.started_at, 3),
            "finished_at": round(self.finished_at or self.started_at, 3),
            "stdout": streams["stdout"],
            "stderr": streams["stderr"],
        }
        if self.facts is not None:
            wire["facts"] = self.facts
        return wire


def run_outcome(results: list[StepResult], cancelled: bool) -> str:
    statuses = {result.status for result in results}
    if cancelled or protocol.STEP_CANCELLED in statuses:
        return protocol.STEP_CANCELLED
    if protocol.STEP_TIMED_OUT in statuses:
        return protocol.STEP_TIMED_OUT
    if protocol.STEP_FAILED in statuses:
        return protocol.STEP_FAILED
    return protocol.STEP_SUCCESS


def run_response_code(results: list[StepResult], outcome: str) -> int:
    """The last step that ran's code; a run ended before any step ran reports the kill."""
    for result in reversed(results):
        if result.ran:
            return result.response_code
    if outcome in (protocol.STEP_CANCELLED, protocol.STEP_TIMED_OUT):
        return protocol.KILLED_RESPONSE_CODE
    return 0


def empty_stream() -> dict[str, Any]:
    return {"length": 0, "dropped_bytes": 0, "offset": 0, "data": ""}


def run_reply(result: dict[str, Any]) -> Reply:
    """`Success` when every step is Success or Skipped (the outcome says so), else `Failed`."""
    success = result["outcome"] == protocol.STEP_SUCCESS
    return Reply(protocol.REPLY_SUCCESS if success else protocol.REPLY_FAILED, result)
