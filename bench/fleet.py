"""A simulated fleet on the production stack: registration, steady cost, restart, node list.

Issue 4's figures. For each fleet size (BOSUN_BENCH_FLEET_COUNTS, default "1000,5000") on a
throwaway PostgreSQL database and the local Redis, with the four production roles as shipped
(`serve web` = gunicorn, `serve ws` = daphne, `serve worker`, `serve beat`, each its own
process tree, web and ws on their own ports, nothing in the environment but the stores):

1. registration: the simulated agents (`bosun_agent.simulate`, in a process of its own so
   its CPU is not the server's) register through multi-use activations made with the REST
   API (POST /api/v1/activations/ with an admin access key; at most 1,000 registrations
   each, so 5,000 agents use five): seconds until all are registered;
2. steady state: every agent's websocket open to ws and heartbeating to web at the default
   60 s interval, for BOSUN_BENCH_FLEET_SECONDS (default 120): CPU of every server process
   from /proc (as cores), RSS and PSS summed and per role; PostgreSQL's and Redis's CPU apart
   (machine services, outside the server's sum), and an idle baseline before the fleet comes;
3. restart: every role stopped and started again on the same ports while the simulator keeps
   running: seconds until every agent is connected again.

Then the Fleet Manager node list with 10,000 nodes (bench/_fleet_nodes.py). Targets (issue 4)
apply to 1,000 agents; other sizes report the same figures without a verdict that counts.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from bench import _fleet_nodes, _fleet_sim, _fleet_stack, _stack

DEFAULT_COUNTS = "1000,5000"
DEFAULT_SECONDS = 120
TARGET_COUNT = 1000
TARGET_REGISTRATION_SECONDS = 30
TARGET_CORES = 0.2
TARGET_RSS_MB = 400
TARGET_RECONNECT_SECONDS = 30
# The simulator's own default: 100 new agents a second, each registering, heartbeating and
# opening its websocket as it starts.
RAMP_PER_SECOND = 100
HTTP_CONCURRENCY = 64
IDLE_SECONDS = 30
SETTLE_SECONDS = 10  # after the last websocket opened: late facts reports, first sweeps
MEMORY_SAMPLE_SECONDS = 10
RECONNECT_GIVE_UP_SECONDS = 300
RESTARTS = 3
MB = 1024 * 1024


def run() -> dict:
    started = time.monotonic()
    counts, seconds = _settings()
    fleets: dict[str, dict] = {}
    for count in counts:
        try:
            fleets[str(count)] = _fleet(count, seconds)
        except Exception as exc:
            if count == TARGET_COUNT:
                raise
            # A larger fleet is reported if it fits; one that does not is a finding, not a crash.
            fleets[str(count)] = {"agents": count, "error": f"{type(exc).__name__}: {exc}"}
    node_list = _node_list()
    at_target = fleets.get(str(TARGET_COUNT), {})
    return {
        "stack": (
            "production roles as shipped: serve web (gunicorn), ws (daphne), worker, beat "
            "(Celery), each on its own port/process tree; PostgreSQL and Redis on 127.0.0.1 "
            f"(a throwaway database per fleet, its role limited to {_stack.CONNECTION_LIMIT} "
            "connections); the simulator in a separate process, HTTP to web and the websocket "
            "to ws (nginx would route /ws/ to ws behind one URL)"
        ),
        "deviations_from_defaults": [],
        "heartbeat_interval_seconds": 60,
        "ramp_agents_per_second": RAMP_PER_SECOND,
        "steady_seconds": seconds,
        "fleets": fleets,
        "node_list": node_list,
        "target": {
            "agents": TARGET_COUNT,
            "registration_seconds_below": TARGET_REGISTRATION_SECONDS,
            "server_cores_at_most": TARGET_CORES,
            "server_rss_mb_at_most": TARGET_RSS_MB,
            "reconnect_seconds_below": TARGET_RECONNECT_SECONDS,
            "node_list_p50_ms_below": _fleet_nodes.TARGET_MS,
        },
        "targets_met": {**at_target.get("targets_met", {}), "node_list": node_list["target_met"]},
        "target_met": bool(at_target.get("targets_met"))
        and all(at_target["targets_met"].values())
        and node_list["target_met"],
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }


def summary(result: dict) -> str:
    parts = []
    for count, fleet in result["fleets"].items():
        if "error" in fleet:
            parts.append(f"{count} agents: {fleet['error']}")
            continue
        steady, restart = fleet["steady"], fleet["restart"]
        parts.append(
            f"{count} agents: registered in {fleet['registration']['seconds']} s, "
            f"{steady['server_cores']} cores, RSS {steady['server_rss_mb']} MB "
            f"(PSS {steady['server_pss_mb']}), "
            + (
                f"reconnected after a restart in {restart['outage_seconds']} s (median of "
                f"{', '.join(str(x) for x in restart['outage_seconds_each'])})"
                if restart["outage_seconds"] is not None
                else "NOT all reconnected after the restart"
            )
        )
    pages = result["node_list"]["pages"]
    parts.append(
        f"node list ({result['node_list']['nodes']:,} nodes) p50 {pages['list']['p50_ms']} ms, "
        f"{pages['list']['queries']} queries"
    )
    met = result["targets_met"]
    missed = [name for name, ok in met.items() if not ok]
    verdict = "targets met" if not missed else f"MISSED: {', '.join(missed)}"
    return f"{'; '.join(parts)}; {verdict}"


def _settings() -> tuple[list[int], int]:
    raw = os.environ.get("BOSUN_BENCH_FLEET_COUNTS") or DEFAULT_COUNTS
    try:
        counts = [int(part) for part in raw.split(",") if part.strip()]
        seconds = int(os.environ.get("BOSUN_BENCH_FLEET_SECONDS") or DEFAULT_SECONDS)
    except ValueError:
        raise SystemExit(
            "bench fleet: BOSUN_BENCH_FLEET_COUNTS is a comma-separated list of whole numbers "
            "and BOSUN_BENCH_FLEET_SECONDS a whole number of seconds"
        ) from None
    if not counts or min(counts) < 1 or seconds < 1:
        raise SystemExit("bench fleet: the counts and the seconds must be positive")
    return counts, seconds


# One fleet size.


def _fleet(count: int, seconds: int) -> dict:
    print(f"fleet: {count} agents…", flush=True)
    with _stack.released() as (env, data_dir, _):
        key = _fleet_stack.admin_access_key(env)
        with _fleet_stack.running(env=env, log_dir=data_dir) as roles:
            idle = _window(roles, None, IDLE_SECONDS)
            plan = {
                "url": roles.url("web"),
                "ws_url": roles.url("ws"),
                "groups": _fleet_sim.activations(roles.url("web"), key, count),
                "ramp": RAMP_PER_SECOND,
                "http_concurrency": HTTP_CONCURRENCY,
                "tags": {"Bench": "fleet"},
            }
            with _fleet_sim.simulating(plan, data_dir) as fleet:
                arrival = _arrival(fleet, count)
                time.sleep(SETTLE_SECONDS)
                steady = _window(roles, fleet, seconds)
                restart = _restarts(roles, fleet)
                final = fleet.stop()
            errors = {
                role: lines
                for role in _fleet_stack.ROLES
                if (lines := _stack.error_lines(roles.log_path(role)))
            }
    result = {
        "agents": count,
        "activations": len(plan["groups"]),
        **arrival,
        "idle": _idle_figures(idle),
        "steady": steady,
        "restart": restart,
        "simulator": _simulator_figures(final),
        "server_errors": errors,
    }
    result["targets_met"] = {
        "registration": arrival["registration"]["seconds"] is not None
        and arrival["registration"]["seconds"] < TARGET_REGISTRATION_SECONDS,
        "server_cpu": steady["server_cores"] <= TARGET_CORES,
        "server_rss": steady["server_rss_mb"] <= TARGET_RSS_MB,
        "reconnect": restart["outage_seconds"] is not None
        and restart["outage_seconds"] < TARGET_RECONNECT_SECONDS,
    }
    print(f"fleet: {count} agents: {json.dumps(result['targets_met'])}", flush=True)
    return result


def _arrival(fleet: _fleet_sim.FleetProcess, count: int) -> dict:
    """From the simulator's start: every agent registered, then every websocket open."""
    timeout = 120 + count / 10
    registered = fleet.wait_for(
        "every agent registered",
        lambda s: s["registered"] + s["registration_failed"] >= count,
        timeout,
    )
    connected = fleet.wait_for(
        "every agent connected", lambda s: s["clock"]["all_connected"] is not None, timeout
    )
    clock = connected["clock"]

    def since_start(moment: float | None) -> float | None:
        return None if moment is None else round(moment - clock["started"], 2)

    return {
        "registration": {
            "seconds": since_start(clock["all_registered"]),
            "registered": registered["registered"],
            "failed": registered["registration_failed"],
            "agents_per_second": (
                round(registered["registered"] / (clock["all_registered"] - clock["started"]), 1)
                if clock["all_registered"]
                else None
            ),
        },
        "seconds_to_all_connected": since_start(clock["all_connected"]),
    }


