"""Documents and Run Command API endpoints: adapt JSON to the services and selectors every
face uses.

Document names, command ids, node ids and step names hold no slash, so they travel in the
path; versions, formats, filters and pages in the query string; what is written, in bodies.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from bosun.lib.api import ApiErrorSerializer, FirstRendererNegotiation, body, query
from commands import selectors
from commands.api import serializers as shapes
from commands.api.common import (
    TAG_COMMANDS,
    TAG_DOCUMENTS,
    CommandsAPIView,
    invocation_steps,
    page_of,
    step_index,
)
from commands.documents.content import content_render
from commands.output import stream_full_text
from commands.services.cancel import command_cancel
from commands.services.documents import (
    document_create,
    document_default_version_set,
    document_delete,
    document_update,
)
from commands.services.send import command_send

ERRORS: dict[int | tuple[int, str], Any] = {
    400: ApiErrorSerializer,
    403: ApiErrorSerializer,
    404: ApiErrorSerializer,
}
CONFLICTS: dict[int | tuple[int, str], Any] = {**ERRORS, 409: ApiErrorSerializer}
PAGING = ("max_results", "next_token")


def _responses(ok: Any, code: int = 200) -> dict[int | tuple[int, str], Any]:
    return {code: ok, **ERRORS}


def _filters(data: dict[str, Any], **more: Any) -> dict[str, Any]:
    """What a page token is bound to: the filters and the path, not the paging itself."""
    return {**{key: value for key, value in data.items() if key not in PAGING}, **more}


# --- Documents ------------------------------------------------------------------------------


class DocumentListView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_list",
        parameters=[shapes.DocumentsQuery],
        responses=_responses(shapes.DocumentListResponse),
    )
    def get(self, request: Request) -> Response:
        """The documents the caller may list, by name, ≤ 50 a page, each as its default
        version describes it."""
        data = query(shapes.DocumentsQuery, request)
        rows = selectors.documents_list(
            principal=self.principal(),
            filters=selectors.DocumentFilter(
                search=data.get("search", ""),
                owner=data.get("owner", ""),
                tags=tuple(data.get("tag", [])),
            ),
        )
        page = page_of(
            rows.select_related("created_by").prefetch_related("tags"),
            kind="documents",
            query=_filters(data),
            order=("name",),
            max_results=data.get("max_results"),
            next_token=data.get("next_token"),
        )
        defaults = selectors.document_default_versions(page.items)
        results = shapes.DocumentIdentifierSerializer(
            page.items, many=True, context={"defaults": defaults}
        ).data
        return Response({"results": results, "next_token": page.next_token})

    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_create",
        request=shapes.DocumentCreateInput,
        responses={201: shapes.DocumentDescriptionSerializer, **CONFLICTS},
    )
    def post(self, request: Request) -> Response:
        """Creates a document at version 1 (its default and latest). The content is checked
        against schema 2.2; a problem names the field and its line."""
        data = body(shapes.DocumentCreateInput, request)
        version = document_create(
            principal=self.principal(),
            name=data["name"],
            content=data["content"],
            content_format=data["document_format"],
            version_name=data["version_name"],
            tags=data.get("tags"),
        )
        location = reverse("commands-api:document", kwargs={"name": version.document.name})
        return Response(
            shapes.DocumentDescriptionSerializer(version).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class DocumentDetailView(CommandsAPIView):
    """GET: a version's content; PUT: a new version; DELETE: the document or one version."""

    # `format` names the document's format here, not DRF's renderer.
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_get",
        parameters=[shapes.DocumentGetQuery],
        responses=_responses(shapes.DocumentContentSerializer),
    )
    def get(self, request: Request, name: str) -> Response:
        """One version's content (the default version unless `version` names another), as
        written, or converted with `format`."""
        data = query(shapes.DocumentGetQuery, request)
        version = selectors.document_version_get(
            principal=self.principal(), name=name, version=data.get("version")
        )
        wanted = data.get("format") or version.content_format
        content = (
            version.content
            if wanted == version.content_format
            else content_render(version.body, wanted)
        )
        context = {"format": wanted, "content": content}
        return Response(shapes.DocumentContentSerializer(version, context=context).data)

    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_update",
        request=shapes.DocumentUpdateInput,
        responses={200: shapes.DocumentDescriptionSerializer, **CONFLICTS},
    )
    def put(self, request: Request, name: str) -> Response:
        """Writes a new latest version from the latest one (the default stays until set).
        Built-in documents are read-only."""
        data = body(shapes.DocumentUpdateInput, request)
        version = document_update(
            principal=self.principal(),
            name=name,
            content=data["content"],
            content_format=data["document_format"],
            document_version=data["document_version"],
            version_name=data["version_name"],
        )
        return Response(shapes.DocumentDescriptionSerializer(version).data)

    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_delete",
        parameters=[shapes.DocumentDeleteQuery],
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, name: str) -> Response:
        """Deletes the document with all its versions, or with `version` only that one
        (never the default version). Built-in documents are read-only."""
        version = query(shapes.DocumentDeleteQuery, request).get("version", "")
        numbered = version.isdigit() or version in (selectors.LATEST, selectors.DEFAULT)
        document_delete(
            principal=self.principal(),
            name=name,
            document_version=version if numbered else "",
            version_name="" if numbered else version,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentMetadataView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_describe",
        parameters=[shapes.DocumentVersionQuery],
        responses=_responses(shapes.DocumentDescriptionSerializer),
    )
    def get(self, request: Request, name: str) -> Response:
        """AWS's DescribeDocument: the document and one version's metadata (hash, platform
        types, parameters), without its content."""
        data = query(shapes.DocumentVersionQuery, request)
        version = selectors.document_version_get(
            principal=self.principal(),
            name=name,
            version=data.get("version"),
            action="ssm:DescribeDocument",
        )
        return Response(shapes.DocumentDescriptionSerializer(version).data)


