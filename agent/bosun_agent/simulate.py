"""Thousands of virtual agents in one asyncio process, speaking the real protocol.

    python -m bosun_agent.simulate --url URL --count 1000 \\
        --activation-id ID --activation-code CODE [--state-file sim.json] [--duration 120]

Each virtual node is the agent's own `NodeRuntime` with in-memory state, a synthetic host
(sim-00001 …) and its own fingerprint. They share one aiohttp session and one random source;
HTTP requests are bounded by one semaphore, websockets are not (each node keeps one open).
With --state-file the identities (node ids and keys) are saved, so a second run reconnects
the same nodes without registering again. `run_simulation()` is the programmatic face.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import resource
import signal
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bosun_agent import __version__
from bosun_agent.backoff import HEARTBEAT_JITTER, Backoff
from bosun_agent.cli import parse_tags
from bosun_agent.client import AgentClient, ServerRefusal, ServerUnavailable, new_session
from bosun_agent.handlers import builtin_handlers
from bosun_agent.registration import register_node
from bosun_agent.runtime import NodeRuntime, RuntimeStats
from bosun_agent.simulated_commands import CommandJournal, SimulatedCommands
from bosun_agent.state import MemoryState
from bosun_agent.statedir import atomic_write

log = logging.getLogger(__name__)

ACTIVATION_CODE_ENV = "BOSUN_AGENT_ACTIVATION_CODE"
SAMPLE_SECONDS = 0.2


@dataclass
class Report:
    count: int
    registered: int = 0  # registered in this run
    reused: int = 0  # identities loaded from the state file
    registration_failed: int = 0
    connected: int = 0  # websockets open at the end
    max_connected: int = 0
    heartbeats_ok: int = 0
    heartbeats_failed: int = 0
    messages_answered: int = 0
    reconnects: int = 0
    key_rotations: int = 0
    stopped: int = 0  # nodes that stopped on their own (revoked, clone, protocol)
    commands_started: int = 0  # RunCommand messages the virtual nodes ran
    commands_cancelled: int = 0  # of those, ended early by a CancelCommand
    seconds_to_all_registered: float | None = None
    seconds_to_all_connected: float | None = None
    # After the fleet was fully connected, each time connections dropped (a server restart):
    # seconds from the first drop until every node was connected again.
    recoveries: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VirtualNode:
    index: int
    hostname: str
    fingerprint: str
    state: MemoryState
    runtime: NodeRuntime | None = None

    def facts(self) -> dict[str, Any]:
        i = self.index
        return {
            "hostname": self.hostname,
            "platform_type": "Linux",
            "platform_name": "Bosun Simulated Linux",
            "platform_version": "1",
            "kernel_version": "6.1.0-sim",
            "architecture": "x86_64",
            "ip_addresses": [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"],
            "agent_version": __version__,
            "python_version": "simulated",
        }


class Simulation:
    def __init__(
        self,
        url: str,
        count: int,
        *,
        activation_id: str | None = None,
        activation_code: str | None = None,
        ramp: float = 100.0,
        heartbeat_jitter: float = HEARTBEAT_JITTER,
        state_file: Path | None = None,
        name_prefix: str = "sim-",
        tags: dict[str, str] | None = None,
        http_concurrency: int = 64,
        websocket_ping: float | None = 45.0,
        seed: int | None = None,
        ws_url: str | None = None,
        command_delay: float = 0.0,
        journal_file: Path | None = None,
    ) -> None:
        self.url = url
        self.ws_url = ws_url
        self.count = count
        self.activation_id = activation_id
        self.activation_code = activation_code
        self.ramp = max(ramp, 0.1)
        self.heartbeat_jitter = heartbeat_jitter
        self.state_file = state_file
        self.name_prefix = name_prefix
        self.tags = tags
        self.http_concurrency = http_concurrency
        self.websocket_ping = websocket_ping
        self.rng = random.Random(seed)  # noqa: S311 - jitter, not secrets
        self.stats = RuntimeStats()
        self.report = Report(count=count)
        self.commands = SimulatedCommands(
            delay=command_delay,
            journal=CommandJournal(journal_file) if journal_file is not None else None,
        )
        self.nodes = self._load_nodes()
        self._stopping: asyncio.Event | None = None
        self._started = 0.0

    # Identities.

    def _load_nodes(self) -> list[VirtualNode]:
        saved: dict[str, Any] = {}
        if self.state_file is not None and self.state_file.exists():
            saved = json.loads(self.state_file.read_text()).get("nodes", {})
        nodes = []
        for index in range(1, self.count + 1):
            hostname = f"{self.name_prefix}{index:05d}"
            entry = saved.get(hostname)
            if isinstance(entry, dict):
                state = MemoryState.from_json(entry)
                fingerprint = str(entry["fingerprint"])
                self.report.reused += 1
            else:
                state = MemoryState()
                fingerprint = hashlib.sha256(f"bosun-sim:{uuid.uuid4()}".encode()).hexdigest()
            nodes.append(VirtualNode(index, hostname, fingerprint, state))
        if self.report.reused < self.count and not (self.activation_id and self.activation_code):
            missing = self.count - self.report.reused
            raise ValueError(f"{missing} nodes need registering: give an activation id and code")
        return nodes

    def save_state_file(self) -> None:
        if self.state_file is None:
            return
        nodes = {}
        for node in self.nodes:
            saved = node.state.to_json()
            if saved is not None:
                nodes[node.hostname] = {**saved, "fingerprint": node.fingerprint}
        data = json.dumps({"server_url": self.url, "nodes": nodes}, indent=1).encode()
        atomic_write(self.state_file, data)  # 0600: it holds the nodes' private keys

    # Running.

    async def run(self, duration: float | None = None) -> Report:
        self._stopping = asyncio.Event()
        self._started = time.monotonic()
        raise_file_limit(self.count * 2 + 256)
        if self.commands.journal is not None:
            self.commands.journal.open()
        try:
            await self._run(duration, self._stopping)
        finally:
            if self.commands.journal is not None:
                self.commands.journal.close()
        self.save_state_file()
        self._fill_report()
        return self.report

    async def _run(self, duration: float | None, stopping: asyncio.Event) -> None:
        async with new_session(limit=0, trust_env=False) as session:
            client = AgentClient(
                session,
                self.url,
                concurrency=asyncio.Semaphore(self.http_concurrency),
                websocket_ping=self.websocket_ping,
                ws_url=self.ws_url,
            )
            watcher = asyncio.create_task(self._watch())
            tasks = []
            for node in self.nodes:
                if stopping.is_set():
                    break
                tasks.append(asyncio.create_task(self._run_node(client, node)))
                await asyncio.sleep(1.0 / self.ramp)
            with contextlib.suppress(asyncio.TimeoutError):
                remaining = None if duration is None else duration - self.elapsed()
                await asyncio.wait_for(stopping.wait(), remaining)
            self.report.connected = self.stats.websockets_connected
            for node in self.nodes:
                if node.runtime is not None:
                    node.runtime.stop()
            stopping.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    async def _run_node(self, client: AgentClient, node: VirtualNode) -> None:
        if node.state.identity() is None and not await self._register(client, node):
            return
        if self._stopping is not None and self._stopping.is_set():
            return

        async def facts() -> dict[str, Any]:
            return node.facts()

        handlers = builtin_handlers(facts)
        self.commands.register(handlers)
        node.runtime = NodeRuntime(
            client=client,
            state=node.state,
            fingerprint=node.fingerprint,
            facts=facts,
            handlers=handlers,
            stats=self.stats,
            heartbeat_jitter=self.heartbeat_jitter,
            rng=self.rng,
            log_prefix=node.hostname,
        )
        await node.runtime.run()

    async def _register(self, client: AgentClient, node: VirtualNode) -> bool:
        backoff = Backoff(rng=self.rng)
        while self._stopping is not None and not self._stopping.is_set():
            try:
                await register_node(
                    client=client,
                    state=node.state,
                    activation_id=self.activation_id or "",
                    activation_code=self.activation_code or "",
                    fingerprint=node.fingerprint,
                    fingerprint_sources=("simulated",),
                    facts=node.facts(),
                    tags=self.tags,
                )
            except ServerUnavailable:
                await asyncio.sleep(backoff.next_delay())
                continue
            except ServerRefusal as exc:
                self._count_error(exc.code)
                self.report.registration_failed += 1
                log.error("%s: registration refused: %s", node.hostname, exc)
                return False
            self.report.registered += 1
            return True
        return False

    def _count_error(self, code: str) -> None:
        self.report.errors[code] = self.report.errors.get(code, 0) + 1

    async def _watch(self) -> None:
        """Sample the fleet: time to all registered, all connected, and recoveries."""
        outage_started: float | None = None
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            now = self.elapsed()
            report = self.report
            connected = self.stats.websockets_connected
            report.max_connected = max(report.max_connected, connected)
            if report.seconds_to_all_registered is None and self.registered() >= self.expected():
                report.seconds_to_all_registered = round(now, 2)
                self.save_state_file()
            target = self.expected() - self.stats.stopped
            if connected >= target > 0:
                if report.seconds_to_all_connected is None:
                    report.seconds_to_all_connected = round(now, 2)
                elif outage_started is not None:
                    report.recoveries.append(round(now - outage_started, 2))
                outage_started = None
            elif report.seconds_to_all_connected is not None and outage_started is None:
                outage_started = now

    def registered(self) -> int:
        return self.report.registered + self.report.reused

    def expected(self) -> int:
        return self.count - self.report.registration_failed

    def _fill_report(self) -> None:
        stats, report = self.stats, self.report
        report.heartbeats_ok = stats.heartbeats_ok
        report.heartbeats_failed = stats.heartbeats_failed
        report.messages_answered = stats.messages_answered
        report.reconnects = stats.reconnects
        report.key_rotations = stats.key_rotations
        report.stopped = stats.stopped
        report.commands_started = self.commands.started
        report.commands_cancelled = self.commands.cancelled
        report.duration = round(self.elapsed(), 2)

    def progress_line(self) -> str:
        s = self.stats
        return (
            f"t={self.elapsed():.1f}s registered {self.registered()}/{self.count} "
            f"connected {s.websockets_connected} heartbeats {s.heartbeats_ok} ok "
            f"{s.heartbeats_failed} failed, answered {s.messages_answered}, "
            f"reconnects {s.reconnects}, stopped {s.stopped}"
        )


async def run_simulation(
    url: str, count: int, *, duration: float | None = None, **options: Any
) -> Report:
    """Run `count` virtual agents against `url` for `duration` seconds (see `Simulation`)."""
    return await Simulation(url, count, **options).run(duration)


def raise_file_limit(wanted: int) -> None:
    """Each node holds a websocket: lift the soft descriptor limit as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if hard != resource.RLIM_INFINITY and hard < wanted:
        log.warning("the file descriptor limit (%d) is low for this many nodes", hard)


