"""Where the server's time goes in a fan-out (bench/fanout.py's profile pass).

The same stack and fleet as the measured runs (bench/_fanout_run.py), but gunicorn reads
bench/_fanout_gunicorn.py through `GUNICORN_CMD_ARGS`, so each web worker meters every request
by kind (send, fetch, ack, reply, heartbeat …: CPU, wall time, SQL statements and their
time), under the phase the benchmark writes to the hook directory. Connected agents ack and
reply over their websockets (the ws role, read from /proc only), so over HTTP this mostly
sees the send and the heartbeats:

- "meter": METER_RUNS commands at MaxConcurrency 100%, and "meter50": one at 50; each role's
  CPU from /proc beside, so ws (the wake-ups' frames), worker and beat are accounted too;
- "profile" / "profile50": the same under cProfile (one profile per kind; slower, so only
  where the time goes, not how much, is read from them);
- the sweep (commands.services.sweep.commands_sweep, what beat runs every 5 s) timed in a
  Django process of its own every SWEEP_INTERVAL while a MaxConcurrency-50 command runs, and
  idle: milliseconds and SQL statements per sweep.

bench/_fanout_sweep.py is that Django process.
"""

from __future__ import annotations

import json
import pstats
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _fanout_run, _stack

HOOK_FILE = Path(__file__).with_name("_fanout_gunicorn.py")
METER_RUNS = 3
PROFILE_RUNS = 2
SWEEP_INTERVAL = 0.5
TOP = 15
# Functions whose cumulative time per request says where a request's time goes.
KEY_FUNCTIONS = {
    "authenticate (signature, node, nonce)": ("fleet/protocol/auth.py", "request_authenticate"),
    "signature check": ("bosun_agent/protocol.py", "signature_valid"),
    "nonce insert": ("fleet/protocol/auth.py", "_nonce_claim"),
    "messages_fetch": ("fleet/protocol/messages.py", "messages_fetch"),
    "messages_ack (HTTP: a batch of one)": ("fleet/protocol/answers.py", "messages_ack"),
    "messages_reply (HTTP: a batch of one)": ("fleet/protocol/answers.py", "messages_reply"),
    "invocations_started": ("commands/services/results.py", "invocations_started"),
    "invocations_replied": ("commands/services/results.py", "invocations_replied"),
    "streams_finalize": ("commands/output.py", "streams_finalize"),
    "command_dispatch": ("commands/services/dispatch.py", "command_dispatch"),
    "settle on commit": ("commands/services/settle.py", "_settle_if_due"),
    "command_send": ("commands/services/send.py", "command_send"),
    "targets_resolve": ("fleet/targets.py", "targets_resolve"),
    "message_enqueue": ("fleet/protocol/messages.py", "message_enqueue"),
    "wake: the group_sends after the commit": ("fleet/realtime.py", "_wake_all"),
    "channels_redis group_send": ("channels_redis/core.py", "group_send"),
    "waiting for PostgreSQL (psycopg wait)": ("psycopg/connection.py", "wait"),
    "audit record": ("access/authorization.py", "record"),
    "SQL (Django cursor execute)": ("django/db/backends/utils.py", "_execute"),
    "transaction commit": ("django/db/backends/base/base.py", "commit"),
}


def measure(count: int) -> dict[str, Any]:
    print(f"fanout: profile pass at {count} agents…", flush=True)
    with tempfile.TemporaryDirectory(prefix="bosun-fanout-hooks-") as hooks:
        hook_dir = Path(hooks)
        extra = {"GUNICORN_CMD_ARGS": f"--config {HOOK_FILE}", "BENCH_FANOUT_HOOK_DIR": hooks}
        phases: dict[str, list[dict]] = {}
        with _fanout_run.fanout_fleet(count, extra_env=extra) as fanout:
            _phase(hook_dir, "warmup")
            fanout.command("100%")
            for phase, concurrency, runs in (
                ("meter", "100%", METER_RUNS),
                ("meter50", "50", 1),
                ("profile", "100%", PROFILE_RUNS),
                ("profile50", "50", 1),
            ):
                _phase(hook_dir, phase)
                phases[phase] = [fanout.command(concurrency) for _ in range(runs)]
            _phase(hook_dir, "off")
            sweep = _sweep_while_running(fanout)
        meters = _meters(hook_dir)
        profiles = {
            key: _profile(hook_dir, key, meters.get(key, {}).get("requests", 0))
            for key in _profile_keys(hook_dir)
        }
    return {
        "agents": count,
        "how": (
            "gunicorn hooks (bench/_fanout_gunicorn.py, via GUNICORN_CMD_ARGS) meter each web "
            "request by kind: process CPU time between pre_request and post_request, wall "
            "time, SQL statements through an execute wrapper; cProfile in the profile phases"
        ),
        "per_result": {
            phase: _per_result(phases[phase], meters, phase) for phase in ("meter", "meter50")
        },
        "requests": {key: _request_figures(meter) for key, meter in sorted(meters.items())},
        "profiles": profiles,
        "sweep": sweep,
        "server_errors": fanout.server_errors,
    }


