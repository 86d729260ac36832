"""Run Command as AWS SSM operations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from bosun.lib.aws import errors
from bosun.lib.aws.registry import AwsCall, operation
from commands import selectors
from commands.api.common import invocation_steps, step_index
from commands.aws.common import (
    ERROR_SEPARATOR,
    PLUGIN_OUTPUT_CHARS,
    STDERR_CHARS,
    STDOUT_CHARS,
    aws_page,
    document_name,
    listing,
    moment,
    refuse_unsupported,
)
from commands.documents.builtin import canonical_name
from commands.exceptions import DuplicateInstanceId
from commands.models import (
    OPEN_INVOCATION_STATUSES,
    TERMINAL_COMMAND_STATUSES,
    Command,
    CommandStatus,
    Invocation,
    InvocationStatus,
)
from commands.services.cancel import command_cancel
from commands.services.send import command_send
from fleet.models import ManagedNode
from fleet.targets import INSTANCE_IDS

# --- Run Command ----------------------------------------------------------------------------

_S3 = (
    "Bosun keeps each command's output itself (GetCommandInvocation returns it); leave out "
    "OutputS3BucketName, OutputS3KeyPrefix and OutputS3Region."
)
_SNS = "Bosun sends no SNS notifications; leave out ServiceRoleArn and NotificationConfig."
_UNSUPPORTED_SEND_MEMBERS = {
    "OutputS3BucketName": _S3,
    "OutputS3KeyPrefix": _S3,
    "OutputS3Region": _S3,
    "ServiceRoleArn": _SNS,
    "NotificationConfig": _SNS,
    "AlarmConfiguration": "Bosun watches no CloudWatch alarms; leave out AlarmConfiguration.",
}

_NO_NOTIFICATIONS = {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""}
_NO_CLOUDWATCH = {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}


def _instance_ids_and_targets(command: Command) -> tuple[list[str], list[dict[str, Any]]]:
    """AWS reports nodes named by id in InstanceIds (Targets empty), and Targets otherwise."""
    targets = list(command.targets or [])
    if len(targets) == 1 and targets[0].get("Key") == INSTANCE_IDS:
        return list(targets[0].get("Values") or []), []
    return [], targets


def _command(call: AwsCall, command: Command) -> dict[str, Any]:
    """AWS's Command."""
    instance_ids, targets = _instance_ids_and_targets(command)
    return {
        "CommandId": command.command_id,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "Comment": command.comment,
        "ExpiresAfter": command.expires_after,
        "Parameters": command.parameters or {},
        "InstanceIds": instance_ids,
        "Targets": targets,
        "RequestedDateTime": command.requested_at,
        "Status": command.status,
        "StatusDetails": command.status_details,
        "OutputS3Region": call.region,
        "OutputS3BucketName": "",
        "OutputS3KeyPrefix": "",
        "MaxConcurrency": command.max_concurrency,
        "MaxErrors": command.max_errors,
        "TargetCount": command.target_count,
        "CompletedCount": command.completed_count,
        "ErrorCount": command.error_count,
        "DeliveryTimedOutCount": command.delivery_timed_out_count,
        "ServiceRole": "",
        "NotificationConfig": dict(_NO_NOTIFICATIONS),
        "CloudWatchOutputConfig": dict(_NO_CLOUDWATCH),
        "TimeoutSeconds": command.timeout_seconds,
    }


def _instance_ids(params: Mapping[str, Any]) -> list[str] | None:
    """InstanceIds, each at most once (DuplicateInstanceId, as AWS answers)."""
    ids = params.get("InstanceIds")
    if not ids:
        return None
    seen: set[str] = set()
    for node_id in ids:
        if node_id in seen:
            raise DuplicateInstanceId(f"The instance ID {node_id} is given more than once.")
        seen.add(node_id)
    return list(ids)


@operation("SendCommand")
def send_command(call: AwsCall) -> dict[str, Any]:
    p = call.params
    refuse_unsupported(p, _UNSUPPORTED_SEND_MEMBERS)
    if p.get("CloudWatchOutputConfig", {}).get("CloudWatchOutputEnabled"):
        raise errors.validation(
            "CloudWatchOutputConfig is not supported by Bosun: it keeps each command's output "
            "itself (GetCommandInvocation returns it)."
        )
    optional: dict[str, Any] = {}
    for member, argument in (
        ("MaxConcurrency", "max_concurrency"),
        ("MaxErrors", "max_errors"),
        ("TimeoutSeconds", "timeout_seconds"),
        ("Comment", "comment"),
    ):
        if member in p:
            optional[argument] = p[member]
    command = command_send(
        principal=call.principal,
        document_name=document_name(p["DocumentName"]),
        document_version=p.get("DocumentVersion"),
        parameters=p.get("Parameters"),
        targets=p.get("Targets"),
        instance_ids=_instance_ids(p),
        **optional,
    )
    return {"Command": _command(call, command)}


