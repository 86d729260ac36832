"""The embedded stack's process supervisor.

One parent starts every role as a child in its own process group, prefixes each output line
with the role, and on Ctrl-C or SIGTERM stops them all: SIGTERM first, SIGKILL for whatever
is still running after the grace period. If a child dies on its own, the others are stopped
too, so a half-running stack never pretends to be up; an optional role (the local agent) is
only reported when it ends: the server is whole without it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO


@dataclass
class Role:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    # An optional child may end (a deregistered local agent stops by design) without the
    # rest of the stack stopping with it.
    optional: bool = False


class Supervisor:
    def __init__(
        self,
        roles: Sequence[Role],
        *,
        stop_grace: float = 8.0,
        out: IO[str] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.roles = list(roles)
        self.stop_grace = stop_grace
        self.out = out or sys.stdout
        self.on_started = on_started
        self.width = max(len(role.name) for role in self.roles)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._children: list[tuple[Role, subprocess.Popen[bytes]]] = []
        self.exit_code = 0

    def say(self, role: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{role:<{self.width}} | {line}\n")
            self.out.flush()

    def _pump(self, role: Role, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(role.name, raw.decode("utf-8", "replace").rstrip("\n"))
        stream.close()

    def stop(self) -> None:
        """Ask run() to stop every child and return."""
        self._stop.set()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stop()

    def run(self) -> int:
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {
                sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
            }
        try:
            for role in self.roles:
                child = subprocess.Popen(  # noqa: S603 - argv built by Bosun, never a shell
                    list(role.argv),
                    env={**os.environ, **role.env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # Own process group: the terminal's Ctrl-C reaches only the supervisor,
                    # which then stops the children in order instead of all dying at once.
                    start_new_session=True,
                )
                threading.Thread(target=self._pump, args=(role, child.stdout), daemon=True).start()
                self._children.append((role, child))
            if self.on_started:
                self.on_started()
            self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def _watch(self) -> None:
        reported: set[int] = set()
        while not self._stop.wait(0.2):
            for role, child in self._children:
                code = child.poll()
                if code is None or child.pid in reported:
                    continue
                if role.optional:
                    reported.add(child.pid)
                    self.say("bosun", f"{role.name} exited with code {code}; the rest goes on")
                    continue
                self.say("bosun", f"{role.name} exited with code {code}; stopping the others")
                self.exit_code = code or 1
                return

    def _stop_all(self) -> None:
        running = [(role, child) for role, child in self._children if child.poll() is None]
        if running:
            self.say("bosun", "stopping " + ", ".join(role.name for role, _ in running))
        for _, child in running:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        for role, child in running:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say("bosun", f"{role.name} did not stop in {self.stop_grace:.0f}s; killing it")
                _signal_group(child, signal.SIGKILL)
                child.wait()
        self.say("bosun", "stopped")


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, sig)
