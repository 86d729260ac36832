"""Documents and Run Command as AWS SSM operations: translate AWS's shapes to the services and
selectors and back (the REST face, commands.api, calls the very same ones).

Registered on the AWS endpoint (access.aws_endpoint) by bosun.lib.aws.registry; the services
and selectors authorize and audit. What Bosun does not do (S3 output, SNS notifications,
CloudWatch, attachments, document types other than Command) is refused with a message
saying so, never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions as drf_exceptions

from bosun.lib.aws import errors
from bosun.lib.aws.registry import AwsCall, Tagging, operation, tagging
from commands import selectors
from commands.api.common import Page, invocation_steps, page_of, step_index
from commands.documents.builtin import canonical_name
from commands.documents.content import content_render
from commands.exceptions import DuplicateInstanceId, InvalidDocumentVersion
from commands.models import (
    OPEN_INVOCATION_STATUSES,
    TERMINAL_COMMAND_STATUSES,
    Command,
    CommandStatus,
    Document,
    DocumentFormat,
    DocumentVersion,
    Invocation,
    InvocationStatus,
)
from commands.services.cancel import command_cancel
from commands.services.document_tags import document_tags, document_tags_add, document_tags_remove
from commands.services.documents import (
    document_create,
    document_default_version_set,
    document_delete,
    document_update,
)
from commands.services.send import command_send
from fleet.models import ManagedNode
from fleet.tags import tags_validated
from fleet.targets import INSTANCE_IDS

ACTIVE = "Active"
HASH_TYPE = "Sha256"
COMMAND = "Command"
# The owner AWS names for documents the service ships (Bosun's built-ins answer for AWS's).
BUILTIN_OWNER = "Amazon"
# AWS's limits on what GetCommandInvocation and a CommandPlugin carry inline.
STDOUT_CHARS = 24000
STDERR_CHARS = 8000
PLUGIN_OUTPUT_CHARS = 2500
ERROR_SEPARATOR = "\n----------ERROR-------\n"


# --- Shared ---------------------------------------------------------------------------------


def _refuse_unsupported(params: Mapping[str, Any], members: Mapping[str, str]) -> None:
    """A ValidationException for the first member Bosun does not support: {member: why}."""
    for member, why in members.items():
        if member in params:
            raise errors.validation(f"{member} is not supported by Bosun: {why}")


def _document_name(name: str) -> str:
    """A document named by name or ARN (`arn:aws:ssm:…:document/Name`)."""
    if name.startswith("arn:"):
        return name.rpartition(":document/")[2] or name
    return name


def _page(
    rows: QuerySet[Any],
    call: AwsCall,
    *,
    kind: str,
    query: Mapping[str, Any],
    order: Sequence[str],
) -> Page:
    """One page of `rows` behind an opaque NextToken bound to the filters (`query`)."""
    try:
        return page_of(
            rows,
            kind=f"aws-{kind}",
            query=dict(query),
            order=order,
            max_results=call.params.get("MaxResults"),
            next_token=call.params.get("NextToken"),
        )
    except drf_exceptions.ValidationError:
        raise errors.AwsError("InvalidNextToken", "The specified token is not valid.") from None


def _listing(key: str, page: Page, items: list[dict[str, Any]]) -> dict[str, Any]:
    answer: dict[str, Any] = {key: items}
    if page.next_token:
        answer["NextToken"] = page.next_token
    return answer


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": tags[key]} for key in sorted(tags)]


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.validation(
            f"{value!s:.40} is not a date and time: give one as 2024-01-31T12:00:00Z."
        ) from None
    if moment.tzinfo is None:
        raise errors.validation(f"{value!s:.40} has no time zone: end it with Z or +00:00.")
    return moment


# --- Documents ------------------------------------------------------------------------------

_UNSUPPORTED_DOCUMENT_MEMBERS = {
    "Requires": "Command documents require no other documents.",
    "Attachments": "Command documents carry no attachments.",
    "DisplayName": "documents are known by their name.",
    "TargetType": "a Command document runs on any managed node its targets reach.",
    "CloudProviders": "documents run on the nodes Bosun manages.",
}


def _owner(call: AwsCall, document: Document) -> str:
    return BUILTIN_OWNER if document.is_builtin else call.account_id


def _content_format(params: Mapping[str, Any]) -> str:
    wanted = params.get("DocumentFormat", DocumentFormat.JSON.value)
    if wanted not in DocumentFormat.values:
        raise errors.validation(
            f"DocumentFormat {wanted} is not supported by Bosun: documents are JSON or YAML."
        )
    return str(wanted)


def _parameters(version: DocumentVersion) -> list[dict[str, Any]]:
    declared = version.body.get("parameters") or {}
    shapes = []
    for name, definition in declared.items():
        shape = {
            "Name": name,
            "Type": definition.get("type", ""),
            "Description": definition.get("description", ""),
        }
        if "default" in definition:
            default = definition["default"]
            shape["DefaultValue"] = default if isinstance(default, str) else json.dumps(default)
        shapes.append(shape)
    return shapes


def _description(
    call: AwsCall, version: DocumentVersion, tags: Mapping[str, str]
) -> dict[str, Any]:
    """AWS's DocumentDescription of one version."""
    document = version.document
    shape: dict[str, Any] = {
        "Hash": version.content_hash,
        "HashType": HASH_TYPE,
        "Name": document.name,
        "Owner": _owner(call, document),
        "CreatedDate": document.created_at,
        "Status": ACTIVE,
        "DocumentVersion": str(version.version),
        "Description": version.description,
        "Parameters": _parameters(version),
        "PlatformTypes": list(version.platform_types),
        "DocumentType": document.document_type,
        "SchemaVersion": version.schema_version,
        # The version at hand exists, so the latest is at least it.
        "LatestVersion": str(max(document.latest_version, version.version)),
        "DefaultVersion": str(document.default_version),
        "DocumentFormat": version.content_format,
        "Tags": _tag_list(tags),
    }
    if version.version_name:
        shape["VersionName"] = version.version_name
    return shape


