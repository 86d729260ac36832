"""What the documents and Run Command API views share: the principal, keyset pages behind
signed tokens, service errors naming their field, and the steps of an invocation as the API
shows them (strict input: parameters.api.common)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.http import urlencode
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authorization import Principal, principal_of
from bosun.lib import page_tokens
from bosun.lib.api_errors import api_exception_handler
from bosun.lib.errors import BosunError
from commands.exceptions import (
    InvalidDocumentContent,
    InvalidDocumentSchemaVersion,
    InvalidPluginName,
)
from commands.models import Invocation
from commands.output import INLINE_CHARS, STREAMS, live_output

TAG_DOCUMENTS = "Documents"
TAG_COMMANDS = "Run Command"
# AWS's MaxResults for ListDocuments, ListCommands and ListCommandInvocations.
MAX_PAGE = 50


class CommandsAPIView(APIView):
    """Authenticated by the project's defaults; authorized by the services and selectors it
    calls, so an API caller and a page visitor meet the very same rules."""

    def principal(self) -> Principal:
        return principal_of(self.request, face="api")

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return exception_handler


# The services' names for fields the API names otherwise.
_API_FIELDS = {"content_format": "document_format"}
_CONTENT_ERRORS = (InvalidDocumentContent, InvalidDocumentSchemaVersion)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The project's {detail, code}; a service's 400 about one field also names it in
    `fields`, as a serializer's 400 does (a problem inside a document's text is `content`'s,
    its path and line are in the detail)."""
    response = api_exception_handler(exc, context)
    field = getattr(exc, "field", "")
    if response is None or not isinstance(exc, BosunError) or not field:
        return response
    if response.status_code != status.HTTP_400_BAD_REQUEST:
        return response
    if isinstance(exc, _CONTENT_ERRORS) and field != "content_format":
        field = "content"
    messages: Any = [exc.message]
    for part in reversed(_API_FIELDS.get(field, field).split(".")):
        messages = {part: messages}
    response.data["fields"] = messages
    return response


# --- Pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_token: str | None


def page_of(
    rows: QuerySet[Any],
    *,
    kind: str,
    query: Mapping[str, Any],
    order: Sequence[str],
    max_results: int | None = None,
    next_token: str | None = None,
) -> Page:
    """One page of `rows` in `order` (unique together, as "-requested_at", "-id"), resuming
    after the row the token names. Keyset rather than offsets: commands sent meanwhile do not
    shift the pages a client is walking. The token is bound to `query` (the filters)."""
    size = max_results or MAX_PAGE
    rows = rows.order_by(*order)
    if next_token:
        try:
            position = page_tokens.token_read(next_token, kind=kind, query=dict(query))
        except page_tokens.InvalidPageToken as exc:
            raise exceptions.ValidationError({"next_token": [str(exc)]}) from None
        rows = rows.filter(_after(order, position))
    items = list(rows[: size + 1])
    more = len(items) > size
    items = items[:size]
    token = None
    if more:
        token = page_tokens.token_make(
            kind=kind, query=dict(query), position=_position(items[-1], order)
        )
    return Page(items, token)


def _position(row: Any, order: Sequence[str]) -> list[Any]:
    values = [getattr(row, field.lstrip("-")) for field in order]
    return [value.isoformat() if isinstance(value, datetime) else value for value in values]


def _after(order: Sequence[str], position: Any) -> Q:
    """Rows after `position` in `order`: (a, b) > (x, y) as a < x, or a = x and b < y…"""
    if not isinstance(position, list) or len(position) != len(order):
        raise exceptions.ValidationError({"next_token": ["The specified token is not valid."]})
    after = Q()
    equal: dict[str, Any] = {}
    for field, value in zip(order, position, strict=True):
        name = field.lstrip("-")
        lookup = "lt" if field.startswith("-") else "gt"
        after |= Q(**equal, **{f"{name}__{lookup}": value})
        equal[name] = value
    return after


# --- Steps of an invocation -----------------------------------------------------------------


def step_names(invocation: Invocation) -> list[str]:
    """The steps as reported, or as the document planned them when none were reported."""
    steps = invocation.steps or invocation.command.payload.get("steps") or []
    return [str(step.get("name", "")) for step in steps]


def step_index(invocation: Invocation, name: str | None) -> int:
    """The index of step `name`; without a name, the only step (AWS asks for the name when
    a document has several)."""
    names = step_names(invocation)
    if name is None:
        if len(names) == 1:
            return 0
        raise exceptions.ValidationError(
            {"step": [f"The document has {len(names)} steps; name one: {', '.join(names)}."]}
        )
    if name not in names:
        raise InvalidPluginName(
            f"Command {invocation.command.command_id} has no step {name!s:.100} "
            f"(its steps: {', '.join(names) or 'none'}).",
            field="step",
        )
    return names.index(name)


def invocation_steps(invocation: Invocation, *, live: bool) -> list[dict[str, Any]]:
    """Each step with its streams. Until the agent reports, a step shows the invocation's
    status and, when `live`, the output received so far."""
    if invocation.steps:
        return [_reported(invocation, index, step) for index, step in enumerate(invocation.steps)]
    running = live and invocation.started_at is not None and not invocation.is_terminal
    planned = invocation.command.payload.get("steps") or []
    return [
        {
            "name": step.get("name", ""),
            "action": step.get("action", ""),
            "status": invocation.status,
            "status_details": invocation.status_details,
            "response_code": None,
            "started_at": None,
            "finished_at": None,
            **{stream: _live_stream(invocation, index, stream, running) for stream in STREAMS},
        }
        for index, step in enumerate(planned)
    ]


def _reported(invocation: Invocation, index: int, step: dict[str, Any]) -> dict[str, Any]:
    streams = {}
    for stream in STREAMS:
        entry = step.get(stream) or {}
        streams[stream] = {
            "content": entry.get("inline", ""),
            "length": entry.get("length", 0),
            "truncated": bool(entry.get("inline_cut")),
            "dropped_bytes": entry.get("dropped_bytes", 0),
            "url": output_url(invocation, str(step.get("name", "")), stream),
        }
    return {
        "name": step.get("name", ""),
        "action": step.get("action", ""),
        "status": step.get("status", ""),
        "status_details": step.get("status_details", ""),
        "response_code": step.get("response_code"),
        "started_at": _moment(step.get("started_at")),
        "finished_at": _moment(step.get("finished_at")),
        **streams,
    }


def _live_stream(invocation: Invocation, index: int, stream: str, running: bool) -> dict[str, Any]:
    text = live_output(invocation, index, stream) if running else ""
    name = str((invocation.command.payload.get("steps") or [{}])[index].get("name", ""))
    return {
        "content": text,
        "length": len(text),
        "truncated": len(text) >= INLINE_CHARS,
        "dropped_bytes": 0,
        "url": output_url(invocation, name, stream),
    }


def _moment(value: Any) -> datetime | None:
    """The agent reports step times as Unix seconds."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def output_url(invocation: Invocation, step: str, stream: str) -> str:
    path = reverse(
        "commands-api:invocation-output",
        kwargs={"command_id": invocation.command.command_id, "node_id": invocation.node_id},
    )
    return f"{path}?{urlencode({'step': step, 'stream': stream})}"
