"""The four production roles on fixed ports, restartable as a whole, with their /proc figures.

`_stack.serving` starts one role on a fresh port for a block; the fleet benchmark needs all
four at once (web, ws, worker, beat), their process ids for CPU and memory, and a restart of
every one of them on the same ports while the simulated fleet keeps running. PostgreSQL and
Redis are shared machine services: their CPU is read too, apart from the server's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import _procfs, _stack

ROLES = ("web", "ws", "worker", "beat")
HTTP_ROLES = ("web", "ws")
START_TIMEOUT = 90
STOP_TIMEOUT = 15
# What the Celery worker logs once it consumes; before that, a restart is not over.
WORKER_READY = b" ready."


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of process trees, including children they have reaped (an exited gunicorn
    worker or PostgreSQL backend still counts, through its parent's cutime/cstime)."""

    seconds: float

    @staticmethod
    def of(roots: list[int]) -> Cpu:
        total = 0.0
        for pid in _procfs.tree_pids(roots):
            fields = _procfs._stat_fields(pid)
            if fields is not None:
                # utime, stime, cutime, cstime: the 12th to 15th fields after the name.
                total += sum(int(value) for value in fields[11:15]) / _procfs.CLOCK_TICKS
        return Cpu(total)


class ServerRoles:
    """`manage.py serve ROLE` for each production role; `web` and `ws` on ports kept across
    restarts, so the simulated agents find the same addresses after one."""

    def __init__(self, *, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.ports = {role: _stack.free_port() for role in HTTP_ROLES}
        self.processes: dict[str, subprocess.Popen] = {}
        self.ready_seconds: dict[str, float] = {}

    def url(self, role: str) -> str:
        return f"http://{_stack.HOST}:{self.ports[role]}"

    def log_path(self, role: str) -> Path:
        return self.log_dir / f"{role}.log"

    def pids(self) -> dict[str, int]:
        return {role: process.pid for role, process in self.processes.items()}

    def start(self) -> None:
        """Start every role at once (as a service manager would) and wait until each serves."""
        offsets = {}
        for role in ROLES:
            log_path = self.log_path(role)
            offsets[role] = log_path.stat().st_size if log_path.exists() else 0
            env = dict(self.env)
            if role in self.ports:
                env["BOSUN_PORT"] = str(self.ports[role])
            with log_path.open("ab") as log:
                self.processes[role] = subprocess.Popen(
                    [_stack.PYTHON, "manage.py", "serve", role],
                    cwd=_stack.ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # one signal reaches the role's children too
                )
        self.ready_seconds = self._wait_ready(offsets)

    def stop(self) -> None:
        """SIGTERM every role at once, then wait; a role still up after STOP_TIMEOUT is killed."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # A killed role's children (a gunicorn worker, a Celery pool process) may outlive it.
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        self.processes = {}

    def _wait_ready(self, log_offsets: dict[str, int]) -> dict[str, float]:
        """Seconds from now until each role served (they start side by side)."""
        started = time.monotonic()
        ready: dict[str, float] = {}
        while len(ready) < len(self.processes):
            if time.monotonic() - started > START_TIMEOUT:
                late = sorted(set(self.processes) - set(ready))
                raise RuntimeError(f"not ready within {START_TIMEOUT} s: {', '.join(late)}")
            for role, process in self.processes.items():
                if role in ready:
                    continue
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the {role} role exited with {process.returncode}:\n{self.tail(role)}"
                    )
                if self._ready(role, log_offsets[role]):
                    ready[role] = round(time.monotonic() - started, 2)
            time.sleep(0.1)
        return ready

    def _ready(self, role: str, log_offset: int) -> bool:
        if role == "web":
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url(role)}/login/", timeout=2),
            ):
                return True
            return False
        if role == "ws":
            with (
                contextlib.suppress(OSError),
                socket.create_connection((_stack.HOST, self.ports[role]), timeout=1),
            ):
                return True
            return False
        if role == "worker":
            with self.log_path(role).open("rb") as log:
                log.seek(log_offset)
                return WORKER_READY in log.read()
        return True  # beat: it ticks on its own; running is all there is to wait for

    def tail(self, role: str, lines: int = 30) -> str:
        text = self.log_path(role).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def usage(self) -> dict[str, dict]:
        """Per role: CPU seconds so far, RSS, PSS and processes of its tree, now."""
        figures = {}
        for role, pid in self.pids().items():
            memory = _procfs.usage([pid])
            figures[role] = {
                "cpu_seconds": Cpu.of([pid]).seconds,
                "rss_bytes": memory.rss_bytes,
                "pss_bytes": memory.pss_bytes,
                "processes": memory.processes,
                "rss_bytes_each": [_rss_bytes(one) for one in _procfs.tree_pids([pid])],
            }
        return figures


@contextlib.contextmanager
def running(*, env: dict[str, str], log_dir: Path) -> Iterator[ServerRoles]:
    roles = ServerRoles(env=env, log_dir=log_dir)
    try:
        roles.start()
        yield roles
    finally:
        roles.stop()


def admin_access_key(env: dict[str, str]) -> str:
    """A new access key of the admin's, as the REST API's `Authorization: Bearer` value."""
    done = subprocess.run(
        [_stack.PYTHON, "manage.py", "createaccesskey", "--user", "admin", "--json"],
        cwd=_stack.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"createaccesskey failed:\n{done.stdout}{done.stderr}")
    pair = json.loads(done.stdout.strip().splitlines()[-1])
    return f"{pair['AccessKeyId']}:{pair['SecretAccessKey']}"


def _rss_bytes(pid: int) -> int:
    """One process's own resident set (its 22nd stat field after the name, in pages)."""
    fields = _procfs._stat_fields(pid)
    return int(fields[21]) * _procfs.PAGE_SIZE if fields else 0


def machine_service_roots() -> dict[str, list[int]]:
    """The PostgreSQL postmaster and the Redis server, found by name in /proc (they serve
    every client on the machine, so their CPU is theirs, not the Bosun server's)."""
    found: dict[str, list[int]] = {"postgresql": [], "redis": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
            fields = _procfs._stat_fields(int(entry))
        except OSError:
            continue
        if fields is None:
            continue
        parent = int(fields[1])
        parent_name = ""
        with contextlib.suppress(OSError):
            parent_name = Path(f"/proc/{parent}/comm").read_text().strip()
        if name in {"postgres", "postmaster"} and parent_name not in {"postgres", "postmaster"}:
            found["postgresql"].append(int(entry))
        elif name == "redis-server" and parent_name != "redis-server":
            found["redis"].append(int(entry))
    return {service: pids for service, pids in found.items() if pids}