def summary(profile: dict[str, Any]) -> str:
    full = profile["per_result"]["meter"]
    kinds = full["web_by_kind"]
    parts = [
        f"{kind} {entry['cpu_ms_per_request']} ms CPU/{entry['queries_per_request']} queries"
        for kind, entry in kinds.items()
        if kind in ("send", "fetch", "ack", "reply")
    ]
    return (
        f"profile (metered, 100%): web {full['web_metered_cpu_ms_per_result']} ms/result in "
        f"requests ({', '.join(parts)}), ws {full['roles_cpu_ms_per_result']['ws']}, worker "
        f"{full['roles_cpu_ms_per_result']['worker']} ms/result"
    )


def _phase(hook_dir: Path, name: str) -> None:
    partial = hook_dir / "phase.partial"
    partial.write_text(name)
    partial.replace(hook_dir / "phase")


def _meters(hook_dir: Path) -> dict[str, dict[str, Any]]:
    """Every worker's meters, summed by phase/kind."""
    merged: dict[str, dict[str, Any]] = {}
    for path in sorted(hook_dir.glob("web-*.json")):
        for key, meter in json.loads(path.read_text()).items():
            total = merged.setdefault(
                key,
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
            for name in _SUMMED:
                total[name] += meter.get(name, 0)
            for name in ("statuses", "queries_histogram"):
                for value, n in meter[name].items():
                    total[name][value] = total[name].get(value, 0) + n
            for n, sql in meter["sql_by_query_count"].items():
                total["sql_by_query_count"].setdefault(n, sql)
    return merged


_SUMMED = (
    "requests",
    "cpu_seconds",
    "other_threads_cpu_seconds",
    "wall_seconds",
    "queries",
    "db_seconds",
)


def _request_figures(meter: dict[str, Any]) -> dict[str, Any]:
    requests = meter["requests"] or 1
    histogram = dict(sorted(meter["queries_histogram"].items(), key=lambda item: int(item[0])))
    commonest = max(histogram, key=histogram.get) if histogram else None
    return {
        "requests": meter["requests"],
        "cpu_ms_per_request": round(meter["cpu_seconds"] * 1000 / requests, 3),
        # Of which off the serving thread: the wake-up's group_sends in async_to_sync's loop.
        "other_threads_cpu_ms_per_request": round(
            meter["other_threads_cpu_seconds"] * 1000 / requests, 3
        ),
        "wall_ms_per_request": round(meter["wall_seconds"] * 1000 / requests, 3),
        "queries_per_request": round(meter["queries"] / requests, 2),
        "sql_wall_ms_per_request": round(meter["db_seconds"] * 1000 / requests, 3),
        "statuses": meter["statuses"],
        "queries_histogram": histogram,
        # The statements of one request with the commonest count, in order.
        "sql_of_a_typical_request": meter["sql_by_query_count"].get(commonest, []),
    }


def _per_result(runs: list[dict], meters: dict[str, dict], phase: str) -> dict[str, Any]:
    """A phase's CPU per result stored: each role from /proc, and the web role's requests by
    kind from the meters (all of the phase's requests, heartbeats included)."""
    results = sum(run["results_stored"] for run in runs) or 1
    roles = {
        role: round(sum(run["roles_cpu_seconds"][role] for run in runs) * 1000 / results, 3)
        for role in runs[0]["roles_cpu_seconds"]
    }
    kinds = {
        key.split("/", 1)[1]: meter for key, meter in meters.items() if key.startswith(f"{phase}/")
    }
    metered = sum(meter["cpu_seconds"] for meter in kinds.values())
    return {
        "commands": len(runs),
        "results": results,
        "all_results_stored_seconds": [run["all_results_stored_seconds"] for run in runs],
        "server_cpu_ms_per_result": round(
            sum(run["server_cpu_seconds"] for run in runs) * 1000 / results, 3
        ),
        "roles_cpu_ms_per_result": roles,
        "services_cpu_ms_per_result": {
            name: round(sum(run["services_cpu_seconds"][name] for run in runs) * 1000 / results, 3)
            for name in runs[0]["services_cpu_seconds"]
        },
        # The rest of the web role's CPU: gunicorn's own (accepting, parsing) and its master.
        "web_metered_cpu_ms_per_result": round(metered * 1000 / results, 3),
        "web_by_kind": {
            kind: {
                "requests_per_result": round(meter["requests"] / results, 3),
                "cpu_ms_per_request": round(meter["cpu_seconds"] * 1000 / meter["requests"], 3),
                "cpu_ms_per_result": round(meter["cpu_seconds"] * 1000 / results, 3),
                "other_threads_cpu_ms_per_request": round(
                    meter["other_threads_cpu_seconds"] * 1000 / meter["requests"], 3
                ),
                "queries_per_request": round(meter["queries"] / meter["requests"], 2),
                "sql_wall_ms_per_request": round(meter["db_seconds"] * 1000 / meter["requests"], 3),
                "wall_ms_per_request": round(meter["wall_seconds"] * 1000 / meter["requests"], 3),
            }
            for kind, meter in sorted(kinds.items())
            if meter["requests"]
        },
    }


def _profile_keys(hook_dir: Path) -> list[str]:
    keys = set()
    for path in hook_dir.glob("web-*-*.prof"):
        # web-PID-PHASE-KIND.prof
        _, _, phase, kind = path.stem.split("-", 3)
        keys.add(f"{phase}/{kind}")
    return sorted(keys)


def _profile(hook_dir: Path, key: str, requests: int) -> dict[str, Any]:
    phase, kind = key.split("/", 1)
    files = [str(path) for path in hook_dir.glob(f"web-*-{phase}-{kind}.prof")]
    stats = pstats.Stats(*files)
    per = max(requests, 1)
    entries = stats.stats  # type: ignore[attr-defined]

    def where(function: tuple[str, int, str]) -> str:
        filename, line, name = function
        for marker in ("site-packages/", str(_stack.ROOT) + "/"):
            if marker in filename:
                filename = filename.split(marker, 1)[1]
        return f"{filename}:{line}({name})"

    def ms(seconds: float) -> float:
        return round(seconds * 1000 / per, 3)

    key_functions = {}
    for label, (suffix, name) in KEY_FUNCTIONS.items():
        calls = cumulative = 0.0
        for (filename, _, function), (_, ncalls, _, cumtime, _) in entries.items():
            if function == name and filename.endswith(suffix):
                calls += ncalls
                cumulative += cumtime
        if calls:
            key_functions[label] = {
                "cumulative_ms_per_request": ms(cumulative),
                "calls_per_request": round(calls / per, 2),
            }
    by_own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:TOP]
    ours = [
        item
        for item in entries.items()
        if str(_stack.ROOT) in item[0][0] and "/.venv/" not in item[0][0]
    ]
    by_cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:TOP]
    return {
        "requests": requests,
        "profiled_ms_per_request": ms(stats.total_tt),  # type: ignore[attr-defined]
        "key_functions": key_functions,
        "top_own_time": [
            {"function": where(f), "own_ms_per_request": ms(s[2]), "calls": round(s[1] / per, 2)}
            for f, s in by_own
        ],
        "top_cumulative_in_bosun": [
            {"function": where(f), "cum_ms_per_request": ms(s[3]), "calls": round(s[1] / per, 2)}
            for f, s in by_cumulative
        ],
    }


