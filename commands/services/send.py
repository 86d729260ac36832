"""Sending a command: validate everything, then write the command and all its invocations
in one transaction and send the first ones (rate control sends the rest as slots free up).

Nothing is written until every check has passed: the document and version, the parameter
values, the targets, MaxConcurrency and MaxErrors, the timeouts and every `{{ssm:…}}`
reference; so a refused send leaves no trace but its audit event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from access.authorization import Principal
from access.directory import user_arn
from commands import rates
from commands.documents.schema import MAX_TIMEOUT_SECONDS, SCRIPT_ACTIONS, StepSpec, document_spec
from commands.documents.values import substitute, values_resolve
from commands.exceptions import CommandsValidationError, InvalidParameters, TargetsMatchNothing
from commands.models import Command, DocumentVersion, Invocation
from commands.scope import command_arn, document_arn
from commands.selectors import document_version_get
from commands.services.dispatch import command_dispatch
from commands.services.settle import command_settle_on_commit
from fleet.models import ManagedNode
from fleet.targets import INSTANCE_IDS, MAX_INSTANCE_IDS, Resolution, targets_resolve
from parameters.exceptions import ParameterNotFound
from parameters.references import references_resolve, secure_references
from parameters.selectors import parameter_get

SEND = "ssm:SendCommand"
DEFAULT_TIMEOUT_SECONDS = 3600  # to deliver, as AWS's default
MIN_TIMEOUT_SECONDS = 30
MAX_DELIVERY_TIMEOUT_SECONDS = 2592000
DEFAULT_STEP_TIMEOUT = 3600
MAX_COMMENT = 100
# Per stream, per step: what the agent keeps of a command's output.
OUTPUT_LIMIT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CommandPlan:
    """A send that has passed every check and wrote nothing: what the review page shows and
    what command_send writes."""

    version: DocumentVersion
    parameters: dict[str, Any]
    payload: dict[str, Any]
    execution_timeout: int
    targets: list[dict[str, Any]]
    resolution: Resolution
    max_concurrency: str
    max_errors: str
    timeout_seconds: int
    comment: str

    @property
    def concurrency_limit(self) -> int:
        return rates.concurrency_limit(self.max_concurrency, self.resolution.total)

    @property
    def error_limit(self) -> int:
        return rates.error_limit(self.max_errors, self.resolution.total)


def command_plan(
    *,
    principal: Principal,
    document_name: str,
    document_version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    targets: Sequence[Mapping[str, Any]] | None = None,
    instance_ids: Sequence[str] | None = None,
    max_concurrency: str = rates.DEFAULT_MAX_CONCURRENCY,
    max_errors: str = rates.DEFAULT_MAX_ERRORS,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    comment: str = "",
) -> CommandPlan:
    """Every check of a send, writing nothing (a dry run): raises what command_send would."""
    rates.rate_check(max_concurrency, max_errors)
    timeout_seconds = _checked_timeout(timeout_seconds)
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise CommandsValidationError(
            f"A comment is at most {MAX_COMMENT} characters.", field="comment"
        )
    wanted = _targets(targets, instance_ids)
    version = document_version_get(
        principal=principal, name=document_name, version=document_version, action=SEND
    )
    payload, execution_timeout = _payload(principal, version, parameters)
    resolution = targets_resolve(principal=principal, targets=wanted, action=SEND)
    if not resolution.total:
        raise TargetsMatchNothing(_nothing_reached(resolution), field="targets")
    return CommandPlan(
        version=version,
        parameters=dict(parameters or {}),
        payload=payload,
        execution_timeout=execution_timeout,
        targets=wanted,
        resolution=resolution,
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        timeout_seconds=timeout_seconds,
        comment=comment,
    )


def command_send(
    *,
    principal: Principal,
    document_name: str,
    document_version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    targets: Sequence[Mapping[str, Any]] | None = None,
    instance_ids: Sequence[str] | None = None,
    max_concurrency: str = rates.DEFAULT_MAX_CONCURRENCY,
    max_errors: str = rates.DEFAULT_MAX_ERRORS,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    comment: str = "",
) -> Command:
    plan = command_plan(
        principal=principal,
        document_name=document_name,
        document_version=document_version,
        parameters=parameters,
        targets=targets,
        instance_ids=instance_ids,
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        timeout_seconds=timeout_seconds,
        comment=comment,
    )
    return _written(principal, plan)


def _written(principal: Principal, plan: CommandPlan) -> Command:
    resolution, version = plan.resolution, plan.version
    nodes = dict(ManagedNode.objects.filter(pk__in=resolution.node_ids).values_list("id", "name"))
    now = timezone.now()
    command_id = str(uuid.uuid4())
    payload = {**plan.payload, "command_id": command_id}
    with transaction.atomic():
        command = Command.objects.create(
            command_id=command_id,
            document=version.document,
            document_name=version.document.name,
            document_version=str(version.version),
            document_hash=version.content_hash,
            parameters=plan.parameters,
            targets=plan.targets,
            comment=plan.comment,
            max_concurrency=plan.max_concurrency,
            max_errors=plan.max_errors,
            concurrency_limit=plan.concurrency_limit,
            error_limit=plan.error_limit,
            timeout_seconds=plan.timeout_seconds,
            execution_timeout=plan.execution_timeout,
            expires_after=now + timedelta(seconds=plan.timeout_seconds),
            payload=payload,
            target_count=resolution.total,
            left_out=_left_out(resolution),
            requested_at=now,
            requested_by=principal.user,
            requested_by_arn=user_arn(principal.user),
        )
        Invocation.objects.bulk_create(
            Invocation(
                command=command,
                node_id=node_id,
                node_name=nodes.get(node_id, ""),
                sequence=sequence,
            )
            for sequence, node_id in enumerate(resolution.node_ids)
        )
        command_dispatch(command, now=now)
        principal.record(
            SEND,
            resources=[command_arn(command_id), document_arn(command.document_name)],
            params={
                "CommandId": command_id,
                "DocumentName": command.document_name,
                "DocumentVersion": command.document_version,
                "TargetCount": resolution.total,
                "Targets": plan.targets,
                "MaxConcurrency": plan.max_concurrency,
                "MaxErrors": plan.max_errors,
                "Comment": plan.comment or None,
            },
        )
        command_settle_on_commit(command.pk)
    return command


def _checked_timeout(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(value)
        except (TypeError, ValueError):
            value = -1
    if not MIN_TIMEOUT_SECONDS <= value <= MAX_DELIVERY_TIMEOUT_SECONDS:
        raise CommandsValidationError(
            f"TimeoutSeconds (the time to start on each node) must be between "
            f"{MIN_TIMEOUT_SECONDS} and {MAX_DELIVERY_TIMEOUT_SECONDS} seconds.",
            field="timeout_seconds",
        )
    return int(value)


def _targets(
    targets: Sequence[Mapping[str, Any]] | None, instance_ids: Sequence[str] | None
) -> list[dict[str, Any]]:
    if targets and instance_ids:
        raise CommandsValidationError(
            "Give either InstanceIds or Targets, not both.", field="targets"
        )
    if instance_ids:
        ids = list(instance_ids)
        if len(ids) > MAX_INSTANCE_IDS:
            raise CommandsValidationError(
                f"{len(ids)} instance ids given; at most {MAX_INSTANCE_IDS}. Target more nodes "
                "by tag or resource group.",
                field="targets",
            )
        return [{"Key": INSTANCE_IDS, "Values": ids}]
    if not targets:
        raise CommandsValidationError(
            "Name the nodes to run on: InstanceIds, or Targets by tag or resource group.",
            field="targets",
        )
    return [dict(target) for target in targets]


def _nothing_reached(resolution: Resolution) -> str:
    parts = []
    if resolution.refused_ids:
        parts.append(f"not allowed to send to: {', '.join(resolution.refused_ids)}")
    if resolution.unknown_ids:
        parts.append(f"not managed nodes: {', '.join(resolution.unknown_ids)}")
    if resolution.deregistered_ids:
        parts.append(f"deregistered: {', '.join(resolution.deregistered_ids)}")
    why = f" ({'; '.join(parts)})" if parts else ""
    return (
        f"The targets match no managed node you may send commands to{why}. Check the ids, "
        "tags or resource group, and that the nodes are registered."
    )


def _left_out(resolution: Resolution) -> dict[str, list[str]]:
    left_out = {
        "refused": resolution.refused_ids,
        "unknown": resolution.unknown_ids,
        "deregistered": resolution.deregistered_ids,
    }
    return {key: ids for key, ids in left_out.items() if ids}


def _payload(
    principal: Principal, version: DocumentVersion, given: Mapping[str, Any] | None
) -> tuple[dict[str, Any], int]:
    """What the agent receives (see agent/PROTOCOL.md "Run Command"), and the run's timeout."""
    spec = document_spec(version.body)
    values = values_resolve(spec.parameters, given)
    steps = [_step(principal, step, values) for step in spec.steps]
    secure: list[str] = []
    for step in steps:
        for line in _texts(step["inputs"]):
            secure.extend(secure_references(line))
    secure = list(dict.fromkeys(secure))
    _check_secure(principal, secure)
    execution_timeout = min(
        sum(step["inputs"].get("timeoutSeconds", DEFAULT_STEP_TIMEOUT) for step in steps),
        MAX_TIMEOUT_SECONDS,
    )
    payload = {
        "document_name": version.document.name,
        "document_version": str(version.version),
        "execution_timeout": execution_timeout,
        "output_limit": OUTPUT_LIMIT_BYTES,
        "secure_parameters": secure,
        "steps": steps,
    }
    return payload, execution_timeout


