"""A headless terminal speaking the browser's session protocol (/tmp contract, PROTOCOL.md).

Output arrives as binary frames `offset (8 bytes, big-endian) + bytes`; the client acks what it
has "rendered" so the relay keeps granting the agent credit, and can reconnect with
`?resume=<offset>` to get exactly what it missed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

OFFSET_BYTES = 8


@dataclass
class ShellClient:
    base_url: str  # http://host:port
    session_cookie: str
    session_id: str
    output: bytearray = field(default_factory=bytearray)
    offset: int = 0  # output bytes received so far (the next expected offset)
    controls: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    _socket: ClientConnection | None = None

    def open(self, *, resume: bool = False, timeout: float = 10.0) -> None:
        host = self.base_url.split("://", 1)[1]
        query = f"?resume={self.offset}" if resume else ""
        self._socket = connect(
            f"ws://{host}/ws/sessions/{self.session_id}/{query}",
            additional_headers={"Cookie": f"bosun_session={self.session_cookie}"},
            origin=self.base_url,
            open_timeout=timeout,
            close_timeout=2,
            proxy=None,
            max_size=None,
        )
        self.close_code = None

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def type(self, text: str) -> None:
        self._require().send(text.encode("utf-8"))

    def send_json(self, frame: dict[str, Any]) -> None:
        self._require().send(json.dumps(frame))

    def resize(self, cols: int, rows: int) -> None:
        self.send_json({"type": "resize", "cols": cols, "rows": rows})

    def terminate(self) -> None:
        self.send_json({"type": "terminate"})

    def read_until(self, wanted: bytes | str, *, timeout: float = 15.0) -> bytes:
        """Read (and ack) until the output holds `wanted`; returns the whole output."""
        needle = wanted.encode("utf-8") if isinstance(wanted, str) else wanted
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0 or not self.receive_one(timeout=left):
                raise AssertionError(
                    f"{needle!r} did not arrive in {timeout:.0f}s; output tail: "
                    f"{bytes(self.output[-400:])!r}; controls: {self.controls[-5:]}"
                )
        return bytes(self.output)

    def read_control(self, kind: str, *, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = next((c for c in self.controls if c.get("type") == kind), None)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not self.receive_one(timeout=left):
                raise AssertionError(f"no {kind!r} frame; controls: {self.controls}")

    def receive_one(self, *, timeout: float) -> bool:
        """One frame; False when the socket closed or nothing came in time."""
        socket = self._require()
        try:
            frame = socket.recv(timeout=timeout)
        except TimeoutError:
            return False
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
            return False
        if isinstance(frame, bytes):
            start = int.from_bytes(frame[:OFFSET_BYTES], "big")
            data = frame[OFFSET_BYTES:]
            if start != self.offset:
                raise AssertionError(f"output at offset {start}, expected {self.offset}")
            self.output += data
            self.offset += len(data)
            socket.send(json.dumps({"type": "ack", "offset": self.offset}))
        else:
            self.controls.append(json.loads(frame))
        return True

    def _require(self) -> ClientConnection:
        if self._socket is None:
            raise AssertionError("the session socket is not open")
        return self._socket
