"""Reading documents, commands and invocations, scoped to what the principal may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from access.authorization import Principal, authorize
from commands.documents.builtin import canonical_name
from commands.exceptions import (
    InvalidCommandId,
    InvalidDocument,
    InvalidDocumentVersion,
    InvocationDoesNotExist,
)
from commands.models import Command, Document, DocumentVersion, Invocation
from commands.querysets import LIST_COMMANDS
from commands.scope import command_arn, document_arn
from fleet.models import ManagedNode

LATEST = "$LATEST"
DEFAULT = "$DEFAULT"


def document_version_get(
    *, principal: Principal, name: str, version: str | None = None, action: str = "ssm:GetDocument"
) -> DocumentVersion:
    """One version of a document (default when none is named; `$LATEST`, `$DEFAULT`, a
    number or a version name), after authorizing `action` on the document's ARN."""
    stored = canonical_name(name or "")
    authorize(principal, action, document_arn(stored))
    document = Document.objects.filter(name=stored).first()
    if document is None:
        raise InvalidDocument(f"The document {name!s:.128} does not exist.", field="document")
    chosen: DocumentVersion | None
    if version in (None, "", DEFAULT):
        chosen = document.versions.filter(version=document.default_version).first()
    elif version == LATEST:
        chosen = document.versions.filter(version=document.latest_version).first()
    elif version.isdigit():
        chosen = document.versions.filter(version=int(version)).first()
    else:
        chosen = document.versions.filter(version_name=version).first()
    if chosen is None:
        raise InvalidDocumentVersion(
            f"{document.name} has no version {version!s:.40}.", field="document_version"
        )
    chosen.document = document
    return chosen


@dataclass(frozen=True)
class DocumentFilter:
    search: str = ""
    owner: str = ""  # "Bosun" for the built-ins, "Self" for the installation's own
    tags: tuple[tuple[str, str], ...] = ()


def documents_list(*, principal: Principal, filters: DocumentFilter) -> QuerySet[Document]:
    rows = Document.objects.all()
    if filters.search:
        rows = rows.filter(name__icontains=filters.search)
    if filters.owner == "Bosun":
        rows = rows.filter(is_builtin=True)
    elif filters.owner == "Self":
        rows = rows.filter(is_builtin=False)
    for key, value in filters.tags:
        rows = rows.filter(tags__key=key, tags__value=value)
    return rows.visible_to(principal).order_by("name")


def document_default_versions(documents: list[Document]) -> dict[int, DocumentVersion]:
    """{document pk: its default version}, in one query, for list pages."""
    wanted = Q()
    for document in documents:
        wanted |= Q(document_id=document.pk, version=document.default_version)
    if not documents:
        return {}
    return {v.document_id: v for v in DocumentVersion.objects.filter(wanted).defer("content")}


def document_versions(*, principal: Principal, name: str) -> QuerySet[DocumentVersion]:
    stored = canonical_name(name)
    authorize(principal, "ssm:ListDocumentVersions", document_arn(stored))
    document = Document.objects.filter(name=stored).first()
    if document is None:
        raise InvalidDocument(f"The document {name!s:.128} does not exist.")
    return document.versions.order_by("-version").defer("content", "body")


@dataclass(frozen=True)
class CommandFilter:
    status: str = ""
    document_name: str = ""
    node_id: str = ""
    requested_by: str = ""
    search: str = ""  # command id or comment


def commands_list(*, principal: Principal, filters: CommandFilter) -> QuerySet[Command]:
    # AWS authorizes ListCommands on `*`: without it the answer is a denial, not an empty list.
    authorize(principal, LIST_COMMANDS)
    rows = Command.objects.visible_to(principal)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.document_name:
        rows = rows.filter(document_name=canonical_name(filters.document_name))
    if filters.node_id:
        rows = rows.filter(invocations__node_id=filters.node_id)
    if filters.requested_by:
        rows = rows.filter(requested_by__username=filters.requested_by)
    if filters.search:
        rows = rows.filter(
            Q(command_id__startswith=filters.search) | Q(comment__icontains=filters.search)
        )
    return rows.select_related("requested_by").order_by("-requested_at", "-id")


def command_get(
    *, principal: Principal, command_id: str, action: str = "ssm:ListCommands"
) -> Command:
    authorize(principal, action, command_arn(str(command_id)[:36]))
    command = Command.objects.filter(command_id=str(command_id)[:36]).first()
    if command is None:
        raise InvalidCommandId(f"There is no command {command_id!s:.40}.")
    return command


def invocations_visible(
    *, principal: Principal, command: Command, action: str = "ssm:ListCommandInvocations"
) -> QuerySet[Invocation]:
    """The command's invocations on nodes the principal may see invocations of."""
    nodes = ManagedNode.objects.filter(command_invocations__command=command).visible_to(
        principal, action
    )
    return command.invocations.filter(node__in=nodes).order_by("sequence")


def invocation_get(*, principal: Principal, command_id: str, node_id: str) -> Invocation:
    command = command_get(
        principal=principal, command_id=command_id, action="ssm:GetCommandInvocation"
    )
    invocation = (
        invocations_visible(principal=principal, command=command, action="ssm:GetCommandInvocation")
        .filter(node_id=node_id)
        .select_related("command")
        .first()
    )
    if invocation is None:
        raise InvocationDoesNotExist(
            f"Command {command.command_id} has no invocation on {node_id!s:.40} you may see."
        )
    return invocation


def status_counts(invocations: QuerySet[Invocation]) -> dict[str, int]:
    """{fine status: count} of these invocations, for progress bars."""
    rows = invocations.order_by().values_list("status_details").annotate(n=Count("pk"))
    return dict(rows)