class DocumentVersionsView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_versions_list",
        parameters=[shapes.PageQuery],
        responses=_responses(shapes.DocumentVersionListResponse),
    )
    def get(self, request: Request, name: str) -> Response:
        """The document's versions, newest first, ≤ 50 a page."""
        data = query(shapes.PageQuery, request)
        rows = selectors.document_versions(principal=self.principal(), name=name)
        page = page_of(
            rows,
            kind="document-versions",
            query=_filters(data, name=name),
            order=("-version",),
            max_results=data.get("max_results"),
            next_token=data.get("next_token"),
        )
        results = shapes.DocumentVersionInfoSerializer(page.items, many=True).data
        return Response({"results": results, "next_token": page.next_token})


class DocumentDefaultVersionView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_DOCUMENTS],
        operation_id="documents_default_version_set",
        request=shapes.DefaultVersionInput,
        responses=_responses(shapes.DefaultVersionResponse),
    )
    def put(self, request: Request, name: str) -> Response:
        """Makes a version the default: what a send without `document_version` runs."""
        data = body(shapes.DefaultVersionInput, request)
        version = document_default_version_set(
            principal=self.principal(), name=name, document_version=data["document_version"]
        )
        return Response(shapes.DefaultVersionResponse(version).data)


# --- Commands -------------------------------------------------------------------------------


class CommandListView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_COMMANDS],
        operation_id="commands_list",
        parameters=[shapes.CommandsQuery],
        responses=_responses(shapes.CommandListResponse),
    )
    def get(self, request: Request) -> Response:
        """The commands sent, newest first, ≤ 50 a page."""
        data = query(shapes.CommandsQuery, request)
        rows = selectors.commands_list(
            principal=self.principal(),
            filters=selectors.CommandFilter(
                status=data.get("status", ""),
                document_name=data.get("document_name", ""),
                node_id=data.get("node_id", ""),
                requested_by=data.get("requested_by", ""),
                search=data.get("search", ""),
            ),
        )
        page = page_of(
            rows,
            kind="commands",
            query=_filters(data),
            order=("-requested_at", "-id"),
            max_results=data.get("max_results"),
            next_token=data.get("next_token"),
        )
        results = shapes.CommandSerializer(page.items, many=True).data
        return Response({"results": results, "next_token": page.next_token})

    @extend_schema(
        tags=[TAG_COMMANDS],
        operation_id="commands_send",
        request=shapes.SendInput,
        responses=_responses(shapes.CommandSerializer, status.HTTP_201_CREATED),
    )
    def post(self, request: Request) -> Response:
        """Sends a command to the targeted nodes the caller may send to. Named nodes left
        out (refused, unknown, deregistered) are listed in `left_out`; nothing at all
        reached is a 404 saying why."""
        data = body(shapes.SendInput, request)
        command = command_send(principal=self.principal(), **data)
        location = reverse("commands-api:command", kwargs={"command_id": command.command_id})
        return Response(
            shapes.CommandSerializer(command).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class CommandDetailView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_COMMANDS],
        operation_id="commands_get",
        responses=_responses(shapes.CommandDetailSerializer),
    )
    def get(self, request: Request, command_id: str) -> Response:
        """One command, with its invocations counted by fine status."""
        principal = self.principal()
        command = selectors.command_get(principal=principal, command_id=command_id)
        counts = selectors.status_counts(
            selectors.invocations_visible(principal=principal, command=command)
        )
        return Response(shapes.CommandDetailSerializer(command, context={"counts": counts}).data)


