"""Starting real Bosun processes for end-to-end tests, and waiting for them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


def bosun_env(**overrides: str) -> dict[str, str]:
    """The environment of a Bosun child process: ours, minus test-only settings."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    env["DJANGO_SETTINGS_MODULE"] = "bosun.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


@contextlib.contextmanager
def running(argv: Sequence[str], *, env: dict[str, str], name: str) -> Iterator[subprocess.Popen]:
    """Run a process for the duration of the block; its output goes to a log shown on failure."""
    log = tempfile.NamedTemporaryFile(prefix=f"bosun-{name}-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        list(argv), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    process.log_path = Path(log.name)  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen, *, timeout: float = 15.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def log_tail(process: subprocess.Popen, lines: int = 40) -> str:
    path: Path = process.log_path  # type: ignore[attr-defined]
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
