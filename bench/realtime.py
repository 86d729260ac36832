"""The embedded stack's task and live-event path, as a user feels it.

`make run`'s stack, signed in with a websocket open: each round posts a system check (the
dashboard's button), then waits for its `passed` event to arrive on the websocket. That trip
crosses every embedded part: the web server writes the row and enqueues the task on commit,
the worker picks it up from the file broker, runs the checks, writes the result and publishes
on commit through the SQLite channel layer, and daphne pushes it to the browser.

Two figures per round: the queue wait (request written → worker started, from the rows'
timestamps: the broker's share) and the full trip seen by the client. Target: a task round
trip well under 100 ms.
"""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import time
import urllib.request
from datetime import datetime

from websockets.sync.client import connect

from bench import _stack

ROUNDS = 40
WARMUP_ROUNDS = 5
TARGET_QUEUE_WAIT_MS = 100


def run() -> dict:
    with _stack.data_dir() as data_dir:
        env = _stack.bosun_env(data_dir, {})
        log_path = data_dir / "embedded.log"
        with _stack.serving("embedded", env=env, log_path=log_path) as base_url:
            session = _stack.sign_in(base_url)
            trips = _measure(base_url, session)
        queue_waits = _queue_waits(data_dir / "bosun.sqlite3")[WARMUP_ROUNDS:]
    trips = trips[WARMUP_ROUNDS:]
    queue_wait_p50 = statistics.median(queue_waits)
    return {
        "stack": "embedded (serve embedded: daphne + Celery worker on the file broker, SQLite)",
        "rounds": len(trips),
        "client_round_trip_ms": _spread(trips),
        "queue_wait_ms": _spread(queue_waits),
        "target": {"queue_wait_p50_ms_below": TARGET_QUEUE_WAIT_MS},
        "target_met": queue_wait_p50 < TARGET_QUEUE_WAIT_MS,
    }


def summary(result: dict) -> str:
    trip, wait = result["client_round_trip_ms"], result["queue_wait_ms"]
    verdict = "met" if result["target_met"] else "NOT met"
    return (
        f"system check POST → live event p50 {trip['p50']} ms (p90 {trip['p90']}); "
        f"queue wait p50 {wait['p50']} ms (p90 {wait['p90']}); "
        f"target < {result['target']['queue_wait_p50_ms_below']} ms {verdict}"
    )


def _measure(base_url: str, session: str) -> list[float]:
    cookie = f"bosun_session={session}"
    csrf = _csrf_token(base_url, cookie)
    cookie += f"; bosun_csrftoken={csrf}"
    ws_url = base_url.replace("http://", "ws://") + "/ws/events/"
    trips = []
    with connect(ws_url, additional_headers={"Cookie": cookie}, origin=base_url) as socket:
        if json.loads(socket.recv(timeout=10))["event"] != "hello":
            raise RuntimeError("the event feed did not greet the signed-in socket")
        for _ in range(ROUNDS):
            started = time.perf_counter()
            check_id = _post_check(base_url, cookie, csrf)
            _wait_for_passed(socket, check_id)
            trips.append((time.perf_counter() - started) * 1000)
    return trips


def _csrf_token(base_url: str, cookie: str) -> str:
    request = urllib.request.Request(f"{base_url}/", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as answer:
        for header in answer.headers.get_all("Set-Cookie") or []:
            match = re.match(r"bosun_csrftoken=([^;]+)", header)
            if match:
                return match.group(1)
    raise RuntimeError("the dashboard set no CSRF cookie")


def _post_check(base_url: str, cookie: str, csrf: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/system-checks/",
        data=b"",
        method="POST",
        headers={"Cookie": cookie, "X-CSRFToken": csrf, "Referer": f"{base_url}/"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        html = answer.read().decode()
    match = re.search(r'id="check-(\d+)"', html)
    if not match:
        raise RuntimeError("the system check answer had no row id")
    return int(match.group(1))


def _wait_for_passed(socket, check_id: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        data = message.get("data", {})
        if message["event"] == "system_check" and data.get("id") == check_id:
            if data.get("status") == "passed":
                return
            if data.get("status") == "failed":
                raise RuntimeError(f"system check {check_id} failed")
    raise TimeoutError(f"no result for system check {check_id} within 10 s")


def _queue_waits(database: object) -> list[float]:
    with sqlite3.connect(str(database)) as db:
        rows = db.execute(
            "SELECT requested_at, started_at FROM web_systemcheck ORDER BY id"
        ).fetchall()
    return [
        (datetime.fromisoformat(started) - datetime.fromisoformat(requested)).total_seconds() * 1000
        for requested, started in rows
    ]


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p90": round(ordered[int(len(ordered) * 0.9) - 1], 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
    }
