"""asciicast v2: the header, event lines, and a session's relayed bytes turned into them.

A .cast file is one header line (a JSON object) and then one event per line, each a JSON
array `[time, code, data]`: seconds since the start, "o" output, "i" input, "r" resize
("COLSxROWS") or "m" marker, and text (https://docs.asciinema.org/manual/asciicast/v2/).
"""

from __future__ import annotations

import codecs
import json
import math
import re
from dataclasses import dataclass
from typing import Any

OUTPUT = "o"
INPUT = "i"
RESIZE = "r"
MARKER = "m"
EVENT_CODES = frozenset({OUTPUT, INPUT, RESIZE, MARKER})
_RESIZE_DATA = re.compile(r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$")


def header_line(
    *, width: int, height: int, timestamp: int, term: str, login_shell: str, title: str
) -> str:
    """The header as one line of JSON, without the newline: stored as is, and hashed so."""
    header = {
        "version": 2,
        "width": width,
        "height": height,
        "timestamp": timestamp,
        "env": {"TERM": term, "SHELL": login_shell},
        "title": title,
    }
    return json.dumps(header, ensure_ascii=False, separators=(", ", ": "))


def event_line(elapsed: float, code: str, text: str) -> bytes:
    """One event line, newline included. Microseconds are as fine as a terminal needs, and a
    fixed format keeps the bytes the same whoever writes them."""
    if code not in EVENT_CODES:
        raise ValueError(f"unknown asciicast event code {code!r}")
    if not math.isfinite(elapsed):
        raise ValueError(f"an event's time must be a finite number, got {elapsed!r}")
    data = json.dumps(text, ensure_ascii=False)
    return f"[{max(0.0, elapsed):.6f}, {json.dumps(code)}, {data}]\n".encode()


def resize_line(elapsed: float, cols: int, rows: int) -> bytes:
    return event_line(elapsed, RESIZE, f"{cols}x{rows}")


class CastEncoder:
    """One session's relayed bytes as event lines; keep one per session.

    A PTY read ends wherever the buffer did, often in the middle of a multi-byte character:
    each stream keeps its own incremental UTF-8 decoder, which holds the first bytes of a
    split character back until the rest arrives instead of turning both halves into U+FFFD.
    Bytes that are not UTF-8 at all become U+FFFD, as a terminal shows them.
    """

    def __init__(self, *, input_recorded: bool) -> None:
        self.input_recorded = input_recorded
        decoder = codecs.getincrementaldecoder("utf-8")
        self._decoders = {OUTPUT: decoder(errors="replace"), INPUT: decoder(errors="replace")}

    def event(self, elapsed: float, stream: str, data: bytes) -> bytes:
        """The lines for `data` read from `stream` ("o" or "i"); b"" while a character is
        incomplete, and always for input when input is not recorded."""
        if stream not in self._decoders:
            raise ValueError(f"bytes come from the output or the input, not {stream!r}")
        if stream == INPUT and not self.input_recorded:
            return b""
        text = self._decoders[stream].decode(data)
        return event_line(elapsed, stream, text) if text else b""

    def output(self, elapsed: float, data: bytes) -> bytes:
        return self.event(elapsed, OUTPUT, data)

    def input(self, elapsed: float, data: bytes) -> bytes:
        return self.event(elapsed, INPUT, data)

    def resize(self, elapsed: float, cols: int, rows: int) -> bytes:
        return resize_line(elapsed, cols, rows)

    def finish(self, elapsed: float) -> bytes:
        """At the end of the session: a character left incomplete becomes U+FFFD."""
        lines = b""
        for stream, decoder in self._decoders.items():
            text = decoder.decode(b"", final=True)
            if text and (stream == OUTPUT or self.input_recorded):
                lines += event_line(elapsed, stream, text)
        return lines


@dataclass(frozen=True)
class EventCounts:
    events: int
    output_bytes: int  # UTF-8 bytes of the "o" events' text


def parse_events(data: bytes, *, input_allowed: bool) -> EventCounts:
    """Check that `data` is whole asciicast v2 event lines and count them; ValueError names
    the first bad line (1-based, within `data`)."""
    if not data.endswith(b"\n"):
        raise ValueError("event data must be whole lines, each ending with a newline")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"event data is not UTF-8 (byte {error.start})") from None
    events = output_bytes = 0
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        code, payload = _parse_line(number, line)
        if code == INPUT and not input_allowed:
            raise ValueError(f"line {number}: an input event, but input is not recorded")
        if code == OUTPUT:
            output_bytes += len(payload.encode("utf-8"))
        events += 1
    return EventCounts(events=events, output_bytes=output_bytes)


def _parse_line(number: int, line: str) -> tuple[str, str]:
    try:
        event = json.loads(line, parse_constant=_refuse_constant)
    except ValueError:
        raise ValueError(f"line {number}: not a JSON event") from None
    if not (isinstance(event, list) and len(event) == 3):
        raise ValueError(f"line {number}: an event is [time, code, data]")
    elapsed, code, payload = event
    if isinstance(elapsed, bool) or not isinstance(elapsed, int | float) or elapsed < 0:
        raise ValueError(f"line {number}: the time must be a number of seconds, 0 or more")
    if code not in EVENT_CODES:
        raise ValueError(f"line {number}: unknown event code {code!r}")
    if not isinstance(payload, str):
        raise ValueError(f"line {number}: the event data must be text")
    if code == RESIZE and not _RESIZE_DATA.match(payload):
        raise ValueError(f"line {number}: a resize is COLSxROWS, got {payload[:20]!r}")
    return code, payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a time")
