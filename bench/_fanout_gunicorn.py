"""A gunicorn config file for bench/fanout.py's profile pass (never the shipped server's).

`manage.py serve web` starts gunicorn as shipped; gunicorn also reads `GUNICORN_CMD_ARGS`, so
the profile pass passes `--config <this file>` there and `BENCH_FANOUT_HOOK_DIR` in the
environment. Each worker then meters every request it serves by kind (send, fetch, ack,
reply, heartbeat, …): its CPU time (the sync worker serves one request at a time, so the
process's CPU time between gunicorn's pre_request and post_request hooks is the request's;
the part spent off the serving thread, in async_to_sync's event-loop thread where the channel
layer's group_sends run, is kept apart), its wall time, its SQL statements (an execute
wrapper on the worker's connection: count, time, and the statements of one request per
statement count), under the phase named in
`BENCH_FANOUT_HOOK_DIR/phase` (read per request; "off" or no file: not metered). In a phase
whose name starts with "profile" each kind also runs under a cProfile of its own. On exit each
worker writes `web-PID.json` (the meters) and `web-PID-PHASE-KIND.prof` there.
"""

from __future__ import annotations

import cProfile
import json
import os
import re
import time
from pathlib import Path
from typing import Any

PROFILE_PHASE = "profile"
SAMPLE_SQL_CHARACTERS = 240

_MESSAGE_PATH = re.compile(r"^/agent/v1/messages/[^/]+/(?P<kind>[a-z-]+)/?$")
_meters: dict[str, dict[str, Any]] = {}
_profiles: dict[str, cProfile.Profile] = {}
_current: dict[str, Any] | None = None


def request_kind(method: str, path: str) -> str:
    matched = _MESSAGE_PATH.match(path)
    if matched:
        return matched["kind"]
    if path.startswith("/agent/v1/"):
        return path.rstrip("/").rsplit("/", 1)[-1]
    if path.rstrip("/") == "/api/v1/commands":
        return "send" if method == "POST" else "commands_list"
    if path.startswith("/api/v1/commands/"):
        return "command_get"
    return "other"


def _directory() -> Path | None:
    directory = os.environ.get("BENCH_FANOUT_HOOK_DIR")
    return Path(directory) if directory else None


def _phase() -> str:
    directory = _directory()
    if directory is None:
        return "off"
    try:
        return (directory / "phase").read_text().strip() or "off"
    except OSError:
        return "off"


def _count_query(execute, sql, params, many, context):
    if _current is None:
        return execute(sql, params, many, context)
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _current["queries"] += 1
        _current["db_seconds"] += time.perf_counter() - started
        _current["sql"].append(" ".join(sql.split())[:SAMPLE_SQL_CHARACTERS])


def post_worker_init(worker) -> None:
    from django.db import connections

    # The sync worker serves on its main thread, whose connection wrapper lives as long as
    # the worker (a closed connection is reopened under the same wrapper).
    connections["default"].execute_wrappers.append(_count_query)


def pre_request(worker, req) -> None:
    global _current
    phase = _phase()
    if phase == "off":
        _current = None
        return
    kind = request_kind(req.method, req.path)
    _current = {
        "key": f"{phase}/{kind}",
        "kind": kind,
        "queries": 0,
        "db_seconds": 0.0,
        "sql": [],
        "profile": None,
    }
    if phase.startswith(PROFILE_PHASE):
        profile = _profiles.setdefault(f"{phase}-{kind}", cProfile.Profile())
        _current["profile"] = profile
        profile.enable()
    _current["cpu"] = time.process_time()
    _current["thread_cpu"] = time.thread_time()
    _current["wall"] = time.perf_counter()


def post_request(worker, req, environ, resp) -> None:
    global _current
    current, _current = _current, None
    if current is None:
        return
    cpu = time.process_time() - current["cpu"]
    thread_cpu = time.thread_time() - current["thread_cpu"]
    wall = time.perf_counter() - current["wall"]
    if current["profile"] is not None:
        current["profile"].disable()
    meter = _meters.setdefault(
        current["key"],
        {
            "requests": 0,
            "cpu_seconds": 0.0,
            "other_threads_cpu_seconds": 0.0,
            "wall_seconds": 0.0,
            "queries": 0,
            "db_seconds": 0.0,
            "statuses": {},
            "queries_histogram": {},
            "sql_by_query_count": {},
        },
    )
    meter["requests"] += 1
    meter["cpu_seconds"] += cpu
    meter["other_threads_cpu_seconds"] += max(0.0, cpu - thread_cpu)
    meter["wall_seconds"] += wall
    meter["queries"] += current["queries"]
    meter["db_seconds"] += current["db_seconds"]
    status = str(getattr(resp, "status_code", None) or str(resp.status).split()[0])
    meter["statuses"][status] = meter["statuses"].get(status, 0) + 1
    count = str(current["queries"])
    meter["queries_histogram"][count] = meter["queries_histogram"].get(count, 0) + 1
    meter["sql_by_query_count"].setdefault(count, current["sql"])


def worker_exit(server, worker) -> None:
    directory = _directory()
    if directory is None:
        return
    stem = directory / f"web-{os.getpid()}"
    Path(f"{stem}.json").write_text(json.dumps(_meters))
    for name, profile in _profiles.items():
        profile.dump_stats(f"{stem}-{name}.prof")
