"""The output of a RunCommand: captured, capped, masked, and uploaded in idempotent chunks.

Each step has two streams. A stream keeps at most `output_limit` bytes of what the process
writes (the rest is read and counted, never stored), decodes them as UTF-8 (invalid bytes
become U+FFFD), and replaces every secure parameter value with `****`. Offsets are in
characters of that masked text, the text the server stores. Text stays in memory only until
the server has confirmed it, so a healthy server keeps the agent's memory small whatever the
limit.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bosun_agent import protocol

MASK = "****"
STREAMS = ("stdout", "stderr")
# Room under the protocol's body limit for the JSON around the chunks.
UPLOAD_BUDGET_BYTES = protocol.MAX_BODY_BYTES - 1024
# A chunk is halved until it fits the room left in a body, but never below this: a piece that
# small that still does not fit waits for the next request.
MIN_SPLIT_CHARS = 1024


class SecretMasker:
    """Replaces secret values in a text that arrives in pieces.

    A value may be cut between two pieces, so the last `longest - 1` characters wait for the
    next piece: a match that starts before them is wholly visible and is replaced now."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so where one value is a prefix of another the longer one is masked.
        values = sorted({value for value in secrets if value}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None
        self._hold = len(values[0]) - 1 if values else 0
        self._pending = ""

    def feed(self, text: str) -> str:
        """The masked text that can be released now; the rest waits for more."""
        if self._pattern is None:
            return text
        buffer = self._pending + text
        settled = len(buffer) - self._hold  # a match starting before here is decided
        pieces = []
        released = 0
        for match in self._pattern.finditer(buffer):
            if match.start() >= settled:
                break
            pieces.append(buffer[released : match.start()])
            pieces.append(MASK)
            released = match.end()
        end = max(settled, released)
        pieces.append(buffer[released:end])
        self._pending = buffer[end:]
        return "".join(pieces)

    def finish(self) -> str:
        """Everything still held back, masked: the stream has ended."""
        buffer, self._pending = self._pending, ""
        if self._pattern is None:
            return buffer
        return self._pattern.sub(MASK, buffer)


def utf8_cut(data: bytes, size: int) -> int:
    """A cut at or before `size` that does not split a UTF-8 character."""
    cut = size
    while cut > 0 and cut < len(data) and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut


class StreamCapture:
    """One stream of one step."""

    def __init__(self, limit_bytes: int, secrets: Iterable[str] = ()) -> None:
        self.limit_bytes = limit_bytes
        self.kept_bytes = 0
        self.dropped_bytes = 0
        self.length = 0  # characters of masked text so far
        self.confirmed = 0  # characters the server has confirmed
        self._full = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._masker = SecretMasker(secrets)
        self._unconfirmed: list[str] = []  # the text from `confirmed` on, in pieces
        self._finished = False

    def feed(self, data: bytes) -> None:
        if self._full:
            self.dropped_bytes += len(data)
            return
        room = self.limit_bytes - self.kept_bytes
        if len(data) > room:
            # Over the limit from here on: nothing more is kept, so the text has no holes.
            cut = utf8_cut(data, room)
            self.dropped_bytes += len(data) - cut
            data = data[:cut]
            self._full = True
        self.kept_bytes += len(data)
        self._append(self._masker.feed(self._decoder.decode(data)))

    def write(self, text: str) -> None:
        """Text the agent itself reports on this stream (why a step was skipped)."""
        self.feed(text.encode("utf-8"))

    def finish(self) -> None:
        """The stream ended: release what the decoder and the masker held back."""
        if self._finished:
            return
        self._finished = True
        tail = self._masker.feed(self._decoder.decode(b"", final=True))
        self._append(tail + self._masker.finish())

    def _append(self, text: str) -> None:
        if text:
            self._unconfirmed.append(text)
            self.length += len(text)

    def unsent(self) -> str:
        """The masked text the server has not confirmed (from offset `confirmed`)."""
        if len(self._unconfirmed) > 1:
            self._unconfirmed = ["".join(self._unconfirmed)]
        return self._unconfirmed[0] if self._unconfirmed else ""

    def confirm(self, upto: int) -> None:
        """The server holds this stream's text up to offset `upto`: forget it here."""
        if upto <= self.confirmed:
            return
        text = self.unsent()
        drop = min(upto - self.confirmed, len(text))
        self._unconfirmed = [text[drop:]] if drop < len(text) else []
        self.confirmed += drop

    def to_wire(self, max_chars: int = protocol.MAX_OUTPUT_CHUNK_CHARS) -> dict[str, Any]:
        """The stream in a reply: totals, and the unconfirmed tail (at most `max_chars`)."""
        return {
            "length": self.length,
            "dropped_bytes": self.dropped_bytes,
            "offset": self.confirmed,
            "data": self.unsent()[:max_chars],
        }


@dataclass(frozen=True)
class Chunk:
    step: int
    stream: str
    offset: int
    data: str

    def to_wire(self) -> dict[str, Any]:
        return {"step": self.step, "stream": self.stream, "offset": self.offset, "data": self.data}


def json_size(value: Any) -> int:
    """Bytes of `value` as the client sends it (compact JSON, UTF-8, not ASCII-escaped)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class RunOutput:
    """Every stream of one run, and what the server still lacks of each."""

    def __init__(self, limit_bytes: int, secrets: Iterable[str] = ()) -> None:
        self.limit_bytes = limit_bytes
        self.secrets = tuple(secrets)
        self._streams: dict[tuple[int, str], StreamCapture] = {}

    def stream(self, step: int, name: str) -> StreamCapture:
        key = (step, name)
        capture = self._streams.get(key)
        if capture is None:
            capture = self._streams[key] = StreamCapture(self.limit_bytes, self.secrets)
        return capture

    def step_wire(self, step: int, max_chars: int = protocol.MAX_OUTPUT_CHUNK_CHARS) -> Any:
        return {name: self.stream(step, name).to_wire(max_chars) for name in STREAMS}

    def _ordered(self) -> list[tuple[tuple[int, str], StreamCapture]]:
        return sorted(self._streams.items())

    def unsent_chars(self) -> int:
        return sum(len(capture.unsent()) for _, capture in self._ordered())

    def pending_chunks(self, budget: int = UPLOAD_BUDGET_BYTES) -> list[Chunk]:
        """The unconfirmed text of every stream, as chunks of one upload body of at most
        `budget` bytes and MAX_OUTPUT_CHUNKS chunks: oldest step first, each chunk continuing
        where the last one ended."""
        chunks: list[Chunk] = []
        used = json_size({"chunks": []})
        for (step, name), capture in self._ordered():
            text = capture.unsent()
            position = 0
            while position < len(text):
                if len(chunks) >= protocol.MAX_OUTPUT_CHUNKS:
                    return chunks
                piece = text[position : position + protocol.MAX_OUTPUT_CHUNK_CHARS]
                chunk = Chunk(step, name, capture.confirmed + position, piece)
                size = json_size(chunk.to_wire()) + 1  # and its comma
                while used + size > budget and len(piece) > MIN_SPLIT_CHARS:
                    piece = piece[: len(piece) // 2]
                    chunk = Chunk(step, name, capture.confirmed + position, piece)
                    size = json_size(chunk.to_wire()) + 1
                if used + size > budget:
                    return chunks
                chunks.append(chunk)
                used += size
                position += len(piece)
        return chunks

    def confirm(self, chunks: Iterable[Chunk]) -> None:
        for chunk in chunks:
            self.stream(chunk.step, chunk.stream).confirm(chunk.offset + len(chunk.data))

    def tails_fit(self, budget: int) -> bool:
        """Whether what is unconfirmed can travel in the reply: at most a chunk per stream,
        all of it within `budget` bytes."""
        used = 0
        for _, capture in self._ordered():
            text = capture.unsent()
            if len(text) > protocol.MAX_OUTPUT_CHUNK_CHARS:
                return False
            used += json_size(text)
        return used <= budget

    def tail_allowances(self, budget: int) -> dict[tuple[int, str], int]:
        """How many unconfirmed characters of each stream a reply of `budget` bytes can carry,
        oldest step first, when the server would not take the rest as uploads."""
        allowances = {}
        left = budget
        for key, capture in self._ordered():
            text = capture.unsent()[: protocol.MAX_OUTPUT_CHUNK_CHARS]
            while text and json_size(text) > left:
                text = text[: len(text) // 2]
            allowances[key] = len(text)
            left -= json_size(text)
        return allowances