def _stored_tags(document: Document) -> dict[str, str]:
    return {tag.key: tag.value for tag in document.tags.all()}


def _version(
    call: AwsCall, *, action: str, name_member: str = "Name", fresh: bool = False
) -> DocumentVersion:
    """The version DocumentVersion or VersionName names (the default one when neither)."""
    params = call.params
    number, version_name = params.get("DocumentVersion"), params.get("VersionName")
    version = selectors.document_version_get(
        principal=call.principal,
        name=_document_name(params[name_member]),
        version=number or version_name,
        action=action,
    )
    if version_name and version.version_name != version_name:
        raise InvalidDocumentVersion(
            f"{version.document.name} has no version {number or ''} named {version_name}."
            if number
            else f"{version.document.name} has no version named {version_name}."
        )
    return version


@operation("CreateDocument")
def create_document(call: AwsCall) -> dict[str, Any]:
    p = call.params
    _refuse_unsupported(p, _UNSUPPORTED_DOCUMENT_MEMBERS)
    if p.get("DocumentType", COMMAND) != COMMAND:
        raise errors.validation(
            f"DocumentType {p['DocumentType']} is not supported by Bosun: it runs Command "
            "documents."
        )
    tags = tags_validated(p.get("Tags", []))
    version = document_create(
        principal=call.principal,
        name=p["Name"],
        content=p["Content"],
        content_format=_content_format(p),
        version_name=p.get("VersionName", ""),
        tags=tags,
    )
    return {"DocumentDescription": _description(call, version, tags)}


@operation("GetDocument")
def get_document(call: AwsCall) -> dict[str, Any]:
    version = _version(call, action="ssm:GetDocument")
    wanted = _content_format(call.params)
    content = (
        version.content
        if wanted == version.content_format
        else content_render(version.body, wanted)
    )
    shape: dict[str, Any] = {
        "Name": version.document.name,
        "CreatedDate": version.created_at,
        "DocumentVersion": str(version.version),
        "Status": ACTIVE,
        "Content": content,
        "DocumentType": version.document.document_type,
        "DocumentFormat": wanted,
    }
    if version.version_name:
        shape["VersionName"] = version.version_name
    return shape


@operation("DescribeDocument")
def describe_document(call: AwsCall) -> dict[str, Any]:
    version = _version(call, action="ssm:DescribeDocument")
    return {"Document": _description(call, version, _stored_tags(version.document))}