def _check_secure(principal: Principal, names: list[str]) -> None:
    """Each `{{ssm-secure:…}}` must exist and be readable by the sender now, so a send that
    would fail on every node is refused before it starts (the value is not read here)."""
    for name in names:
        try:
            parameter_get(principal=principal, name=name)
        except ParameterNotFound:
            raise InvalidParameters(
                f"The document refers to {{{{ssm-secure:{name}}}}}, but parameter {name} does "
                "not exist.",
                field="parameters",
            ) from None


def _step(principal: Principal, step: StepSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    inputs = _resolved(principal, substitute(step.inputs, values))
    if step.action in SCRIPT_ACTIONS:
        commands = inputs.get("runCommand")
        inputs["runCommand"] = [commands] if isinstance(commands, str) else list(commands)
        if not any(line.strip() for line in inputs["runCommand"]):
            raise InvalidParameters(
                f"Step {step.name} has no command to run.", field="parameters.commands"
            )
        inputs["workingDirectory"] = str(inputs.get("workingDirectory") or "")
        if "timeoutSeconds" in inputs:
            inputs["timeoutSeconds"] = _step_timeout(step, inputs["timeoutSeconds"])
    return {
        "name": step.name,
        "action": step.action,
        "precondition": step.precondition,
        "inputs": inputs,
    }


def _step_timeout(step: StepSpec, value: Any) -> int:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = 0
    if isinstance(value, bool) or not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        raise InvalidParameters(
            f"Step {step.name}: the timeout must be 1 to {MAX_TIMEOUT_SECONDS} seconds.",
            field="parameters.executionTimeout",
        )
    return seconds


def _resolved(principal: Principal, value: Any) -> Any:
    """`{{ssm:…}}` resolved as the sender; `{{ssm-secure:…}}` left for the agent."""
    if isinstance(value, str):
        return references_resolve(principal=principal, text=value)
    if isinstance(value, list):
        return [_resolved(principal, item) for item in value]
    if isinstance(value, dict):
        return {key: _resolved(principal, item) for key, item in value.items()}
    return value


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    return []
