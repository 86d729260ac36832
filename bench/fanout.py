"""Run Command's fan-out on the production stack: one no-op command to a whole simulated fleet.

For each fleet size (BOSUN_BENCH_FANOUT_COUNTS, default "1000,5000"), on a throwaway PostgreSQL
database and the local Redis with the four production roles as shipped (bench/fleet.py's
stack), the simulator (`bosun_agent.simulate`, whose virtual nodes answer a RunCommand at once
with Success and no output) in a process of its own with every agent registered and its
websocket open (bench/_fanout_run.py):

1. a baseline: BASELINE_SECONDS of the connected fleet doing nothing but heartbeats (the CPU
   every run also pays, reported so it can be told apart);
2. a warm-up command (each gunicorn worker's first requests import and fill caches), then
   BOSUN_BENCH_FANOUT_RUNS (default 5; at most 3 above the target's 1,000 agents, where a run
   takes minutes) commands Bosun-RunShellScript `true` to the fleet's tag
   with MaxConcurrency 100%, one at a time, each timed from the start of its send request
   (POST /api/v1/commands/ with an admin access key) until the database holds every result
   (PostgreSQL polled every 10 ms): median and p95 (nearest rank: of 5 runs, the slowest),
   with the send request's own latency and the time to the first result; a run still short of
   every result after 120 s + 60 ms per agent is reported unfinished and ends the series;
3. one command at AWS's default MaxConcurrency 50, for comparison;
4. CPU of every server process tree (web, ws, worker, beat, from /proc) from before each send
   until its command's row ended, per result stored; PostgreSQL, Redis and the simulator
   apart; the whole machine's, so other people's load shows; RSS before and after.

Then the profile pass (bench/_fanout_profile.py; BOSUN_BENCH_FANOUT_PROFILE=0 skips it): the
same at 1,000 agents with every web request metered by kind (CPU, SQL statements) and then
profiled, and the sweep timed while a command runs. Targets apply to 1,000 agents.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

from bench import _fanout_profile, _fanout_run

DEFAULT_COUNTS = "1000,5000"
DEFAULT_RUNS = 5
LARGER_FLEET_RUNS = 3  # above the target's size a run takes minutes: fewer of them
TARGET_COUNT = 1000
TARGET_ALL_STORED_P95_SECONDS = 3.0
STRETCH_ALL_STORED_P95_SECONDS = 1.0
TARGET_SERVER_CPU_MS_PER_RESULT = 3.0
STRETCH_SERVER_CPU_MS_PER_RESULT = 1.0
BASELINE_SECONDS = 60  # one heartbeat interval: every agent heartbeats about once
FULL_CONCURRENCY = "100%"
AWS_DEFAULT_CONCURRENCY = "50"


def run() -> dict:
    started = time.monotonic()
    counts, runs, profile = _settings()
    fleets: dict[str, dict] = {}
    for count in counts:
        try:
            fleets[str(count)] = _fleet(count, runs)
        except Exception as exc:
            if count == TARGET_COUNT:
                raise
            # A larger fleet is reported if it fits; one that does not is a finding, not a crash.
            fleets[str(count)] = {"agents": count, "error": f"{type(exc).__name__}: {exc}"}
    # At the target's size (a smaller one when the target's is not asked for, as in a trial run).
    profile_count = TARGET_COUNT if TARGET_COUNT in counts else counts[0]
    profiled = _fanout_profile.measure(profile_count) if profile else None
    at_target = fleets.get(str(TARGET_COUNT), {})
    met = at_target.get("targets_met", {})
    return {
        "stack": (
            "production roles as shipped: serve web (gunicorn), ws (daphne), worker, beat "
            "(Celery), each its own process tree; PostgreSQL and Redis on 127.0.0.1 (a "
            "throwaway database per fleet); the simulator in a separate process, HTTP to web "
            "and its websockets to ws"
        ),
        "command": {
            "document": _fanout_run.DOCUMENT,
            "parameters": {"commands": _fanout_run.SCRIPT},
            "targets": [
                {"Key": f"tag:{_fanout_run.FLEET_TAG[0]}", "Values": [_fanout_run.FLEET_TAG[1]]}
            ],
            "max_concurrency": FULL_CONCURRENCY,
            "max_errors": "0 (the default)",
            "sent_with": "POST /api/v1/commands/ (Authorization: Bearer, an admin access key)",
            "simulated_run": "each virtual node answers at once: Success, no output",
        },
        "method": {
            "all_results_stored": (
                "from the start of the send request until a count(*) of the command's ended "
                f"invocations, polled every {_fanout_run.POLL_SECONDS * 1000:g} ms on its own "
                "PostgreSQL connection, equals the targets"
            ),
            "p95": "nearest rank: with 5 runs, the slowest",
            "cpu_window": (
                "from just before the send until the command's row ended plus "
                f"{_fanout_run.TAIL_SECONDS} s; 'net' subtracts the baseline's rate (the idle "
                "fleet's heartbeats) over the same seconds"
            ),
            "between_commands": (
                f"ANALYZE, then {_fanout_run.PAUSE_SECONDS} s: the local PostgreSQL runs with "
                "autovacuum off, a live server's would keep statistics fresh"
            ),
            "postgresql_cpu_includes": "the benchmark's own polling (about 100 queries a second)",
        },
        "deviations_from_defaults": ["ANALYZE before each command (stands in for autovacuum)"],
        "fleets": fleets,
        "profile": profiled,
        "comparison": {
            "salt_master_cpu_ms_per_return": 6,
            "salt_note": "Salt's master spends about 6 ms of CPU per job return on this class "
            "of machine (reference/peers.md)",
            "aws_default_max_concurrency": AWS_DEFAULT_CONCURRENCY,
            "aws_note": "AWS Run Command's default MaxConcurrency is 50: one run per fleet size "
            "at 50 shows what the default costs in time",
        },
        "target": {
            "agents": TARGET_COUNT,
            "all_results_stored_p95_seconds_below": TARGET_ALL_STORED_P95_SECONDS,
            "stretch_all_results_stored_p95_seconds_below": STRETCH_ALL_STORED_P95_SECONDS,
            "server_cpu_ms_per_result_at_most": TARGET_SERVER_CPU_MS_PER_RESULT,
            "stretch_server_cpu_ms_per_result_at_most": STRETCH_SERVER_CPU_MS_PER_RESULT,
        },
        "targets_met": met,
        "target_met": bool(met) and met["all_results_stored"] and met["server_cpu"],
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }


def summary(result: dict) -> str:
    parts = []
    for count, fleet in result["fleets"].items():
        if "error" in fleet:
            parts.append(f"{count} agents: {fleet['error']}")
            continue
        full, default = fleet["full_concurrency"], fleet["aws_default_concurrency"]
        cpu = full["server_cpu_ms_per_result"]
        stored = (
            f"all results stored p50 {full['all_results_stored']['p50']} "
            f"p95 {full['all_results_stored']['p95']} s"
            if full["finished"] == full["runs"]
            else f"NOT all stored: {full['finished']} of {full['runs']} runs finished, "
            f"{full['results_stored']} results of {full['runs'] * count} "
            f"(each {full['all_results_stored_seconds_each']} s)"
        )
        parts.append(
            f"{count} agents at 100%: {stored} (send request "
            f"{full['send_request_seconds']['p50']} s, first result "
            f"{full['first_result_seconds']['p50']} s, wake frames "
            f"{full['fleet_frames_per_result'].get('wake', 0)}/result), server CPU "
            f"{cpu['gross']} ms/result "
            f"(net of heartbeats {cpu['net']}; PostgreSQL "
            f"{full['services_cpu_ms_per_result'].get('postgresql')}, simulator "
            f"{full['simulator_cpu_ms_per_result']}); at MaxConcurrency 50: "
            + (
                f"{default['all_results_stored_seconds']} s, {default['server_cpu_ms_per_result']} "
                "ms/result"
                if default["finished"]
                else f"NOT finished ({default['results_stored']} of {default['targets']})"
            )
        )
    met = result["targets_met"]
    if met:
        missed = [name for name in ("all_results_stored", "server_cpu") if not met[name]]
        stretch = [
            name for name in ("all_results_stored_stretch", "server_cpu_stretch") if met[name]
        ]
        verdict = "targets met" if not missed else f"MISSED: {', '.join(missed)}"
        if stretch:
            verdict += f" (stretch met: {', '.join(stretch)})"
        parts.append(verdict)
    if result.get("profile"):
        parts.append(_fanout_profile.summary(result["profile"]))
    return "; ".join(parts)


def _settings() -> tuple[list[int], int, bool]:
    raw = os.environ.get("BOSUN_BENCH_FANOUT_COUNTS") or DEFAULT_COUNTS
    try:
        counts = [int(part) for part in raw.split(",") if part.strip()]
        runs = int(os.environ.get("BOSUN_BENCH_FANOUT_RUNS") or DEFAULT_RUNS)
    except ValueError:
        raise SystemExit(
            "bench fanout: BOSUN_BENCH_FANOUT_COUNTS is a comma-separated list of whole numbers "
            "and BOSUN_BENCH_FANOUT_RUNS a whole number"
        ) from None
    if not counts or min(counts) < 1 or runs < 1:
        raise SystemExit("bench fanout: the counts and the runs must be positive")
    profile = os.environ.get("BOSUN_BENCH_FANOUT_PROFILE", "1") not in ("0", "false", "no")
    return counts, runs, profile


# One fleet size.


def _fleet(count: int, runs: int) -> dict:
    print(f"fanout: {count} agents…", flush=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with _fanout_run.fanout_fleet(count) as fanout:
        print(f"fanout: {count} agents connected; baseline…", flush=True)
        baseline = fanout.window(BASELINE_SECONDS)
        memory_before = fanout.memory()
        warmup = fanout.command(FULL_CONCURRENCY)
        _progress(count, "warm-up", warmup)
        measured = []
        for _ in range(runs if count <= TARGET_COUNT else min(runs, LARGER_FLEET_RUNS)):
            measured.append(fanout.command(FULL_CONCURRENCY))
            _progress(count, f"run {len(measured)}", measured[-1])
            if not measured[-1]["finished"]:
                break  # its stragglers would be the next run's load
        default = fanout.command(AWS_DEFAULT_CONCURRENCY) if measured[-1]["finished"] else None
        if default:
            _progress(count, "MaxConcurrency 50", default)
        memory_after = fanout.memory()
    result = {
        "agents": count,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **fanout.arrival,
        "baseline": _baseline(baseline),
        "full_concurrency": _aggregate(measured, baseline),
        "aws_default_concurrency": _one(default, baseline)
        if default
        else {"finished": False, "results_stored": 0, "targets": count, "skipped": True},
        "warmup": _one(warmup, baseline),
        "memory": {"before": memory_before, "after": memory_after},
        "simulator": _simulator(fanout.simulator_final),
        "server_errors": fanout.server_errors,
        "runs": {"warmup": warmup, "full_concurrency": measured, "aws_default": default},
    }
    full = result["full_concurrency"]
    p95 = full["all_results_stored"]["p95"]
    cpu = full["server_cpu_ms_per_result"]["gross"]
    finished = full["finished"] == len(measured) and measured[-1]["finished"]
    result["targets_met"] = {
        "all_results_stored": finished and p95 < TARGET_ALL_STORED_P95_SECONDS,
        "all_results_stored_stretch": finished and p95 < STRETCH_ALL_STORED_P95_SECONDS,
        "server_cpu": finished and cpu <= TARGET_SERVER_CPU_MS_PER_RESULT,
        "server_cpu_stretch": finished and cpu <= STRETCH_SERVER_CPU_MS_PER_RESULT,
    }
    print(f"fanout: {count} agents: {json.dumps(result['targets_met'])}", flush=True)
    return result


def _progress(count: int, name: str, one: dict) -> None:
    print(
        f"fanout: {count} agents, {name} at {one['max_concurrency']}: "
        f"{one['results_stored']}/{one['targets']} stored in {one['all_results_stored_seconds']} "
        f"s (send {one['send_request_seconds']} s), server CPU "
        f"{one['server_cpu_seconds']} s, machine {one['machine_cpu_seconds']} s",
        flush=True,
    )


def _baseline(window: dict) -> dict:
    seconds = window["seconds"]
    heartbeats = window["requests"].get("heartbeat", {}).get("count", 0)
    return {
        "seconds": seconds,
        "server_cores": round(window["server_cpu_seconds"] / seconds, 4),
        "roles_cores": {
            role: round(cpu / seconds, 4) for role, cpu in window["roles_cpu_seconds"].items()
        },
        "machine_services_cores": {
            name: round(cpu / seconds, 4) for name, cpu in window["services_cpu_seconds"].items()
        },
        "simulator_cores": round(window["simulator_cpu_seconds"] / seconds, 4),
        "other_cores": round(window["other_cpu_seconds"] / seconds, 4),
        "heartbeats_per_second": round(heartbeats / seconds, 1),
        "requests": window["requests"],
    }


def _per_result(cpu: float, results: int) -> float | None:
    return round(cpu * 1000 / results, 3) if results else None


def _one(run: dict, baseline: dict) -> dict:
    """One command's figures, CPU per result stored."""
    return _aggregate([run], baseline, single=True)