@operation("UpdateDocument")
def update_document(call: AwsCall) -> dict[str, Any]:
    p = call.params
    _refuse_unsupported(p, _UNSUPPORTED_DOCUMENT_MEMBERS)
    version = document_update(
        principal=call.principal,
        name=p["Name"],
        content=p["Content"],
        content_format=_content_format(p),
        document_version=p.get("DocumentVersion", selectors.LATEST),
        version_name=p.get("VersionName", ""),
    )
    return {"DocumentDescription": _description(call, version, _stored_tags(version.document))}


@operation("DeleteDocument")
def delete_document(call: AwsCall) -> dict[str, Any]:
    # Force deletes documents shared with other accounts or used by associations elsewhere;
    # Bosun has neither, so it changes nothing.
    p = call.params
    document_delete(
        principal=call.principal,
        name=p["Name"],
        document_version=p.get("DocumentVersion", ""),
        version_name=p.get("VersionName", ""),
    )
    return {}


# ListDocuments' filter keys (DocumentFilterList's and Filters'), and Owner's values.
_OWNERS = {
    "Self": "Self",
    "Private": "Self",
    "Amazon": "Bosun",
    "Public": "Bosun",
    "Bosun": "Bosun",
    "All": "",
}
_DOCUMENT_FILTER_KEYS = ("Name", "Owner", "PlatformTypes", "DocumentType", "SearchKeyword")


def _document_filters(call: AwsCall) -> list[tuple[str, list[str]]]:
    """(key, values) of either filter list: values of one key OR together, keys AND."""
    p = call.params
    if "DocumentFilterList" in p and "Filters" in p:
        raise errors.validation(
            "You can use either DocumentFilterList or Filters in a single request, not both."
        )
    if "DocumentFilterList" in p:
        pairs = [(item["key"], [item["value"]]) for item in p["DocumentFilterList"]]
    else:
        pairs = [
            (item.get("Key", ""), list(item.get("Values", []))) for item in p.get("Filters", [])
        ]
    for key, _ in pairs:
        if key not in _DOCUMENT_FILTER_KEYS and not key.startswith("tag:"):
            raise errors.AwsError(
                "InvalidFilterKey",
                f"The filter key {key!s:.128} is not valid: use Name, Owner, PlatformTypes, "
                "DocumentType, SearchKeyword or tag:<key>.",
            )
    return pairs


def _documents(call: AwsCall, pairs: list[tuple[str, list[str]]]) -> QuerySet[Document]:
    rows = selectors.documents_list(principal=call.principal, filters=selectors.DocumentFilter())
    for key, values in pairs:
        rows = _narrowed(rows, key, values, from_list="DocumentFilterList" in call.params)
    return rows


def _narrowed(
    rows: QuerySet[Document], key: str, values: list[str], *, from_list: bool
) -> QuerySet[Document]:
    """What the selector's DocumentFilter cannot say: several values, prefixes, platforms."""
    if key == "Owner":
        owners = {_OWNERS.get(value, "none") for value in values}
        if "" in owners or owners == {"Self", "Bosun"}:
            return rows
        if owners == {"none"}:
            return rows.none()
        return rows.filter(is_builtin="Bosun" in owners)
    if key == "Name":
        # DocumentFilterList's Name is a substring; Filters' Name is the start of the name.
        lookup = "name__icontains" if from_list else "name__istartswith"
        matched = rows.none()
        for value in values:
            matched |= rows.filter(**{lookup: value})
        return matched
    if key == "SearchKeyword":
        matched = rows.none()
        for value in values:
            matched |= rows.filter(name__icontains=value)
        return matched
    if key == "DocumentType":
        return rows.filter(document_type__in=values)
    if key == "PlatformTypes":
        documents = list(rows.order_by())
        defaults = selectors.document_default_versions(documents)
        wanted = set(values)
        return rows.filter(
            pk__in=[
                document.pk
                for document in documents
                if wanted & set(getattr(defaults.get(document.pk), "platform_types", []))
            ]
        )
    tag_key = key.removeprefix("tag:")
    if values:
        return rows.filter(tags__key=tag_key, tags__value__in=values)
    return rows.filter(tags__key=tag_key)