def _window(
    roles: _fleet_stack.ServerRoles, fleet: _fleet_sim.FleetProcess | None, seconds: float
) -> dict:
    """CPU over the window, memory sampled through it, for the roles and the stores."""
    services = _fleet_stack.machine_service_roots()
    services_before = {name: _fleet_stack.Cpu.of(pids).seconds for name, pids in services.items()}
    before = roles.usage()
    status_before = fleet.status() if fleet else {}
    simulator_before = _fleet_stack.Cpu.of([fleet.pid]).seconds if fleet else 0.0
    started = time.monotonic()
    memory_samples = []
    connected_min = status_before.get("connected")
    while (remaining := seconds - (time.monotonic() - started)) > 0:
        time.sleep(min(MEMORY_SAMPLE_SECONDS, remaining))
        memory_samples.append(roles.usage())
        if fleet:
            connected_min = min(connected_min, fleet.status()["connected"])
    elapsed = time.monotonic() - started
    after = memory_samples[-1]
    roles_figures = {
        role: {
            "cores": round((after[role]["cpu_seconds"] - before[role]["cpu_seconds"]) / elapsed, 4),
            "rss_mb": round(after[role]["rss_bytes"] / MB, 1),
            "pss_mb": round(after[role]["pss_bytes"] / MB, 1),
            "processes": after[role]["processes"],
            # The role's first process, then its children (gunicorn or Celery pool workers).
            "rss_mb_each": [round(one / MB, 1) for one in after[role]["rss_bytes_each"]],
        }
        for role in after
    }
    cpu = sum(after[r]["cpu_seconds"] - before[r]["cpu_seconds"] for r in after)
    figures = {
        "seconds": round(elapsed, 1),
        "server_cores": round(cpu / elapsed, 4),
        "server_rss_mb": round(sum(r["rss_bytes"] for r in after.values()) / MB, 1),
        "server_pss_mb": round(sum(r["pss_bytes"] for r in after.values()) / MB, 1),
        "server_rss_mb_max": round(
            max(sum(r["rss_bytes"] for r in sample.values()) for sample in memory_samples) / MB, 1
        ),
        "roles": roles_figures,
        "machine_services_cores": {
            name: round((_fleet_stack.Cpu.of(pids).seconds - services_before[name]) / elapsed, 4)
            for name, pids in services.items()
        },
    }
    if fleet:
        status_after = fleet.status()
        heartbeats = status_after["heartbeats_ok"] - status_before["heartbeats_ok"]
        figures |= {
            "heartbeats": heartbeats,
            "heartbeats_failed": status_after["heartbeats_failed"]
            - status_before["heartbeats_failed"],
            "heartbeats_per_second": round(heartbeats / elapsed, 1),
            # Websockets the server dropped while nothing was restarting (each one reconnects).
            "reconnects": status_after["reconnects"] - status_before["reconnects"],
            "server_cpu_ms_per_heartbeat": round(cpu * 1000 / heartbeats, 2)
            if heartbeats
            else None,
            "connected_min": connected_min,
            "simulator_cores": round(
                (_fleet_stack.Cpu.of([fleet.pid]).seconds - simulator_before) / elapsed, 4
            ),
        }
    return figures