class CommandCancelView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_COMMANDS],
        operation_id="commands_cancel",
        request=shapes.CancelInput,
        responses=_responses(shapes.CancelResponse),
    )
    def post(self, request: Request, command_id: str) -> Response:
        """Cancels the command, or its invocations on `instance_ids`: what has not started
        is cancelled now, what runs is stopped by its agent."""
        data = body(shapes.CancelInput, request)
        still_open = command_cancel(
            principal=self.principal(),
            command_id=command_id,
            instance_ids=data.get("instance_ids"),
        )
        return Response(
            shapes.CancelResponse({"command_id": command_id, "open_invocations": still_open}).data
        )


class InvocationListView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_COMMANDS],
        operation_id="commands_invocations_list",
        parameters=[shapes.InvocationsQuery],
        responses=_responses(shapes.InvocationListResponse),
    )
    def get(self, request: Request, command_id: str) -> Response:
        """The command's invocations on the nodes the caller may see, in sending order,
        ≤ 50 a page; with `details`, each step and its inline output (as the agent reported
        it: a running invocation's output is on its own endpoint)."""
        data = query(shapes.InvocationsQuery, request)
        principal = self.principal()
        action = "ssm:ListCommandInvocations"
        command = selectors.command_get(principal=principal, command_id=command_id, action=action)
        rows = selectors.invocations_visible(principal=principal, command=command, action=action)
        page = page_of(
            rows,
            kind="invocations",
            query=_filters(data, command_id=command.command_id),
            order=("sequence",),
            max_results=data.get("max_results"),
            next_token=data.get("next_token"),
        )
        steps = (
            {row.pk: invocation_steps(row, live=False) for row in page.items}
            if data["details"]
            else None
        )
        results = shapes.InvocationSerializer(page.items, many=True, context={"steps": steps}).data
        return Response({"results": results, "next_token": page.next_token})


class InvocationDetailView(CommandsAPIView):
    @extend_schema(
        tags=[TAG_COMMANDS],
        operation_id="commands_invocation_get",
        parameters=[shapes.InvocationQuery],
        responses=_responses(shapes.InvocationSerializer),
    )
    def get(self, request: Request, command_id: str, node_id: str) -> Response:
        """The command on one node, each step with its inline output (so far, while it
        runs); `step` narrows it to one step."""
        data = query(shapes.InvocationQuery, request)
        invocation = selectors.invocation_get(
            principal=self.principal(), command_id=command_id, node_id=node_id
        )
        steps = invocation_steps(invocation, live=True)
        if "step" in data:
            steps = [steps[step_index(invocation, data["step"])]]
        context = {"steps": {invocation.pk: steps}}
        return Response(shapes.InvocationSerializer(invocation, context=context).data)


class InvocationOutputView(CommandsAPIView):
    # A download: the client's Accept header does not choose the error's renderer either.
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        tags=[TAG_COMMANDS],
        operation_id="commands_invocation_output",
        parameters=[shapes.OutputQuery],
        responses={
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The whole stream of one step, as it ran (so far, while it runs).",
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request, command_id: str, node_id: str) -> HttpResponse:
        """One step's stdout or stderr, whole, as a text file."""
        data = query(shapes.OutputQuery, request)
        invocation = selectors.invocation_get(
            principal=self.principal(), command_id=command_id, node_id=node_id
        )
        index = step_index(invocation, data.get("step"))
        text = stream_full_text(invocation, index, data["stream"])
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        stem = f"{invocation.command.command_id}-{invocation.node_id}-{index}"
        response["Content-Disposition"] = f'attachment; filename="{stem}.{data["stream"]}.txt"'
        return response
