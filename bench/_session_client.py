"""The session benchmark's client loops: one headless terminal speaking the browser protocol
(tests/support/shell_client.py's, on asyncio), and the same loops over a raw local PTY.

Output arrives as binary frames `offset (8 bytes, big-endian) + bytes`; the terminal acks each
frame once it has "rendered" it (appended it), as the browser's xterm.js write callback does.
Keystrokes go as binary frames. The PTY side runs the same loops on a pty.openpty() master.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import struct
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

OFFSET = struct.Struct(">Q")
KEYS = b"abcdefghijklmnopqrstuvwxyz0123456789"
# Between keystrokes: a fast typist's keys are ~50 ms apart; a little pause lets the ack of
# the previous echo land first, as it does in a browser.
KEY_GAP_SECONDS = 0.005


class Output:
    """What one terminal received, and a way to wait for more."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._grew = asyncio.Event()

    def add(self, data: bytes) -> None:
        self.data += data
        self._grew.set()

    async def until(self, wanted: bytes, start: int, timeout: float) -> int:
        """Wait until `wanted` appears at or after `start`; returns the index just past it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.data.find(wanted, start)
            if found >= 0:
                return found + len(wanted)
            # Next time, only what arrived since (a flood must not be scanned again and again).
            start = max(start, len(self.data) - len(wanted) + 1)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{wanted!r} did not arrive in {timeout:.0f} s; tail "
                    f"{bytes(self.data[-300:])!r}"
                )
            self._grew.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grew.wait(), left)

    async def more_than(self, length: int) -> None:
        while len(self.data) <= length:
            self._grew.clear()
            if len(self.data) > length:
                return
            await self._grew.wait()


class Terminal:
    """The browser's side of one session: /ws/sessions/<id>/ with the signed-in cookie."""

    def __init__(self, base_url: str, cookie: str, session_id: str) -> None:
        self.base_url = base_url
        self.cookie = cookie
        self.session_id = session_id
        self.output = Output()
        self.controls: list[dict[str, Any]] = []
        self.ended = asyncio.Event()
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        host = self.base_url.split("://", 1)[1]
        self._socket = await connect(
            f"ws://{host}/ws/sessions/{self.session_id}/",
            additional_headers={"Cookie": f"bosun_session={self.cookie}"},
            origin=self.base_url,  # type: ignore[arg-type]
            max_size=None,
            proxy=None,
            open_timeout=10,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        socket = self._require()
        async for frame in socket:
            if isinstance(frame, bytes):
                start = OFFSET.unpack_from(frame)[0]
                if start != len(self.output.data):
                    raise AssertionError(f"output at {start}, expected {len(self.output.data)}")
                self.output.add(frame[OFFSET.size :])
                await socket.send(
                    json.dumps({"type": "ack", "offset": len(self.output.data)}),
                )
            else:
                control = json.loads(frame)
                self.controls.append(control)
                if control.get("type") == "ended":
                    self.ended.set()
        self.ended.set()

    async def type(self, data: bytes) -> None:
        await self._require().send(data)

    async def terminate(self, timeout: float = 30) -> None:
        await self._require().send(json.dumps({"type": "terminate"}))
        await asyncio.wait_for(self.ended.wait(), timeout)

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    def _require(self) -> ClientConnection:
        if self._socket is None:
            raise RuntimeError("not open")
        return self._socket


class LocalPty:
    """A program on a raw local PTY, read on the same event loop: the baseline."""

    def __init__(self, argv: Sequence[str], *, raw_input: bool = False) -> None:
        self.output = Output()
        self.eof = asyncio.Event()
        master, slave = pty.openpty()
        self.master = master
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave side is closed
            data = b""
        if data:
            self.output.add(data)
            return
        asyncio.get_running_loop().remove_reader(self.master)
        self.eof.set()

    async def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self.master)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self.master)


async def echo_latencies(
    target: Terminal | LocalPty, samples: int, warmup: int, timeout: float = 10
) -> list[float]:
    """Type one key at a time into a program echoing each byte; seconds from send to echo."""
    output = target.output
    timings = []
    for index in range(warmup + samples):
        key = KEYS[index % len(KEYS) : index % len(KEYS) + 1]
        length = len(output.data)
        started = time.perf_counter()
        await target.type(key)
        await asyncio.wait_for(output.until(key, length, timeout), timeout)
        elapsed = time.perf_counter() - started
        if index >= warmup:
            timings.append(elapsed)
        await asyncio.sleep(KEY_GAP_SECONDS)
    return timings
