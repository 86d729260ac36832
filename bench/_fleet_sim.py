"""The simulated fleet in a process of its own, so its CPU never counts as the server's.

    python -m bench._fleet_sim PLAN.json

One `bosun_agent.simulate.Simulation` per activation (an activation registers at most 1,000
nodes, so 5,000 nodes take five), all in one asyncio loop, as one fleet. Every
`STATUS_SECONDS` the process writes a status file the benchmark reads while it runs: counts
summed over the fleet, and the monotonic clock times (`time.monotonic()` is the same clock in
every process of the machine) when the whole fleet was first registered and connected, and
each outage after that: from the first dropped websocket until all were open again. On SIGTERM
the nodes stop and the final reports are written.

Optional plan keys: `command_delay` (seconds a virtual RunCommand runs, the simulator's
`--command-delay`; 0 by default) and `count_requests` (count the fleet's HTTP requests by kind,
fetch, ack, reply, heartbeat …, with their seconds, and the websocket frames the nodes received
by type, wake …, in the status: wraps the agent client's send and the runtime's frame handler
in this process only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bosun_agent import client as agent_client
from bosun_agent import runtime as agent_runtime
from bosun_agent.simulate import Simulation, raise_file_limit

from bench import _stack

STATUS_SECONDS = 0.2
ACTIVATION_LIMIT = 1000  # the most registrations one activation allows
# /agent/v1/messages/<id>/reply → reply; /agent/v1/heartbeat → heartbeat.
_MESSAGE_PATH = re.compile(r"^/agent/v1/messages/[^/]+/(?P<kind>[a-z-]+)$")


@dataclass
class FleetClock:
    """Fleet-wide moments on the monotonic clock, sampled every STATUS_SECONDS."""

    started: float
    all_registered: float | None = None
    all_connected: float | None = None
    outages: list[dict[str, float | None]] = field(default_factory=list)

    def sample(self, now: float, registered: int, connected: int, expected: int) -> None:
        if self.all_registered is None and registered >= expected:
            self.all_registered = now
        if connected >= expected > 0:
            if self.all_connected is None:
                self.all_connected = now
            elif self.outages and self.outages[-1]["recovered"] is None:
                self.outages[-1]["recovered"] = now
        elif self.all_connected is not None and (
            not self.outages or self.outages[-1]["recovered"] is not None
        ):
            self.outages.append({"dropped": now, "recovered": None})


async def run_fleet(plan: dict[str, Any]) -> dict[str, Any]:
    groups = plan["groups"]
    total = sum(group["count"] for group in groups)
    raise_file_limit(total * 2 + 256)
    simulations = [
        Simulation(
            plan["url"],
            group["count"],
            ws_url=plan.get("ws_url"),
            activation_id=group["activation_id"],
            activation_code=group["activation_code"],
            name_prefix=group["name_prefix"],
            tags=plan.get("tags"),
            # The plan's ramp is the fleet's: the simulations start their nodes side by side.
            ramp=plan["ramp"] / len(groups),
            http_concurrency=max(8, plan["http_concurrency"] // len(groups)),
            command_delay=float(plan.get("command_delay") or 0.0),
        )
        for group in groups
    ]
    requests = RequestCounter.install() if plan.get("count_requests") else None
    clock = FleetClock(started=time.monotonic())
    status_path = Path(plan["status_path"])
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    def status() -> dict[str, Any]:
        stats = [simulation.stats for simulation in simulations]
        expected = sum(s.expected() - s.stats.stopped for s in simulations)
        return {
            "now": time.monotonic(),
            "count": total,
            "registered": sum(s.registered() for s in simulations),
            "registration_failed": sum(s.report.registration_failed for s in simulations),
            "expected": expected,
            "connected": sum(s.websockets_connected for s in stats),
            "heartbeats_ok": sum(s.heartbeats_ok for s in stats),
            "heartbeats_failed": sum(s.heartbeats_failed for s in stats),
            "reconnects": sum(s.reconnects for s in stats),
            "stopped": sum(s.stopped for s in stats),
            "messages_answered": sum(s.messages_answered for s in stats),
            "replies_deferred": sum(s.replies_deferred for s in stats),
            "commands_started": sum(s.commands.started for s in simulations),
            "requests": requests.counts() if requests else {},
            "frames": dict(requests.frames) if requests else {},
            "cpu_seconds": _own_cpu_seconds(),
            "clock": {
                "started": clock.started,
                "all_registered": clock.all_registered,
                "all_connected": clock.all_connected,
                "outages": clock.outages,
            },
        }

    async def watch() -> None:
        while True:
            current = status()
            clock.sample(
                current["now"], current["registered"], current["connected"], current["expected"]
            )
            _write_json(status_path, status())
            await asyncio.sleep(STATUS_SECONDS)

    watcher = asyncio.create_task(watch())
    runs = [asyncio.create_task(simulation.run()) for simulation in simulations]
    await stopping.wait()
    for simulation in simulations:
        simulation.stop()
    reports = await asyncio.gather(*runs)
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    final = status()
    _write_json(status_path, final)
    return {**final, "reports": [report.to_json() for report in reports]}


class RequestCounter:
    """The fleet's HTTP requests by kind: how many, how many failed, and their seconds (from
    sending to the answer; the wait for the simulator's own HTTP semaphore is left out)."""

    def __init__(self) -> None:
        self.by_kind: dict[str, dict[str, float]] = {}
        self.frames: dict[str, int] = {}

    @classmethod
    def install(cls) -> RequestCounter:
        counter = cls()
        send = agent_client.AgentClient._send
        on_frame = agent_runtime.NodeRuntime._on_frame

        def frame_counted(runtime: Any, text: str, backoff: Any) -> None:
            try:
                kind = str(json.loads(text).get("type"))
            except (ValueError, AttributeError):
                kind = "unreadable"
            counter.frames[kind] = counter.frames.get(kind, 0) + 1
            on_frame(runtime, text, backoff)

        async def counted(client: Any, path: str, data: bytes, headers: dict[str, str]) -> Any:
            started = time.monotonic()
            failed = True
            try:
                answer = await send(client, path, data, headers)
                failed = False
                return answer
            finally:
                counter.add(path, time.monotonic() - started, failed)

        agent_client.AgentClient._send = counted  # type: ignore[method-assign]
        agent_runtime.NodeRuntime._on_frame = frame_counted  # type: ignore[method-assign]
        return counter

    def add(self, path: str, seconds: float, failed: bool) -> None:
        matched = _MESSAGE_PATH.match(path)
        kind = matched["kind"] if matched else path.rstrip("/").rsplit("/", 1)[-1]
        entry = self.by_kind.setdefault(kind, {"count": 0, "failed": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["failed"] += failed
        entry["seconds"] += seconds

    def counts(self) -> dict[str, dict[str, float]]:
        return {kind: dict(entry) for kind, entry in self.by_kind.items()}


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    partial.replace(path)  # the reader never sees half a file


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    # Thousands of nodes retrying through a restart would fill the log with the same line.
    logging.getLogger("bosun_agent.runtime").setLevel(logging.CRITICAL)
    plan = json.loads(Path(argv[0]).read_text())
    result = asyncio.run(run_fleet(plan))
    _write_json(Path(plan["report_path"]), result)
    return 0


# The benchmark's side.


def activations(
    web_url: str,
    key: str,
    count: int,
    *,
    description: str = "bench fleet",
    tags: dict[str, str] | None = None,
) -> list[dict]:
    """Enough multi-use activations for `count` agents, made through the REST API with the
    access key `key`: the plan's `groups`. `tags` go on every node they register."""
    groups = []
    remaining = count
    while remaining:
        limit = min(remaining, ACTIVATION_LIMIT)
        body = json.dumps(
            {
                "description": description,
                "registration_limit": limit,
                "tags": {"Env": "bench"} if tags is None else tags,
            }
        ).encode()
        request = urllib.request.Request(
            f"{web_url}/api/v1/activations/",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            made = json.loads(answer.read())
        groups.append(
            {
                "activation_id": made["id"],
                "activation_code": made["activation_code"],
                "count": limit,
                # sim1-00001 …: host names stay unique across activations.
                "name_prefix": f"sim{len(groups) + 1}-",
            }
        )
        remaining -= limit
    return groups


class FleetProcess:
    """The simulator process as the benchmark sees it: start, read its status, stop."""

    def __init__(self, plan: dict[str, Any], work_dir: Path) -> None:
        self.work_dir = work_dir
        self.plan = {
            **plan,
            "status_path": str(work_dir / "sim-status.json"),
            "report_path": str(work_dir / "sim-report.json"),
        }
        self.plan_path = work_dir / "sim-plan.json"
        self.log_path = work_dir / "sim.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # The plan holds activation codes: keep it to ourselves.
        self.plan_path.touch(mode=0o600)
        self.plan_path.write_text(json.dumps(self.plan))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [_stack.PYTHON, "-m", "bench._fleet_sim", str(self.plan_path)],
                cwd=_stack.ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the simulator is not running")
        return self.process.pid

    def status(self) -> dict[str, Any]:
        path = Path(self.plan["status_path"])
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"the simulator exited with {self.process.returncode}:\n{self.tail()}"
            )
        if not path.exists():
            return {}
        return json.loads(path.read_text())

    def wait_for(self, what: str, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            current = self.status()
            if current and predicate(current):
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the simulated fleet: {what} not within {timeout:.0f} s: {current}"
                )
            time.sleep(STATUS_SECONDS)

    def stop(self) -> dict[str, Any]:
        """Stop the nodes; the final report (empty if the simulator could not write one)."""
        if self.process is None:
            return {}
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        path = Path(self.plan["report_path"])
        return json.loads(path.read_text()) if path.exists() else {}

    def tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def simulating(plan: dict[str, Any], work_dir: Path):
    fleet = FleetProcess(plan, work_dir)
    fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