@operation("ListDocuments")
def list_documents(call: AwsCall) -> dict[str, Any]:
    pairs = _document_filters(call)
    rows = _documents(call, pairs).prefetch_related("tags")
    page = _page(rows, call, kind="documents", query={"filters": pairs}, order=("name",))
    defaults = selectors.document_default_versions(page.items)
    items = []
    for document in page.items:
        version = defaults.get(document.pk)
        item: dict[str, Any] = {
            "Name": document.name,
            "CreatedDate": document.created_at,
            "Owner": _owner(call, document),
            "DocumentVersion": str(document.default_version),
            "DocumentType": document.document_type,
            "Tags": _tag_list(_stored_tags(document)),
        }
        if version is not None:
            item["PlatformTypes"] = list(version.platform_types)
            item["SchemaVersion"] = version.schema_version
            item["DocumentFormat"] = version.content_format
            if version.version_name:
                item["VersionName"] = version.version_name
        items.append(item)
    return _listing("DocumentIdentifiers", page, items)


@operation("ListDocumentVersions")
def list_document_versions(call: AwsCall) -> dict[str, Any]:
    name = _document_name(call.params["Name"])
    rows = selectors.document_versions(principal=call.principal, name=name)
    page = _page(rows, call, kind="document-versions", query={"name": name}, order=("-version",))
    items = []
    for version in page.items:
        item: dict[str, Any] = {
            "Name": version.document.name,
            "DocumentVersion": str(version.version),
            "CreatedDate": version.created_at,
            "IsDefaultVersion": version.version == version.document.default_version,
            "DocumentFormat": version.content_format,
            "Status": ACTIVE,
        }
        if version.version_name:
            item["VersionName"] = version.version_name
        items.append(item)
    return _listing("DocumentVersions", page, items)


@operation("UpdateDocumentDefaultVersion")
def update_document_default_version(call: AwsCall) -> dict[str, Any]:
    version = document_default_version_set(
        principal=call.principal,
        name=call.params["Name"],
        document_version=call.params["DocumentVersion"],
    )
    description: dict[str, Any] = {
        "Name": version.document.name,
        "DefaultVersion": str(version.version),
    }
    if version.version_name:
        description["DefaultVersionName"] = version.version_name
    return {"Description": description}


def _tags_add(call: AwsCall, resource_id: str, tags: list[dict[str, str]]) -> None:
    document_tags_add(principal=call.principal, name=_document_name(resource_id), tags=tags)


def _tags(call: AwsCall, resource_id: str) -> dict[str, str]:
    return document_tags(principal=call.principal, name=_document_name(resource_id))


def _tags_remove(call: AwsCall, resource_id: str, keys: list[str]) -> None:
    document_tags_remove(principal=call.principal, name=_document_name(resource_id), keys=keys)


tagging("Document", Tagging(add=_tags_add, tags=_tags, remove=_tags_remove))


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
    _refuse_unsupported(p, _UNSUPPORTED_SEND_MEMBERS)
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
        document_name=_document_name(p["DocumentName"]),
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
        rows = rows.filter(**{f"{field}__gte": _moment(given["InvokedAfter"])})
    if "InvokedBefore" in given:
        rows = rows.filter(**{f"{field}__lte": _moment(given["InvokedBefore"])})
    return rows


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
    if "ExecutionStage" in given:
        if _EXECUTION_STAGES[given["ExecutionStage"]]:
            rows = rows.filter(status__in=TERMINAL_COMMAND_STATUSES)
        else:
            rows = rows.exclude(status__in=TERMINAL_COMMAND_STATUSES)
    query = {"filters": given, "command": p.get("CommandId"), "node": p.get("InstanceId")}
    page = _page(rows, call, kind="commands", query=query, order=("-requested_at", "-id"))
    return _listing("Commands", page, [_command(call, command) for command in page.items])


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
    if "ExecutionStage" in given:
        if _EXECUTION_STAGES[given["ExecutionStage"]]:
            rows = rows.exclude(status__in=OPEN_INVOCATION_STATUSES)
        else:
            rows = rows.filter(status__in=OPEN_INVOCATION_STATUSES)
    details = bool(p.get("Details", False))
    query = {"filters": given, "command": p.get("CommandId"), "node": p.get("InstanceId")}
    page = _page(rows.select_related("command"), call, kind="invocations", query=query, order=order)
    items = [_invocation(call, invocation, details=details) for invocation in page.items]
    return _listing("CommandInvocations", page, items)


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
