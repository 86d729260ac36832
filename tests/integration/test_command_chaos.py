"""Run Command under chaos on the production roles: nothing lost, nothing run twice.

Ten commands go to 55 nodes (50 simulated, 5 real `bosun-agent`s) at MaxConcurrency 20 %,
so the runs spread over tens of seconds. While they run, the Celery worker is SIGKILLed (and
commands are sent while it is gone), a ws process is SIGKILLed and started again on its port
(its agents reconnect), and one real agent is SIGKILLed mid-run and started again.

Afterwards the record and the nodes must agree: every invocation ended; none ran twice (every
message id appears at most once across all the journals: the simulator's "node message_id"
lines, the real agents' "S <time> <message_id>" lines); every Success ran exactly once, on its
own node; the killed agent's interrupted runs are Failed saying so; nothing is missing.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.support import Agent, Api, RunCommands, clean_env, wait_until
from tests.support.cluster import Cluster, bosun_cluster
from tests.support.processes import PYTHON, ROOT

pytestmark = pytest.mark.integration

SIMULATED = 50
REAL = 5
COMMANDS = 10
TARGETS = SIMULATED + REAL
# How long a run takes: the simulator's virtual run, and the real agents' script.
SIMULATED_RUN_SECONDS = 2.5
REAL_SCRIPT = ["sleep 2", "echo done"]
MAX_CONCURRENCY = "20%"  # 11 of 55 at once: each command takes five rounds or more
# The sweep runs every 5 s, a lease lost with a killed ws process comes back after 120 s:
# generous, yet nothing here should need more than a fraction of it.
SETTLE_TIMEOUT = 300.0
INTERRUPTED = "the agent stopped while running this message"
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut"}


@pytest.fixture(scope="module")
def cluster(service_urls) -> Iterator[Cluster]:
    with bosun_cluster(**service_urls, ws_count=2, beat=True) as running_cluster:
        yield running_cluster


@pytest.fixture
def real_agents(cluster: Cluster, tmp_path: Path) -> Iterator[list[Agent]]:
    # Two on ws1 (restarted below), three on ws2 (one of them killed below).
    servers = ["ws1", "ws1", "ws2", "ws2", "ws2"]
    made = [
        Agent(cluster.url(ws).rstrip("/"), tmp_path, f"chaos-{n}-{ws}")
        for n, ws in enumerate(servers, start=1)
    ]
    try:
        yield made
    finally:
        for agent in made:
            agent.stop()


@pytest.fixture
def simulator(cluster: Cluster, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Where the simulator's journal, report and log go, and a stop for its process."""
    made: dict[str, Any] = {
        "journal": tmp_path / "simulated-journal.txt",
        "report": tmp_path / "simulated-report.json",
        "log": tmp_path / "simulate.log",
        "process": None,
    }
    try:
        yield made
    finally:
        _stop_simulator(made["process"])