def _idle_figures(idle: dict) -> dict:
    keep = ("seconds", "server_cores", "server_rss_mb", "server_pss_mb", "machine_services_cores")
    return {key: idle[key] for key in keep}


def _restarts(roles: _fleet_stack.ServerRoles, fleet: _fleet_sim.FleetProcess) -> dict:
    """RESTARTS restarts of every role, SETTLE_SECONDS apart: one reconnect storm varies a
    lot with how the agents' backoff waves meet the server, so the median is the figure."""
    runs = []
    for _ in range(RESTARTS):
        runs.append(_restart(roles, fleet))
        if runs[-1]["outage_seconds"] is None:
            break  # a fleet that never came back is not restarted again
        time.sleep(SETTLE_SECONDS)
    outages = [run["outage_seconds"] for run in runs]
    return {
        "outage_seconds": None if None in outages else round(statistics.median(outages), 2),
        "outage_seconds_each": outages,
        "seconds_from_servers_ready_each": [run["seconds_from_servers_ready"] for run in runs],
        "runs": runs,
    }


def _restart(roles: _fleet_stack.ServerRoles, fleet: _fleet_sim.FleetProcess) -> dict:
    """Stop every role, start them again on the same ports; until every agent is back."""
    stop_at = time.monotonic()
    roles.stop()
    stopped_at = time.monotonic()
    ws_log = roles.log_path("ws")
    ws_log_start = ws_log.stat().st_size
    roles.start()
    ready_at = time.monotonic()

    def recovered(status: dict) -> float | None:
        # The first moment every agent was connected once the old processes were gone. (The
        # outage it ends may have begun a little before the stop: a websocket the channel
        # layer dropped on its own, so the restart is timed from the stop, not the drop.)
        moments = [
            outage["recovered"]
            for outage in status["clock"]["outages"]
            if outage["recovered"] is not None and outage["recovered"] > stopped_at
        ]
        return min(moments) if moments else None

    figures: dict = {
        "stop_seconds": round(stopped_at - stop_at, 2),
        "start_seconds": round(ready_at - stopped_at, 2),
        "start_seconds_by_role": roles.ready_seconds,
    }
    try:
        status = fleet.wait_for(
            "every agent reconnected after the restart", recovered, RECONNECT_GIVE_UP_SECONDS
        )
    except TimeoutError:
        # Reported, not raised: the figures measured before the restart still count.
        status = fleet.status()
        figures |= {
            "outage_seconds": None,
            "seconds_from_servers_ready": None,
            "error": (
                f"not every agent reconnected within {RECONNECT_GIVE_UP_SECONDS} s of the "
                f"restart: {status['connected']} of {status['expected']} connected"
            ),
        }
    else:
        back_at = recovered(status) or ready_at
        figures |= {
            # From the stop (every websocket drops at once) until all were open again: the
            # fleet not whole. The target applies to this one.
            "outage_seconds": round(back_at - stop_at, 2),
            "seconds_from_servers_ready": round(back_at - ready_at, 2),
        }
    storm = ws_log.read_text(errors="replace")[ws_log_start:]
    return figures | {
        "connected": status["connected"],
        "ws_handshakes_attempted": storm.count("WSCONNECTING /ws/agent/"),
        "ws_handshakes_accepted": storm.count('"WSCONNECT /ws/agent/'),
        # Consumers daphne killed 5 s after their connection was gone, still authenticating:
        # handshakes it gave up on (its --websocket_connect_timeout, 5 s) while they queued.
        "ws_consumers_killed": storm.count("took too long to shut down and was killed"),
        # The channel layer's Redis pool (redis-py's asyncio default: 100) overflowing.
        "ws_redis_pool_exhausted": storm.count("MaxConnectionsError: Too many connections"),
    }


def _simulator_figures(final: dict) -> dict:
    reports = final.get("reports", [])

    def total(key: str) -> int:
        return sum(report[key] for report in reports)

    return {
        "registered": total("registered"),
        "registration_failed": total("registration_failed"),
        "heartbeats_ok": total("heartbeats_ok"),
        "heartbeats_failed": total("heartbeats_failed"),
        "reconnects": total("reconnects"),
        "stopped": total("stopped"),
        "recoveries_seconds": [report["recoveries"] for report in reports],
        "errors": [report["errors"] for report in reports if report["errors"]],
        "cpu_seconds": round(final.get("cpu_seconds", 0.0), 1),
    }


# The node list.


def _node_list() -> dict:
    print("fleet: node list with 10,000 nodes…", flush=True)
    with _stack.released() as (env, data_dir, _):
        return _fleet_nodes.measure(env=env, data_dir=Path(data_dir))
