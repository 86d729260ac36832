"""Command output: streamed in chunks while a step runs, assembled when the invocation ends.

While running, chunks are rows (idempotent by offset, so a resent upload changes nothing).
At the end each stream is assembled in offset order: the first INLINE_CHARS characters stay
on the invocation for pages and APIs (AWS's StandardOutputContent holds 24,000), and a
longer stream is written whole to storage (Django's storage API), the chunks then deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models.functions import Length

from commands.models import Invocation, OutputChunk

INLINE_CHARS = 24000
STREAMS = ("stdout", "stderr")


def chunks_store(invocation_id: int, chunks: Iterable[dict[str, Any]]) -> int:
    """Keep uploaded chunks (already validated); a chunk seen before is ignored.

    An agent whose upload was stored but whose answer was lost sends again from the same
    offset, with whatever came since: at one offset the longer text (the stream only grows)
    replaces the shorter, or the output in between would be lost."""
    longest: dict[tuple[int, str, int], str] = {}
    for chunk in chunks:
        key = (chunk["step"], chunk["stream"], chunk["offset"])
        if len(chunk["data"]) > len(longest.get(key, "")):
            longest[key] = chunk["data"]
    rows = [
        OutputChunk(invocation_id=invocation_id, step=step, stream=stream, offset=offset, data=data)
        for (step, stream, offset), data in longest.items()
    ]
    if not rows:
        return 0
    OutputChunk.objects.bulk_create(rows, ignore_conflicts=True)
    stored = OutputChunk.objects.filter(
        invocation_id=invocation_id, offset__in={offset for _, _, offset in longest}
    ).values_list("pk", "step", "stream", "offset", Length("data"))
    for pk, step, stream, offset, length in stored:
        data = longest.get((step, stream, offset))
        if data is not None and len(data) > length:
            OutputChunk.objects.filter(pk=pk).update(data=data)
    return len(rows)


def _assemble(pieces: Iterable[tuple[int, str]], limit: int | None = None) -> str:
    """Join (offset, data) pieces in offset order; overlaps are trimmed, a gap is marked."""
    text: list[str] = []
    position = 0
    for offset, data in pieces:
        if offset > position:
            text.append(f"\n[... {offset - position} characters were lost in transit ...]\n")
            position = offset
        if offset + len(data) <= position:
            continue
        text.append(data[position - offset :])
        position = offset + len(data)
        if limit is not None and position >= limit:
            break
    return "".join(text)


def live_output(
    invocation: Invocation, step: int, stream: str, *, limit: int | None = INLINE_CHARS
) -> str:
    """What has arrived so far of a running step's stream: its first `limit` characters
    (all of it with None, for a download)."""
    pieces = (
        OutputChunk.objects.filter(invocation=invocation, step=step, stream=stream)
        .order_by("offset")
        .values_list("offset", "data")
    )
    text = _assemble(pieces.iterator(), limit)
    return text if limit is None else text[:limit]


def output_file_name(invocation: Invocation, step: int, stream: str) -> str:
    return f"commands/{invocation.command.command_id}/{invocation.node_id}/{step}.{stream}.txt"


def chunked_invocations(invocations: list[Invocation]) -> set[int]:
    """The pks of those invocations that have output chunks stored (one query for a batch)."""
    return set(
        OutputChunk.objects.filter(invocation__in=[i.pk for i in invocations])
        .order_by()
        .values_list("invocation_id", flat=True)
        .distinct()
    )


def streams_finalize(
    invocation: Invocation, steps: list[dict[str, Any]], *, has_chunks: bool | None = None
) -> list[dict[str, Any]]:
    """Assemble each step's streams (with the tails the reply carried) into the stored form.
    `has_chunks`: whether chunks are stored, when the caller has asked already."""
    tails = [
        {
            "step": index,
            "stream": stream,
            "offset": report["offset"],
            "data": report["data"],
        }
        for index, step in enumerate(steps)
        for stream in STREAMS
        if (report := step.get(stream)) and report.get("data")
    ]
    if tails:
        chunks_store(invocation.pk, tails)
    elif has_chunks is False or (
        has_chunks is None and not OutputChunk.objects.filter(invocation=invocation).exists()
    ):
        # The common case of a quiet command: one query, not two per stream.
        return [_quiet_step(step) for step in steps]
    stored: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        entry = {key: value for key, value in step.items() if key not in STREAMS}
        for stream in STREAMS:
            entry[stream] = _stream_finalize(invocation, index, stream, step.get(stream) or {})
        stored.append(entry)
    OutputChunk.objects.filter(invocation=invocation).delete()
    return stored


def _quiet_step(step: dict[str, Any]) -> dict[str, Any]:
    entry = {key: value for key, value in step.items() if key not in STREAMS}
    for stream in STREAMS:
        report = step.get(stream) or {}
        entry[stream] = {
            "inline": "",
            "length": 0,
            "inline_cut": False,
            "dropped_bytes": int(report.get("dropped_bytes") or 0),
            "file": "",
        }
    return entry


def _stream_finalize(
    invocation: Invocation, step: int, stream: str, report: dict[str, Any]
) -> dict[str, Any]:
    pieces = (
        OutputChunk.objects.filter(invocation=invocation, step=step, stream=stream)
        .order_by("offset")
        .values_list("offset", "data")
    )
    text = _assemble(pieces.iterator()) if pieces.exists() else ""
    file_name = ""
    if len(text) > INLINE_CHARS:
        file_name = default_storage.save(
            output_file_name(invocation, step, stream), ContentFile(text.encode("utf-8"))
        )
    return {
        "inline": text[:INLINE_CHARS],
        "length": len(text),
        "inline_cut": len(text) > INLINE_CHARS,
        "dropped_bytes": int(report.get("dropped_bytes") or 0),
        "file": file_name,
    }


def stream_full_text(invocation: Invocation, step: int, stream: str) -> str:
    """The whole stored stream (for downloads): the file, or the inline copy when it is all."""
    entry = (invocation.steps[step] if step < len(invocation.steps) else {}).get(stream) or {}
    if entry.get("file"):
        with default_storage.open(entry["file"], "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    if not invocation.is_terminal:
        return live_output(invocation, step, stream, limit=None)
    return str(entry.get("inline", ""))
