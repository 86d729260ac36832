"""Audit trail on PostgreSQL: chained appends per second, and `audit verify` of 100,000 events.

A throwaway database on the local PostgreSQL, migrated as a release would. Appends go through
`audit.services.audit_record`, each in its own transaction as a request's event would be, from
separate Bosun processes (bench/_audit_append.py) that start on one wall-clock signal:

- one writer: the latency of a lone append and the rate one process reaches;
- several writers at once, as the web workers of a busy server would append: every append
  waits for the chain head's row lock, so this is the figure that bounds the whole cluster.

Then the trail is filled to 100,000 events and the real `manage.py audit verify` is timed as a
whole process (Python start-up and Django set-up included). Targets: ≥ 1,000 chained appends/s
with concurrent writers, and verify < 10 s.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time

from bench import _stack

TARGET_APPENDS_PER_SECOND = 1000
TARGET_VERIFY_SECONDS = 10.0
WRITERS = 4
APPENDS_PER_WRITER = 1000
SINGLE_WRITER_APPENDS = 2000
RUNS = 3
VERIFY_EVENTS = 100_000
START_DELAY_SECONDS = 4.0  # time for every writer process to start and set up Django


def run() -> dict:
    with _stack.stores() as stores, _stack.data_dir() as data_dir:
        env = _stack.bosun_env(data_dir, stores)
        _stack.manage("migrate", "-v", "0", env=env)
        single = [_append_round(env, writers=1, events=SINGLE_WRITER_APPENDS) for _ in range(RUNS)]
        concurrent = [
            _append_round(env, writers=WRITERS, events=APPENDS_PER_WRITER) for _ in range(RUNS)
        ]
        _worker(env, "fill", "--events", str(VERIFY_EVENTS))
        verifies = [_timed_verify(env) for _ in range(RUNS)]
    concurrent_rate = statistics.median(r["appends_per_second"] for r in concurrent)
    verify_seconds = statistics.median(v["process_seconds"] for v in verifies)
    return {
        "stores": "PostgreSQL on 127.0.0.1 (throwaway database), synchronous_commit on",
        "single_writer": {
            "appends_per_run": SINGLE_WRITER_APPENDS,
            "appends_per_second_median": round(
                statistics.median(r["appends_per_second"] for r in single)
            ),
            "append_latency_ms_p50": round(
                statistics.median(r["latency_ms_p50"] for r in single), 3
            ),
            "runs": single,
        },
        "concurrent_writers": {
            "writers": WRITERS,
            "appends_per_writer": APPENDS_PER_WRITER,
            "appends_per_second_median": round(concurrent_rate),
            "runs": concurrent,
        },
        "verify": {
            "events": VERIFY_EVENTS,
            "process_seconds_median": round(verify_seconds, 2),
            "runs": verifies,
        },
        "target": {
            "concurrent_appends_per_second_at_least": TARGET_APPENDS_PER_SECOND,
            "verify_100k_seconds_below": TARGET_VERIFY_SECONDS,
        },
        "target_met": concurrent_rate >= TARGET_APPENDS_PER_SECOND
        and verify_seconds < TARGET_VERIFY_SECONDS,
    }


def summary(result: dict) -> str:
    single, concurrent, verify = (
        result["single_writer"],
        result["concurrent_writers"],
        result["verify"],
    )
    verdict = "met" if result["target_met"] else "NOT met"
    return (
        f"{concurrent['appends_per_second_median']} chained appends/s with "
        f"{concurrent['writers']} writers (one writer: {single['appends_per_second_median']}/s, "
        f"p50 {single['append_latency_ms_p50']} ms); audit verify of {verify['events']:,} events "
        f"{verify['process_seconds_median']} s; targets ≥ "
        f"{result['target']['concurrent_appends_per_second_at_least']}/s and < "
        f"{result['target']['verify_100k_seconds_below']:g} s {verdict}"
    )


def _append_round(env: dict[str, str], *, writers: int, events: int) -> dict:
    start_at = time.time() + START_DELAY_SECONDS
    argv = ["append", "--events", str(events), "--start-at", f"{start_at:.3f}"]
    processes = [_spawn(env, *argv) for _ in range(writers)]
    results = [_collect(process) for process in processes]
    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    latencies = sorted(latency for r in results for latency in r["latencies"])
    return {
        "appends": writers * events,
        "seconds": round(elapsed, 3),
        "appends_per_second": round(writers * events / elapsed, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 3),
        "latency_ms_p90": round(latencies[int(len(latencies) * 0.9) - 1] * 1000, 3),
    }


def _timed_verify(env: dict[str, str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [_stack.PYTHON, "manage.py", "audit", "verify"],
        cwd=_stack.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"audit verify failed:\n{done.stdout}{done.stderr}")
    return {"process_seconds": round(seconds, 2), "output": done.stdout.strip()}


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [_stack.PYTHON, "-m", "bench._audit_append", *args],
        cwd=_stack.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"the audit bench worker failed ({process.returncode}):\n{err}")
    return json.loads(out.strip().splitlines()[-1])


def _worker(env: dict[str, str], *args: str) -> dict:
    return _collect(_spawn(env, *args))