_COMMAND_FILTER_KEYS = ("InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName")
_EXECUTION_STAGES = {"Executing": False, "Complete": True}


def _command_filters(call: AwsCall) -> dict[str, str]:
    """ListCommands' and ListCommandInvocations' Filters, each key at most once."""
    given: dict[str, str] = {}
    for item in call.params.get("Filters", []):
        key, value = item["key"], item["value"]
        if key in given:
            raise errors.validation(f"The filter key {key} is given twice; give it once.")
        given[key] = value
    status = given.get("Status")
    if status is not None and status not in CommandStatus.values:
        raise errors.validation(
            f"The Status filter {status!s:.40} is not valid: use one of "
            f"{', '.join(CommandStatus.values)}."
        )
    stage = given.get("ExecutionStage")
    if stage is not None and stage not in _EXECUTION_STAGES:
        raise errors.validation(
            f"The ExecutionStage filter {stage!s:.40} is not valid: use Executing or Complete."
        )
    return given


def _by_time(rows: QuerySet[Any], given: Mapping[str, str], field: str) -> QuerySet[Any]:
    if "InvokedAfter" in given:
        rows = rows.filter(**{f"{field}__gte": moment(given["InvokedAfter"])})
    if "InvokedBefore" in given:
        rows = rows.filter(**{f"{field}__lte": moment(given["InvokedBefore"])})
    return rows


def _by_stage(rows: QuerySet[Any], given: Mapping[str, str], finished: Q) -> QuerySet[Any]:
    """The ExecutionStage filter: rows matching `finished` (Complete) or the others."""
    if "ExecutionStage" not in given:
        return rows
    if _EXECUTION_STAGES[given["ExecutionStage"]]:
        return rows.filter(finished)
    return rows.exclude(finished)


@operation("ListCommands")
def list_commands(call: AwsCall) -> dict[str, Any]:
    p = call.params
    given = _command_filters(call)
    rows = selectors.commands_list(
        principal=call.principal,
        filters=selectors.CommandFilter(
            status=given.get("Status", ""),
            document_name=given.get("DocumentName", ""),
            node_id=p.get("InstanceId", ""),
        ),
    )
    if "CommandId" in p:
        command = selectors.command_get(principal=call.principal, command_id=p["CommandId"])
        rows = rows.filter(pk=command.pk)
    rows = _by_time(rows, given, "requested_at")
    rows = _by_stage(rows, given, Q(status__in=TERMINAL_COMMAND_STATUSES))
    query = {"filters": given, "command": p.get("CommandId"), "node": p.get("InstanceId")}
    page = aws_page(rows, call, kind="commands", query=query, order=("-requested_at", "-id"))
    return listing("Commands", page, [_command(call, command) for command in page.items])


def _plugin_output(step: Mapping[str, Any]) -> str:
    output = str(step["stdout"]["content"])
    stderr = str(step["stderr"]["content"])
    if stderr:
        output += ERROR_SEPARATOR + stderr
    return output[:PLUGIN_OUTPUT_CHARS]


def _plugin(call: AwsCall, step: Mapping[str, Any]) -> dict[str, Any]:
    """AWS's CommandPlugin: one step of the document on one node."""
    plugin: dict[str, Any] = {
        "Name": step["name"],
        "Status": step["status"],
        "StatusDetails": step["status_details"],
        "ResponseCode": step["response_code"] if step["response_code"] is not None else -1,
        "Output": _plugin_output(step),
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "OutputS3Region": call.region,
        "OutputS3BucketName": "",
        "OutputS3KeyPrefix": "",
    }
    if step["started_at"] is not None:
        plugin["ResponseStartDateTime"] = step["started_at"]
    if step["finished_at"] is not None:
        plugin["ResponseFinishDateTime"] = step["finished_at"]
    return plugin


def _invocation(call: AwsCall, invocation: Invocation, *, details: bool) -> dict[str, Any]:
    """AWS's CommandInvocation."""
    command = invocation.command
    return {
        "CommandId": command.command_id,
        "InstanceId": invocation.node_id,
        "InstanceName": invocation.node_name,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "RequestedDateTime": command.requested_at,
        "Status": invocation.status,
        "StatusDetails": invocation.status_details,
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": (
            [_plugin(call, step) for step in invocation_steps(invocation, live=False)]
            if details
            else []
        ),
        "ServiceRole": "",
        "NotificationConfig": dict(_NO_NOTIFICATIONS),
        "CloudWatchOutputConfig": dict(_NO_CLOUDWATCH),
    }


