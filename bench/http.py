"""Throughput and latency of the authenticated read `GET /api/v1/me`, gunicorn beside daphne.

The `web` role (gunicorn, DESIGN.md §2) exists because plain Django HTTP under an ASGI server
measured several times slower; this benchmark keeps that claim honest. Both servers run as
shipped (`manage.py serve web|ws`), one after the other on the same database, and wrk loads them
from a separate process on the same machine, so the two share the CPU with the load generator
alike. Each figure is the median of a few runs; the ratio is the one to quote.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from bench import _stack
from bosun.lib import config as bosun_config

TARGET_WEB_RPS = 1500
ENDPOINT = "/api/v1/me"
LUA_SCRIPT = Path(__file__).with_suffix(".lua")
# Sized for the 2-core machines Bosun is measured on: two wrk threads, and enough connections to
# keep every gunicorn worker busy with some queue behind it, not so many that queueing dominates.
THREADS = 2
CONNECTIONS = 32
WARMUP_SECONDS = 3  # opens the database connections and fills the caches before measuring
RUN_SECONDS = 10
RUNS = 3
ROLES = {"web": "gunicorn", "ws": "daphne"}


def run() -> dict:
    started = time.monotonic()
    wrk = _wrk()
    with _stack.released() as (env, data_dir, _):
        servers = {role: _measure(role, env=env, data_dir=data_dir, wrk=wrk) for role in ROLES}
        web_workers = bosun_config.load(env, base_dir=_stack.ROOT).web_workers
    web, ws = servers["web"]["median"], servers["ws"]["median"]
    return {
        "endpoint": f"GET {ENDPOINT}",
        "stores": (
            "PostgreSQL and Redis on 127.0.0.1; a throwaway database whose role may open "
            f"{_stack.CONNECTION_LIMIT} connections"
        ),
        "web_workers": web_workers,
        "load": {
            "tool": _version(wrk),
            "threads": THREADS,
            "connections": CONNECTIONS,
            "warmup_seconds": WARMUP_SECONDS,
            "run_seconds": RUN_SECONDS,
            "runs": RUNS,
        },
        "servers": servers,
        "web_to_ws_ratio": round(web["requests_per_second"] / max(ws["requests_per_second"], 1), 2),
        "target": {
            "web_requests_per_second": TARGET_WEB_RPS,
            "met": web["requests_per_second"] >= TARGET_WEB_RPS and web["failed"] == 0,
        },
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }


def summary(result: dict) -> str:
    parts = [
        _describe(f"{role} ({server})", result["servers"][role]["median"])
        for role, server in ROLES.items()
    ]
    verdict = "met" if result["target"]["met"] else "MISSED"
    return (
        f"{'; '.join(parts)}; web/ws {result['web_to_ws_ratio']}x; "
        f"target {result['target']['web_requests_per_second']:,} req/s {verdict} "
        f"({result['elapsed_seconds']:.0f} s)"
    )


def _describe(label: str, median: dict) -> str:
    failed = f", {median['failed']:,} FAILED" if median["failed"] else ""
    return (
        f"{label} {median['requests_per_second']:,.0f} req/s "
        f"p50 {median['p50_ms']} ms p99 {median['p99_ms']} ms{failed}"
    )


def _measure(role: str, *, env: dict[str, str], data_dir: Path, wrk: str) -> dict:
    with _stack.serving(role, env=env, log_path=data_dir / f"{role}.log") as base_url:
        session = _stack.sign_in(base_url)
        url = base_url + ENDPOINT
        _check_endpoint(url, session)
        _load(wrk, url, session, seconds=WARMUP_SECONDS)
        runs = [_load(wrk, url, session, seconds=RUN_SECONDS) for _ in range(RUNS)]
    measured = {
        "median": {
            key: statistics.median(run[key] for run in runs)
            for key in ("requests_per_second", "p50_ms", "p99_ms", "failed")
        },
        "runs": runs,
    }
    if any(run["failed"] for run in runs):
        # The why of the failures, so the result file alone is enough to start fixing them.
        measured["server_errors"] = _stack.error_lines(data_dir / f"{role}.log")
    return measured


def _check_endpoint(url: str, session: str) -> None:
    """One request by hand first: wrk would count a 403 page as fast as a real answer."""
    request = urllib.request.Request(url, headers={"Cookie": f"bosun_session={session}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    if body.get("username") != "admin":
        raise RuntimeError(f"{url} answered {body!r}, not the signed-in admin")


def _load(wrk: str, url: str, session: str, *, seconds: int) -> dict:
    done = subprocess.run(
        [
            wrk, f"--threads={THREADS}", f"--connections={CONNECTIONS}", f"--duration={seconds}s",
            f"--script={LUA_SCRIPT}", f"--header=Cookie: bosun_session={session}", url,
        ],
        capture_output=True, text=True, check=False, timeout=seconds + 60,
    )  # fmt: skip
    return wrk_figures(done.returncode, done.stdout, done.stderr)


def wrk_figures(returncode: int, stdout: str, stderr: str) -> dict:
    """The figures a wrk run printed through the done() hook of bench/http.lua (one JSON line).

    A run stopped by SIGINT (a load held for as long as something else runs) still reports.
    """
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk failed ({returncode}):\n{stdout}{stderr}")
    figures = json.loads(lines[-1])
    # wrk counts an error page as a request; throughput counts only the right answers, and the
    # failures (error pages and socket errors) are reported beside it instead of ending the run.
    errors = figures["errors"]
    answered = figures["requests"] - errors["status"]
    latency = figures["latency_us"]
    return {
        "requests_per_second": round(answered / (figures["duration_us"] / 1e6), 1),
        "p50_ms": round(latency["p50"] / 1000, 2),
        "p99_ms": round(latency["p99"] / 1000, 2),
        "max_ms": round(latency["max"] / 1000, 2),
        "seconds": round(figures["duration_us"] / 1e6, 2),
        "answered": answered,
        "failed": sum(errors.values()),
        "errors": errors,
    }


def _wrk() -> str:
    """wrk's path, installing Debian's package when we may; pip has no wrk to offer."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "wrk"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
        )
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "bench http: the load generator wrk is not installed; install it with "
        "`sudo apt-get install wrk` (Debian/Ubuntu) and run the benchmark again"
    )


def _version(wrk: str) -> str:
    # `wrk --version` prints its banner and exits 1.
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.split("Copyright")[0].strip()