def _stop_simulator(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_commands_survive_a_killed_worker_a_restarted_ws_and_a_killed_agent_without_loss_or_rerun(
    cluster: Cluster, real_agents: list[Agent], simulator: dict[str, Any]
):
    began = time.monotonic()
    timeline: list[str] = []

    def mark(what: str) -> None:
        timeline.append(f"{time.monotonic() - began:6.1f}s {what}")

    web = cluster.url("web").rstrip("/")
    api = Api.for_admin(web, cluster.env)
    commands = RunCommands(api)
    run = secrets.token_hex(3)
    tags = {"Chaos": run}

    # The fleet: 5 real agents and 50 virtual ones, all tagged for this run.
    activation = _activation(api, REAL, tags)
    for agent in real_agents:
        agent.registered(activation)
        agent.start()
    virtual = _activation(api, SIMULATED, tags)
    argv = [
        PYTHON, "-m", "bosun_agent.simulate",
        "--url", web,
        "--ws-url", cluster.url("ws1").rstrip("/"),
        "--count", str(SIMULATED),
        "--activation-id", virtual["id"],
        "--name-prefix", f"chaos-sim-{run}-",
        "--command-delay", str(SIMULATED_RUN_SECONDS),
        "--journal-file", str(simulator["journal"]),
        "--json-report", str(simulator["report"]),
        "--progress", "1",
        "--duration", "900",
    ]  # fmt: skip
    env = clean_env(BOSUN_AGENT_ACTIVATION_CODE=virtual["activation_code"])
    with simulator["log"].open("wb") as log:
        simulator["process"] = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    for agent in real_agents:
        agent.wait_connected(timeout=60)
    wait_until(
        lambda: simulator["log"].read_text(errors="replace"),
        lambda text: f"connected {SIMULATED} " in text,
        timeout=90,
        every=0.5,
        what=f"{SIMULATED} simulated agents connected",
    )
    wait_until(
        lambda: api.request("GET", f"/nodes/?tag=Chaos={run}&status=Online&page_size=500").body,
        lambda listing: listing["count"] == TARGETS,
        timeout=60,
        every=0.5,
        what=f"{TARGETS} nodes Online",
    )
    mark("fleet online")

    def send(n: int) -> str:
        sent = commands.send(
            REAL_SCRIPT,
            targets=[{"Key": "tag:Chaos", "Values": [run]}],
            max_concurrency=MAX_CONCURRENCY,
            max_errors="100%",
            comment=f"chaos {run} #{n}",
        )
        assert sent["target_count"] == TARGETS, sent
        return sent["command_id"]

    def explain() -> str:
        """The statuses so far, and what the nodes logged: for a failure's message."""
        sent = [commands.command(command_id) for command_id in command_ids]
        text = _summary(timeline, _invocations(cluster.database_url, command_ids), sent)
        tails = [f"----- simulator -----\n{_tail(simulator['log'])}"]
        tails += [f"----- {agent.name} -----\n{agent.log_tail()}" for agent in real_agents]
        return "\n".join([text, *tails])

    command_ids: list[str] = []
    with _explained(explain):
        # Ten commands in three batches: before the chaos, while the worker is gone, while ws1 is.
        batches = iter([range(0, 4), range(4, 7), range(7, COMMANDS)])
        command_ids += [send(n) for n in next(batches)]
        mark(f"sent {len(command_ids)} commands")
        progress = _Progress(cluster.database_url, run)
        wait_until(
            progress.finished,
            lambda finished: finished >= 20,
            timeout=60,
            what="the first runs finished",
        )

        # The Celery worker (the sweep's runner) dies mid-work; commands are sent while it is gone.
        cluster.kill("worker")
        mark(f"worker SIGKILLed ({progress.finished()} invocations finished)")
        command_ids += [send(n) for n in next(batches)]
        mark(f"sent up to {len(command_ids)} commands without a worker")
        cluster.restart("worker")
        mark("worker started again")

        # A ws process dies and comes back on its port: its agents (the simulator's websockets,
        # two real agents' websockets and HTTP) reconnect, and find what was sent meanwhile.
        ws1_url = cluster.url("ws1").rstrip("/")
        ws1_agents = [agent for agent in real_agents if agent.server_url == ws1_url]
        cluster.kill("ws1")
        mark(f"ws1 SIGKILLed ({progress.finished()} invocations finished)")
        command_ids += [send(n) for n in next(batches)]
        mark(f"sent up to {len(command_ids)} commands without ws1")
        cluster.restart("ws1")
        mark("ws1 started again")
        for agent in ws1_agents:
            agent.wait_connected(2, timeout=60)
        mark("ws1's real agents reconnected")

        # A real agent dies in the middle of a run, and starts again. One on ws2: ws1's agents
        # are busy with what piled up while it was down, and a kill between a fetch and the
        # journal costs a lease (120 s) before the message comes back (correct, but slow).
        def someone_running() -> tuple[Agent, set[str]] | None:
            for agent in real_agents:
                if agent in ws1_agents:
                    continue
                if running := _running_ids(agent):
                    return agent, running
            return None

        victim, _ = wait_until(
            someone_running, timeout=60, every=0.05, what="a real agent running a command"
        )
        victim.kill()
        # What the journal says was running at death, and had no reply saved yet.
        running = _running_ids(victim)
        interrupted = {
            m for m in running if not (victim.state_dir / "outbox" / f"{m}.json").exists()
        }
        mark(f"{victim.name} SIGKILLed while running {sorted(running)}")
        victim.start()
        victim.wait_connected(timeout=60)
        mark(f"{victim.name} started again")

        for command_id in command_ids:
            commands.wait_until_done(command_id, timeout=SETTLE_TIMEOUT)
        mark("every command ended")
        _stop_simulator(simulator["process"])

    # --- What the record says, and what the nodes did. -----------------------------------
    invocations = _invocations(cluster.database_url, command_ids)
    summary = _summary(timeline, invocations, [commands.command(c) for c in command_ids])
    journals = _journals(simulator["journal"], real_agents)
    runs_of: dict[str, list[str]] = defaultdict(list)  # message id -> the nodes that ran it
    for node_id, message_id in journals:
        runs_of[message_id].append(node_id)
    by_message = {row["message_id"]: row for row in invocations}

    for command_id in command_ids:
        command = commands.command(command_id)
        assert command["status"] in TERMINAL, f"{command_id} is {command['status']}\n{summary}"
        assert command["target_count"] == TARGETS, summary
        assert command["completed_count"] == TARGETS, f"{command}\n{summary}"
    assert len(invocations) == COMMANDS * TARGETS, summary
    assert len({(r["command_id"], r["node_id"]) for r in invocations}) == COMMANDS * TARGETS
    open_ones = [r for r in invocations if r["status"] not in TERMINAL]
    assert not open_ones, f"invocations still open: {open_ones[:5]}\n{summary}"

    twice = {m: nodes for m, nodes in runs_of.items() if len(nodes) > 1}
    assert not twice, f"run more than once: {twice}\n{summary}"
    strays = [m for m in runs_of if m not in by_message]
    assert not strays, f"journaled ids that are no invocation of these commands: {strays}"
    for row in invocations:
        ran_on = runs_of.get(row["message_id"], [])
        if row["status"] == "Success" or row["message_id"] in running:
            assert ran_on == [row["node_id"]], f"{row} ran on {ran_on}\n{summary}"
        if row["status"] != "Success":
            # Only the killed agent's interrupted runs may end otherwise, and they say why.
            assert row["message_id"] in interrupted, f"unexpected end: {row}\n{summary}"
            assert (row["status"], row["node_id"]) == ("Failed", victim.node_id), summary
            assert INTERRUPTED in row["reason"], f"{row}\n{summary}"
    for message_id in interrupted:
        row = by_message[message_id]
        assert row["status"] == "Failed" and INTERRUPTED in row["reason"], f"{row}\n{summary}"
    assert interrupted, f"{victim.name} was running nothing when killed\n{summary}"

    for agent in real_agents:
        assert agent.process.poll() is None, agent.log_tail()
        assert "Traceback" not in agent.log_text(), agent.log_tail()
    report = json.loads(simulator["report"].read_text())
    assert report["registered"] == SIMULATED, report
    assert report["reconnects"] >= SIMULATED, report  # every virtual node lost ws1 once
    real_nodes = {agent.node_id for agent in real_agents}
    simulated_runs = [m for node_id, m in journals if node_id not in real_nodes]
    assert report["commands_started"] == len(simulated_runs), report
    print(summary)


# --- Helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _explained(explain: Callable[[], str]) -> Iterator[None]:
    """A failure inside (a wait that ran out) says where everything stood."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{explain()}") from None


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _activation(api: Api, limit: int, tags: dict[str, str]) -> dict[str, Any]:
    answer = api.request("POST", "/activations/", {"registration_limit": limit, "tags": tags})
    assert answer.status == 201, answer
    return answer.body


def _running_ids(agent: Agent) -> set[str]:
    """Message ids the agent journaled as started and not yet answered: running now."""
    path = agent.state_dir / "journal.log"
    started: dict[str, bool] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "S":
            started.setdefault(parts[2], False)
        elif len(parts) == 3 and parts[0] == "D":
            started[parts[2]] = True
    return {message_id for message_id, done in started.items() if not done}


class _Progress:
    def __init__(self, database_url: str, run: str) -> None:
        self.database_url = database_url
        self.run = run

    def finished(self) -> int:
        with psycopg.connect(self.database_url, connect_timeout=5) as db:
            row = db.execute(
                "SELECT count(*) FROM commands_invocation i "
                "JOIN commands_command c ON c.id = i.command_id "
                "WHERE c.comment LIKE %s AND i.finished_at IS NOT NULL",
                (f"chaos {self.run} #%",),
            ).fetchone()
        return int(row[0])


def _invocations(database_url: str, command_ids: list[str]) -> list[dict[str, Any]]:
    """Every invocation of the commands, with the message id no API shows."""
    keys = (
        "command_id", "node_id", "node_name", "message_id", "status", "status_details", "reason",
        "dispatched_at", "started_at", "finished_at", "delivery_count",
    )  # fmt: skip
    with psycopg.connect(database_url, connect_timeout=5) as db:
        rows = db.execute(
            "SELECT c.command_id, i.node_id, i.node_name, i.message_id::text, i.status, "
            "i.status_details, i.reason, i.dispatched_at, i.started_at, i.finished_at, "
            "m.delivery_count FROM commands_invocation i "
            "JOIN commands_command c ON c.id = i.command_id "
            "LEFT JOIN fleet_nodemessage m ON m.message_id = i.message_id "
            "WHERE c.command_id = ANY(%s)",
            (command_ids,),
        ).fetchall()
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _journals(simulated: Path, agents: list[Agent]) -> list[tuple[str, str]]:
    """(node id, message id) for every run any node started."""
    runs = []
    for line in simulated.read_text().splitlines() if simulated.exists() else []:
        node_id, message_id = line.split()
        runs.append((node_id, message_id))
    for agent in agents:
        runs += [(agent.node_id, message_id) for message_id in agent.journal_started()]
    return runs


def _summary(
    timeline: list[str], invocations: list[dict[str, Any]], commands: list[dict[str, Any]]
) -> str:
    statuses = Counter((row["status"], row["status_details"]) for row in invocations)
    lines = ["timeline:", *(f"  {entry}" for entry in timeline), "invocations by status:"]
    lines += [f"  {status}/{details}: {n}" for (status, details), n in statuses.most_common()]
    lines.append("commands:")
    lines += [
        f"  {c['command_id']} {c['status']}/{c['status_details']} "
        f"completed {c['completed_count']}/{c['target_count']} errors {c['error_count']}"
        for c in commands
    ]
    # The slowest to end say where time went: a lease that ran out (delivery_count 2), a
    # run that waited for its node's next heartbeat…
    sent = min((r["dispatched_at"] for r in invocations if r["dispatched_at"]), default=None)

    def at(moment: Any) -> str:
        return "-" if moment is None or sent is None else f"{(moment - sent).total_seconds():.1f}s"

    ended = sorted((r for r in invocations if r["finished_at"]), key=lambda r: r["finished_at"])
    redelivered = sum(1 for r in invocations if (r["delivery_count"] or 0) > 1)
    lines.append(f"messages delivered more than once: {redelivered}")
    lines.append("last to end (times from the first dispatch):")
    lines += [
        f"  {r['command_id'][:8]} {r['node_name']} {r['status']} dispatched "
        f"{at(r['dispatched_at'])} started {at(r['started_at'])} ended {at(r['finished_at'])} "
        f"deliveries {r['delivery_count']}"
        for r in ended[-8:]
    ]
    odd = [row for row in invocations if row["status"] != "Success"]
    lines.append(f"not Success ({len(odd)}):")
    lines += [
        f"  {r['command_id'][:8]} {r['node_id']} {r['status']}/{r['status_details']}: {r['reason']}"
        for r in odd[:20]
    ]
    return "\n".join(lines)