@operation("ListCommandInvocations")
def list_command_invocations(call: AwsCall) -> dict[str, Any]:
    p = call.params
    given = _command_filters(call)
    action = "ssm:ListCommandInvocations"
    rows: QuerySet[Invocation]
    if "CommandId" in p:
        command = selectors.command_get(
            principal=call.principal, command_id=p["CommandId"], action=action
        )
        rows = selectors.invocations_visible(
            principal=call.principal, command=command, action=action
        )
        order: tuple[str, ...] = ("sequence",)
    else:
        # Across commands: those the caller may list, on the nodes they may see; newest first.
        commands = selectors.commands_list(
            principal=call.principal, filters=selectors.CommandFilter()
        )
        nodes = ManagedNode.objects.visible_to(call.principal, action)
        rows = Invocation.objects.filter(command__in=commands, node__in=nodes)
        order = ("-id",)
    if "InstanceId" in p:
        rows = rows.filter(node_id=p["InstanceId"])
    if "Status" in given:
        rows = rows.filter(status=given["Status"])
    if "DocumentName" in given:
        rows = rows.filter(command__document_name=canonical_name(given["DocumentName"]))
    rows = _by_time(rows, given, "command__requested_at")
    rows = _by_stage(rows, given, ~Q(status__in=OPEN_INVOCATION_STATUSES))
    details = bool(p.get("Details", False))
    query = {"filters": given, "command": p.get("CommandId"), "node": p.get("InstanceId")}
    page = aws_page(
        rows.select_related("command"), call, kind="invocations", query=query, order=order
    )
    items = [_invocation(call, invocation, details=details) for invocation in page.items]
    return listing("CommandInvocations", page, items)


def _aws_time(moment: datetime | None) -> str:
    """GetCommandInvocation's times are text, as AWS writes them: 2024-01-31T12:00:00.123Z."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _elapsed(start: datetime | None, end: datetime | None) -> str:
    """An ISO 8601 duration, as AWS writes ExecutionElapsedTime: PT0.038S."""
    if start is None or end is None:
        return ""
    return f"PT{max((end - start).total_seconds(), 0):.3f}S"


@operation("GetCommandInvocation")
def get_command_invocation(call: AwsCall) -> dict[str, Any]:
    p = call.params
    invocation = selectors.invocation_get(
        principal=call.principal, command_id=p["CommandId"], node_id=p["InstanceId"]
    )
    command = invocation.command
    steps = invocation_steps(invocation, live=True)
    shape: dict[str, Any] = {
        "CommandId": command.command_id,
        "InstanceId": invocation.node_id,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
    }
    if "PluginName" in p:
        step = steps[step_index(invocation, p["PluginName"])]
        started, finished = step["started_at"], step["finished_at"]
        shape.update(
            PluginName=step["name"],
            ResponseCode=step["response_code"] if step["response_code"] is not None else -1,
            Status=_plugin_status_as_invocation(step["status"]),
            StatusDetails=step["status_details"],
        )
        chosen = [step]
    else:
        started, finished = invocation.started_at, invocation.finished_at
        if len(steps) == 1:
            shape["PluginName"] = steps[0]["name"]
        shape.update(
            ResponseCode=(invocation.response_code if invocation.response_code is not None else -1),
            Status=invocation.status,
            StatusDetails=invocation.status_details,
        )
        chosen = steps
    shape.update(
        ExecutionStartDateTime=_aws_time(started),
        ExecutionElapsedTime=_elapsed(started, finished),
        ExecutionEndDateTime=_aws_time(finished),
        StandardOutputContent="".join(str(s["stdout"]["content"]) for s in chosen)[:STDOUT_CHARS],
        StandardOutputUrl="",
        StandardErrorContent="".join(str(s["stderr"]["content"]) for s in chosen)[:STDERR_CHARS],
        StandardErrorUrl="",
        CloudWatchOutputConfig=dict(_NO_CLOUDWATCH),
    )
    return shape


def _plugin_status_as_invocation(status: str) -> str:
    """A step reports one of the invocation's statuses (or nothing yet: Pending)."""
    return status if status in InvocationStatus.values else InvocationStatus.PENDING.value


@operation("CancelCommand")
def cancel_command(call: AwsCall) -> dict[str, Any]:
    command_cancel(
        principal=call.principal,
        command_id=call.params["CommandId"],
        instance_ids=_instance_ids(call.params),
    )
    return {}
