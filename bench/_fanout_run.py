"""One simulated fleet on the production stack, and one command sent to all of it, measured.

`fanout_fleet(count)` starts what bench/fleet.py starts (a throwaway PostgreSQL database and
the local Redis, the four roles through bench/_fleet_stack.py, the simulator in its own process
through bench/_fleet_sim.py, counting its requests by kind), waits until every agent is
registered and its websocket open, and yields a `Fanout`. `Fanout.command(max_concurrency)`
sends Bosun-RunShellScript with `true` to the fleet's tag through the REST API and polls
PostgreSQL (one `count(*)` of the command's ended invocations every POLL_SECONDS) until every
result is stored, then until the command's own row has ended; the CPU of every process tree
(each role, PostgreSQL, Redis, the simulator, the whole machine) is read from /proc before the
send and after that, and the invocations' own timestamps give when nodes started and ended.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench import _fleet_sim, _fleet_stack, _procfs, _stack

RAMP_PER_SECOND = 100  # the simulator's default, as bench/fleet.py
HTTP_CONCURRENCY = 64
SETTLE_SECONDS = 10  # after the last websocket opened: late facts reports, first sweeps
POLL_SECONDS = 0.01
PAUSE_SECONDS = 3  # between commands: the last one's stragglers (a late settle) are over
TAIL_SECONDS = 0.5  # after the command's row ended, inside its CPU window
DOCUMENT = "Bosun-RunShellScript"
SCRIPT = ["true"]
FLEET_TAG = ("Bench", "fanout")
# commands.models.TERMINAL_INVOCATION_STATUSES / TERMINAL_COMMAND_STATUSES (values).
ENDED_INVOCATION = ["Success", "Cancelled", "TimedOut", "Failed"]
ENDED_COMMAND = ["Success", "Cancelled", "Failed", "TimedOut"]
MB = 1024 * 1024
# An exception line in a role's log, as bench/_stack.error_lines counts them.
ERROR_LINE = re.compile(rb"^[\w.]+(Error|Exception): ", re.MULTILINE)


def run_timeout(count: int) -> float:
    """How long one command may take before it is reported unfinished."""
    return 120 + count * 0.06


@dataclass
class Snapshot:
    """CPU seconds so far of everything that matters to one command, and when."""

    at: float
    roles: dict[str, float]
    services: dict[str, float]
    simulator: float
    machine: float
    benchmark: float
    requests: dict[str, dict[str, float]]
    frames: dict[str, int]

    @staticmethod
    def take(fanout: Fanout) -> Snapshot:
        own = os.times()
        status = fanout.fleet.status()
        return Snapshot(
            at=time.monotonic(),
            roles={
                role: _fleet_stack.Cpu.of([pid]).seconds
                for role, pid in fanout.roles.pids().items()
            },
            services={
                name: _fleet_stack.Cpu.of(pids).seconds for name, pids in fanout.services.items()
            },
            simulator=_fleet_stack.Cpu.of([fanout.fleet.pid]).seconds,
            machine=_procfs.machine_busy_seconds(),
            benchmark=own.user + own.system,
            requests=status.get("requests", {}),
            frames=status.get("frames", {}),
        )

    def since(self, before: Snapshot) -> dict[str, Any]:
        """CPU seconds spent between two snapshots, and the requests the fleet made."""
        roles = {
            role: round(cpu - before.roles.get(role, 0.0), 3) for role, cpu in self.roles.items()
        }
        services = {
            name: round(cpu - before.services.get(name, 0.0), 3)
            for name, cpu in self.services.items()
        }
        server = sum(roles.values())
        simulator = self.simulator - before.simulator
        benchmark = self.benchmark - before.benchmark
        machine = self.machine - before.machine
        requests = {}
        for kind, entry in self.requests.items():
            earlier = before.requests.get(kind, {})
            made = entry["count"] - earlier.get("count", 0)
            if made:
                requests[kind] = {
                    "count": made,
                    "failed": entry["failed"] - earlier.get("failed", 0),
                    "mean_ms": round(
                        (entry["seconds"] - earlier.get("seconds", 0.0)) * 1000 / made, 2
                    ),
                }
        return {
            "seconds": round(self.at - before.at, 3),
            "server_cpu_seconds": round(server, 3),
            "roles_cpu_seconds": roles,
            "services_cpu_seconds": services,
            "simulator_cpu_seconds": round(simulator, 3),
            "benchmark_cpu_seconds": round(benchmark, 3),
            "machine_cpu_seconds": round(machine, 3),
            # Whatever else ran meanwhile (other people's tests on a shared box).
            "other_cpu_seconds": round(
                max(0.0, machine - server - sum(services.values()) - simulator - benchmark), 3
            ),
            "requests": requests,
            # Websocket frames the fleet received, by type: a wake the channel layer dropped
            # never arrives, and its node finds the message at its next heartbeat instead.
            "frames": {
                kind: count - before.frames.get(kind, 0)
                for kind, count in self.frames.items()
                if count - before.frames.get(kind, 0)
            },
        }


@dataclass
class Fanout:
    count: int
    env: dict[str, str]
    key: str
    roles: _fleet_stack.ServerRoles
    fleet: _fleet_sim.FleetProcess
    db: psycopg.Connection
    services: dict[str, list[int]]
    arrival: dict[str, Any] = field(default_factory=dict)
    server_errors: dict[str, list[str]] = field(default_factory=dict)
    simulator_final: dict[str, Any] = field(default_factory=dict)

    def window(self, seconds: float) -> dict[str, Any]:
        """CPU and requests over `seconds` of nothing but the connected fleet's heartbeats."""
        before = Snapshot.take(self)
        time.sleep(seconds)
        return Snapshot.take(self).since(before)

    def memory(self) -> dict[str, Any]:
        usage = self.roles.usage()
        return {
            "server_rss_mb": round(sum(r["rss_bytes"] for r in usage.values()) / MB, 1),
            "server_pss_mb": round(sum(r["pss_bytes"] for r in usage.values()) / MB, 1),
            "roles": {
                role: {
                    "rss_mb": round(r["rss_bytes"] / MB, 1),
                    "pss_mb": round(r["pss_bytes"] / MB, 1),
                    "processes": r["processes"],
                    "rss_mb_each": [round(one / MB, 1) for one in r["rss_bytes_each"]],
                }
                for role, r in usage.items()
            },
        }

    def analyze(self) -> None:
        """What autovacuum would have done by now on a live server (off on this machine's
        PostgreSQL): fresh statistics, so the planner sees the rows the runs keep adding."""
        self.db.execute("ANALYZE")

    def command(self, max_concurrency: str) -> dict[str, Any]:
        """Send one command to the whole fleet and time it until every result is stored."""
        self.analyze()
        time.sleep(PAUSE_SECONDS)
        logs = {role: self.roles.log_path(role).stat().st_size for role in _fleet_stack.ROLES}
        before = Snapshot.take(self)
        sent_wall = time.time()
        started = time.monotonic()
        answer = _send(self.roles.url("web"), self.key, max_concurrency)
        answered = time.monotonic()
        command_pk, targets = self.db.execute(
            "SELECT id, target_count FROM commands_command WHERE command_id = %s",
            (answer["command_id"],),
        ).fetchone()
        first = last = None
        stored = 0
        deadline = started + run_timeout(self.count)
        while True:
            (stored,) = self.db.execute(
                "SELECT count(*) FROM commands_invocation "
                "WHERE command_id = %s AND status = ANY(%s)",
                (command_pk, ENDED_INVOCATION),
            ).fetchone()
            now = time.monotonic()
            if stored and first is None:
                first = now
            if stored >= targets:
                last = now
                break
            if now > deadline:
                break
            time.sleep(POLL_SECONDS)
        ended_at = self._command_ended(command_pk, deadline + 10) if last else None
        time.sleep(TAIL_SECONDS)
        spent = Snapshot.take(self).since(before)

        def since_send(moment: float | None) -> float | None:
            return None if moment is None else round(moment - started, 3)

        timeline = self._timeline(command_pk, sent_wall)
        errors = {}
        for role, offset in logs.items():
            with self.roles.log_path(role).open("rb") as log:
                log.seek(offset)
                if found := len(ERROR_LINE.findall(log.read())):
                    errors[role] = found
        return {
            "max_concurrency": max_concurrency,
            "command_id": answer["command_id"],
            "targets": targets,
            "results_stored": stored,
            "finished": last is not None,
            "send_request_seconds": round(answered - started, 3),
            # The first invocation's end by the server's clock: the wake-ups go out before the
            # send request answers, so a result may be stored before polling could begin.
            "first_result_seconds": (timeline["ended"] or {}).get("first"),
            "first_result_seen_seconds": since_send(first),
            "all_results_stored_seconds": since_send(last),
            "command_ended_seconds": since_send(ended_at),
            "timeline": timeline,
            # Exception lines each role logged meanwhile (bench/_stack.error_lines has them all).
            "server_error_lines": errors,
            **spent,
        }

    def _command_ended(self, command_pk: int, deadline: float) -> float | None:
        while time.monotonic() < deadline:
            (status,) = self.db.execute(
                "SELECT status FROM commands_command WHERE id = %s", (command_pk,)
            ).fetchone()
            if status in ENDED_COMMAND:
                return time.monotonic()
            time.sleep(POLL_SECONDS)
        return None

    def _timeline(self, command_pk: int, sent_wall: float) -> dict[str, Any]:
        """When the invocations were sent, started (acked) and ended, in seconds from the send
        request (the server's own timestamps: the same clock on this machine)."""
        rows = self.db.execute(
            "SELECT extract(epoch FROM dispatched_at), extract(epoch FROM started_at), "
            "extract(epoch FROM finished_at), status FROM commands_invocation "
            "WHERE command_id = %s",
            (command_pk,),
        ).fetchall()
        (requested, finished, status) = self.db.execute(
            "SELECT extract(epoch FROM requested_at), extract(epoch FROM finished_at), status "
            "FROM commands_command WHERE id = %s",
            (command_pk,),
        ).fetchone()
        (redelivered,) = self.db.execute(
            "SELECT count(*) FROM fleet_nodemessage WHERE delivery_count > 1 AND message_id IN "
            "(SELECT message_id FROM commands_invocation WHERE command_id = %s)",
            (command_pk,),
        ).fetchone()
        statuses: dict[str, int] = {}
        for *_, one in rows:
            statuses[one] = statuses.get(one, 0) + 1

        def spread(index: int) -> dict[str, float] | None:
            moments = sorted(
                float(row[index]) - sent_wall for row in rows if row[index] is not None
            )
            if not moments:
                return None
            return {
                "first": round(moments[0], 3),
                "p50": round(statistics.median(moments), 3),
                "last": round(moments[-1], 3),
                "count": len(moments),
            }

        return {
            "command_requested_at": round(float(requested) - sent_wall, 3),
            "dispatched": spread(0),
            "started": spread(1),
            "ended": spread(2),
            "command_finished_at": None
            if finished is None
            else round(float(finished) - sent_wall, 3),
            "command_status": status,
            "invocation_statuses": statuses,
            # Leased more than once: a lease (protocol.LEASE_SECONDS) ran out before the ack.
            "messages_redelivered": redelivered,
        }