# The command line.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bosun_agent.simulate",
        description="Run many virtual Bosun agents in one process against a real server.",
    )
    parser.add_argument("--url", required=True, help="the Bosun server")
    parser.add_argument(
        "--ws-url",
        help="the websocket role, when no proxy puts it behind --url (default: --url)",
    )
    parser.add_argument("--count", type=int, required=True, help="how many virtual nodes")
    parser.add_argument("--activation-id", help="a multi-use activation for new nodes")
    parser.add_argument("--activation-code", help=f"its code (or ${ACTIVATION_CODE_ENV})")
    parser.add_argument("--ramp", type=float, default=100.0, help="nodes started per second")
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument(
        "--heartbeat-jitter", type=float, default=HEARTBEAT_JITTER, help="±fraction of the interval"
    )
    parser.add_argument("--state-file", type=Path, help="keep identities here across runs")
    parser.add_argument("--json-report", type=Path, help="write the final counts here")
    parser.add_argument("--name-prefix", default="sim-", help="host names are PREFIX00001 …")
    parser.add_argument("--tags", type=parse_tags, help="tags for new nodes, k=v,k2=v2")
    parser.add_argument("--http-concurrency", type=int, default=64, help="HTTP requests at once")
    parser.add_argument(
        "--command-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long a virtual RunCommand runs before it succeeds (a CancelCommand ends it)",
    )
    parser.add_argument(
        "--journal-file",
        type=Path,
        metavar="PATH",
        help='append "node_id message_id" here for every RunCommand a virtual node starts',
    )
    parser.add_argument("--progress", type=float, default=5.0, help="seconds between lines")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every node's trouble")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    # Thousands of nodes retrying through a server restart would drown the terminal.
    logging.getLogger("bosun_agent.runtime").setLevel(
        logging.INFO if args.verbose else logging.CRITICAL
    )
    try:
        simulation = Simulation(
            args.url,
            args.count,
            activation_id=args.activation_id,
            activation_code=args.activation_code or os.environ.get(ACTIVATION_CODE_ENV),
            ramp=args.ramp,
            heartbeat_jitter=args.heartbeat_jitter,
            state_file=args.state_file,
            name_prefix=args.name_prefix,
            tags=args.tags,
            http_concurrency=args.http_concurrency,
            ws_url=args.ws_url,
            command_delay=args.command_delay,
            journal_file=args.journal_file,
        )
    except (ValueError, OSError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    report = asyncio.run(_main(simulation, args.duration, args.progress))
    text = json.dumps(report.to_json(), indent=2)
    if args.json_report:
        args.json_report.write_text(text + "\n")
    print(text)
    return 0


async def _main(simulation: Simulation, duration: float | None, progress: float) -> Report:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, simulation.stop)

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(progress)
            print(simulation.progress_line(), file=sys.stderr, flush=True)

    reporter = asyncio.create_task(report_progress())
    try:
        return await simulation.run(duration)
    finally:
        reporter.cancel()


if __name__ == "__main__":
    sys.exit(main())
