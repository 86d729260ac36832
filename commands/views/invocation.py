"""One node's result of a command: each step with its stdout and stderr. While it runs, the
output arrives as the agent streams it (the page asks every second); once it ended, the
stored result, with a download of each stream in full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from access.authorization import principal_of
from commands import selectors
from commands.models import Invocation
from commands.output import INLINE_CHARS, STREAMS, live_output, stream_full_text
from commands.services.send import OUTPUT_LIMIT_BYTES
from commands.views.common import HtmxHttpRequest, commands_page, wants_partial

INVOCATION_TEMPLATE = "commands/invocation.html"


@dataclass(frozen=True)
class Stream:
    name: str
    text: str
    length: int
    inline_cut: bool
    dropped_bytes: int
    download_url: str
    live: bool = False  # still arriving: its full length is not known yet


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    action: str
    status: str  # "" while the invocation runs: the agent reports steps when it ends
    status_details: str
    response_code: int | None
    started_at: Any
    finished_at: Any
    streams: tuple[Stream, ...]


def _download_url(invocation: Invocation, index: int, stream: str) -> str:
    return reverse(
        "commands:output",
        args=[invocation.command.command_id, invocation.node_id, index, stream],
    )


def _planned(invocation: Invocation) -> list[dict[str, Any]]:
    """The steps as sent (name, action): what a running or never-run invocation shows."""
    payload = invocation.command.payload if isinstance(invocation.command.payload, dict) else {}
    steps = payload.get("steps")
    return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []


def steps_of(invocation: Invocation) -> list[Step]:
    reported = invocation.steps if isinstance(invocation.steps, list) else []
    if invocation.is_terminal and reported:
        return [_reported(invocation, index, entry) for index, entry in enumerate(reported)]
    running = not invocation.is_terminal and invocation.started_at is not None
    steps = []
    for index, entry in enumerate(_planned(invocation)):
        streams = tuple(
            _live(invocation, index, name) if running else Stream(name, "", 0, False, 0, "")
            for name in STREAMS
        )
        steps.append(
            Step(
                index,
                str(entry.get("name", "")),
                str(entry.get("action", "")),
                "",
                "",
                None,
                None,
                None,
                streams,
            )
        )
    return steps


def _live(invocation: Invocation, index: int, name: str) -> Stream:
    text = live_output(invocation, index, name)
    cut = len(text) >= INLINE_CHARS
    return Stream(name, text, len(text), cut, 0, _download_url(invocation, index, name), live=True)


def _reported(invocation: Invocation, index: int, entry: dict[str, Any]) -> Step:
    streams = []
    for name in STREAMS:
        raw = entry.get(name)
        report = raw if isinstance(raw, dict) else {}
        text = str(report.get("inline", ""))
        length = int(report.get("length") or len(text))
        streams.append(
            Stream(
                name,
                text,
                length,
                bool(report.get("inline_cut")),
                int(report.get("dropped_bytes") or 0),
                _download_url(invocation, index, name) if length else "",
            )
        )
    return Step(
        index,
        str(entry.get("name", "")),
        str(entry.get("action", "")),
        str(entry.get("status", "")),
        str(entry.get("status_details", "")),
        entry.get("response_code"),
        entry.get("started_at"),
        entry.get("finished_at"),
        tuple(streams),
    )


def _invocation(request: HtmxHttpRequest, command_id: str, node_id: str) -> Invocation:
    return selectors.invocation_get(
        principal=principal_of(request), command_id=str(command_id), node_id=node_id
    )


@login_required
@require_GET
@vary_on_headers("HX-Request")
@commands_page
def invocation_detail(request: HtmxHttpRequest, command_id: str, node_id: str) -> HttpResponse:
    invocation = _invocation(request, command_id, node_id)
    context = {
        "invocation": invocation,
        "command": invocation.command,
        "steps": steps_of(invocation),
        "live": not invocation.is_terminal,
        "inline_chars": INLINE_CHARS,
        "output_limit": f"{OUTPUT_LIMIT_BYTES // (1024 * 1024)} MiB",
    }
    template = f"{INVOCATION_TEMPLATE}#live" if wants_partial(request) else INVOCATION_TEMPLATE
    return render(request, template, context)


@login_required
@require_GET
@commands_page
def invocation_output(
    request: HtmxHttpRequest, command_id: str, node_id: str, step: int, stream: str
) -> HttpResponse:
    """One step's stream in full, as a text file: the stored file when the output was longer
    than the page shows, else the text itself. Authorized as the page is."""
    invocation = _invocation(request, command_id, node_id)
    if stream not in STREAMS or step >= max(len(_planned(invocation)), len(invocation.steps)):
        raise Http404("That step or stream does not exist.")
    filename = f"{invocation.command.command_id}-{invocation.node_id}-{step}-{stream}.txt"
    reported = invocation.steps[step] if step < len(invocation.steps) else {}
    entry = reported.get(stream) if isinstance(reported, dict) else None
    stored = entry.get("file", "") if isinstance(entry, dict) else ""
    if invocation.is_terminal and stored:
        # Streamed from storage (up to the agent's 8 MiB a stream), never read whole here.
        return FileResponse(  # type: ignore[return-value]
            default_storage.open(stored, "rb"),
            as_attachment=True,
            filename=filename,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(
        stream_full_text(invocation, step, stream), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