def _send(web_url: str, key: str, max_concurrency: str) -> dict[str, Any]:
    body = json.dumps(
        {
            "document_name": DOCUMENT,
            "parameters": {"commands": SCRIPT},
            "targets": [{"Key": f"tag:{FLEET_TAG[0]}", "Values": [FLEET_TAG[1]]}],
            "max_concurrency": max_concurrency,
            "comment": "bench fanout",
        }
    ).encode()
    request = urllib.request.Request(
        f"{web_url}/api/v1/commands/",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        raise RuntimeError(
            f"sending the command answered {error.code}: {error.read()[:500]!r}"
        ) from None


def nearest_rank(values: list[float], share: float) -> float:
    """The nearest-rank percentile: with 5 values, p95 is the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@contextlib.contextmanager
def fanout_fleet(count: int, *, extra_env: dict[str, str] | None = None) -> Iterator[Fanout]:
    """`count` simulated agents, all registered and connected, on a fresh production stack."""
    # The roles run as shipped unless the caller asks otherwise (the profile pass).
    with _stack.released(extra_env) as (env, data_dir, stores):
        key = _fleet_stack.admin_access_key(env)
        with (
            _fleet_stack.running(env=env, log_dir=data_dir) as roles,
            psycopg.connect(stores["DATABASE_URL"], autocommit=True, connect_timeout=5) as db,
        ):
            plan = {
                "url": roles.url("web"),
                "ws_url": roles.url("ws"),
                "groups": _fleet_sim.activations(
                    roles.url("web"), key, count, description="bench fanout"
                ),
                "ramp": RAMP_PER_SECOND,
                "http_concurrency": HTTP_CONCURRENCY,
                "tags": dict([FLEET_TAG]),
                "count_requests": True,
            }
            fleet = _fleet_sim.FleetProcess(plan, data_dir)
            fleet.start()
            fanout = Fanout(
                count=count,
                env=env,
                key=key,
                roles=roles,
                fleet=fleet,
                db=db,
                services=_fleet_stack.machine_service_roots(),
            )
            try:
                fanout.arrival = _arrive(fleet, count)
                time.sleep(SETTLE_SECONDS)
                yield fanout
            finally:
                fanout.simulator_final = fleet.stop()
        fanout.server_errors = {
            role: lines
            for role in _fleet_stack.ROLES
            if (lines := _stack.error_lines(roles.log_path(role)))
        }


def _arrive(fleet: _fleet_sim.FleetProcess, count: int) -> dict[str, Any]:
    timeout = 120 + count / 10
    status = fleet.wait_for(
        "every agent registered and connected",
        lambda s: (
            s["registered"] + s["registration_failed"] >= count
            and s["clock"]["all_connected"] is not None
        ),
        timeout,
    )
    clock = status["clock"]
    return {
        "registered": status["registered"],
        "registration_failed": status["registration_failed"],
        "seconds_to_all_connected": round(clock["all_connected"] - clock["started"], 2),
    }