def _aggregate(runs: list[dict], baseline: dict, *, single: bool = False) -> dict[str, Any]:
    results = sum(run["results_stored"] for run in runs)
    seconds = sum(run["seconds"] for run in runs)
    server = sum(run["server_cpu_seconds"] for run in runs)
    net = server - baseline["server_cpu_seconds"] / baseline["seconds"] * seconds
    roles = {
        role: sum(run["roles_cpu_seconds"][role] for run in runs)
        for role in runs[0]["roles_cpu_seconds"]
    }
    services = {
        name: sum(run["services_cpu_seconds"].get(name, 0.0) for run in runs)
        for name in runs[0]["services_cpu_seconds"]
    }
    frames: dict[str, int] = {}
    for run in runs:
        for kind, count in run.get("frames", {}).items():
            frames[kind] = frames.get(kind, 0) + count
    requests: dict[str, dict[str, float]] = {}
    for run in runs:
        for kind, entry in run["requests"].items():
            total = requests.setdefault(kind, {"count": 0, "failed": 0, "ms": 0.0})
            total["count"] += entry["count"]
            total["failed"] += entry["failed"]
            total["ms"] += entry["mean_ms"] * entry["count"]
    figures: dict[str, Any] = {
        "runs": len(runs),
        "finished": sum(run["finished"] for run in runs),
        "results_stored": results,
        "server_cpu_ms_per_result": {
            "gross": _per_result(server, results),
            "net": _per_result(net, results),
        },
        "roles_cpu_ms_per_result": {role: _per_result(cpu, results) for role, cpu in roles.items()},
        "services_cpu_ms_per_result": {
            name: _per_result(cpu, results) for name, cpu in services.items()
        },
        "simulator_cpu_ms_per_result": _per_result(
            sum(run["simulator_cpu_seconds"] for run in runs), results
        ),
        "other_cores_during_runs": round(
            sum(run["other_cpu_seconds"] for run in runs) / seconds, 3
        ),
        "fleet_requests_per_result": {
            kind: round(entry["count"] / results, 3) if results else None
            for kind, entry in sorted(requests.items())
        },
        "fleet_request_mean_ms": {
            kind: round(entry["ms"] / entry["count"], 2) for kind, entry in sorted(requests.items())
        },
        "fleet_requests_failed": sum(entry["failed"] for entry in requests.values()),
        # A wake per result means every wake-up arrived; fewer, that the channel layer dropped
        # some (those nodes found their message at their next heartbeat).
        "fleet_frames_per_result": {
            kind: round(count / results, 3) if results else None
            for kind, count in sorted(frames.items())
        },
    }
    if single:
        run = runs[0]
        return {
            "max_concurrency": run["max_concurrency"],
            "targets": run["targets"],
            "finished": run["finished"],
            "send_request_seconds": run["send_request_seconds"],
            "first_result_seconds": run["first_result_seconds"],
            "all_results_stored_seconds": run["all_results_stored_seconds"],
            "timeline": run["timeline"],
            **figures,
            "server_cpu_ms_per_result": figures["server_cpu_ms_per_result"]["gross"],
            "server_cpu_ms_per_result_net": figures["server_cpu_ms_per_result"]["net"],
        }
    stored = [run["all_results_stored_seconds"] for run in runs if run["finished"]]
    return {
        "all_results_stored": _spread(stored),
        "send_request_seconds": _spread([run["send_request_seconds"] for run in runs]),
        "first_result_seconds": _spread(
            [run["first_result_seconds"] for run in runs if run["first_result_seconds"]]
        ),
        "all_results_stored_seconds_each": [run["all_results_stored_seconds"] for run in runs],
        "timeline_p50_of_runs": {
            phase: {
                mark: round(statistics.median(run["timeline"][phase][mark] for run in runs), 3)
                for mark in ("first", "p50", "last")
            }
            for phase in ("dispatched", "started", "ended")
            if all(run["timeline"][phase] for run in runs)
        },
        **figures,
    }


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "min": None, "max": None}
    return {
        "p50": round(statistics.median(values), 3),
        "p95": round(_fanout_run.nearest_rank(values, 0.95), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def _simulator(final: dict) -> dict:
    reports = final.get("reports", [])

    def total(key: str) -> int:
        return sum(report[key] for report in reports)

    return {
        "registered": total("registered") if reports else None,
        "commands_started": total("commands_started") if reports else None,
        "messages_answered": total("messages_answered") if reports else None,
        "reconnects": total("reconnects") if reports else None,
        "replies_deferred": final.get("replies_deferred"),
        "errors": [report["errors"] for report in reports if report["errors"]],
        "cpu_seconds": round(final.get("cpu_seconds", 0.0), 1),
    }
