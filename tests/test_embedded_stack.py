"""`make run`'s stack as a user meets it: first start, a clean stop, a fast second start."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.processes import PYTHON, ROOT, bosun_env, free_port

READY = "Bosun is running at"


def start(data_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "manage.py", "serve", "embedded"],
        cwd=ROOT,
        env=bosun_env(BOSUN_DATA_DIR=str(data_dir), BOSUN_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen, marker: str, timeout: float = 90) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in:\n" + "\n".join(lines[-40:]))


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def stop(process: subprocess.Popen) -> tuple[int, float, list[str]]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read().splitlines()
    code = process.wait(timeout=30)
    return code, time.monotonic() - started, rest


def test_first_start_prints_the_password_once_stops_cleanly_and_restarts_fast(tmp_path):
    data_dir = tmp_path / "var"
    port = free_port()

    first = start(data_dir, port)
    try:
        lines = read_until(first, READY)
        # Celery logs "celery@HOST ready." once it consumes from the broker.
        # The worker may be ready before the web line above, which then read its line already.
        if not any(" ready." in line for line in lines):
            lines += read_until(first, " ready.")
        children = children_of(first.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            health = json.load(answer)
    finally:
        code, took, rest = stop(first)
    output = "\n".join(lines + rest)
    assert f"{READY} http://127.0.0.1:{port}" in output
    password_file = data_dir / "admin-password"
    password = password_file.read_text().strip()
    assert f"    {password}" in output
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert any(line.startswith("web    | ") for line in lines + rest)
    assert any(line.startswith("worker | ") for line in lines + rest)

    assert health["status"] == "ok"
    assert code == 0, output
    assert took < 10, f"stopping took {took:.1f}s"
    assert len(children) == 3  # web, worker and this host's agent
    assert not [pid for pid in children if alive(pid)]
    assert (data_dir / "bosun.sqlite3").is_file()

    second = start(data_dir, port)
    try:
        again = read_until(second, READY)
    finally:
        stop(second)
    assert not any("migrations" in line or "Collecting" in line for line in again)
    assert password not in "\n".join(again)
    assert os.path.getsize(password_file) > 0