def _sweep_while_running(fanout: _fanout_run.Fanout) -> dict[str, Any]:
    """The sweep in a Django process of its own, every SWEEP_INTERVAL, while a command at
    MaxConcurrency 50 runs (the case where the sweep has most to do), and after."""
    seconds = _fanout_run.run_timeout(fanout.count)
    process = subprocess.Popen(
        [_stack.PYTHON, "-m", "bench._fanout_sweep", str(seconds), str(SWEEP_INTERVAL)],
        cwd=_stack.ROOT,
        env={**fanout.env, "DJANGO_SETTINGS_MODULE": "bosun.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # Django's start-up
        run = fanout.command("50")
        time.sleep(2)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    sweeps = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not sweeps:
        return {"error": f"the sweep process printed nothing: {err[-2000:]}"}
    busy = [s for s in sweeps if s["open_commands"]]
    idle = [s for s in sweeps if not s["open_commands"]]

    def figures(some: list[dict]) -> dict[str, Any] | None:
        if not some:
            return None
        return {
            "sweeps": len(some),
            "ms_p50": round(statistics.median(s["ms"] for s in some), 2),
            "ms_max": round(max(s["ms"] for s in some), 2),
            "queries_p50": statistics.median(s["queries"] for s in some),
            "queries_max": max(s["queries"] for s in some),
        }

    return {
        "while_a_command_runs": figures(busy),
        "idle": figures(idle),
        "command_at_50_with_sweeps_every_half_second": {
            "all_results_stored_seconds": run["all_results_stored_seconds"],
            "results_stored": run["results_stored"],
        },
        "sql_of_a_sweep_while_running": busy[len(busy) // 2]["sql"] if busy else [],
    }
