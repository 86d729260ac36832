"""Real agents against the production roles: gunicorn `web`, two daphne `ws`, Celery, Redis.

An agent's websocket lands on one ws process while the request that gives it work arrives at
the web process; only the Redis channel layer carries the wake-up between them. Two real
`bosun-agent`s (one per ws process; the CLI takes one URL, and daphne serves the agent's HTTP
too) and a simulated fleet (HTTP through the WSGI web role, websockets through a ws role)
must each answer a message asked for on the web role, within the wake-up's time.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import Agent, Api, clean_env, parse_time, wait_until
from tests.support.cluster import ADMIN_PASSWORD, Browser, Cluster, bosun_cluster
from tests.support.processes import PYTHON, ROOT

pytestmark = pytest.mark.integration

SIMULATED = 10
# Commit, Redis, the ws process, the agent's fetch, ack and reply: under a second each when
# idle. Three answers within this bound on a busy runner still cannot have waited for the
# agents' next heartbeat (60 s): the wake-up crossed from the web process to the ws processes.
ANSWER_WITHIN_SECONDS = 10.0


@pytest.fixture(scope="module")
def cluster(service_urls) -> Iterator[Cluster]:
    with bosun_cluster(**service_urls, ws_count=2) as running_cluster:
        yield running_cluster


@pytest.fixture
def agents(cluster: Cluster, tmp_path: Path) -> Iterator[list[Agent]]:
    made = [Agent(cluster.url(ws).rstrip("/"), tmp_path, f"it-{ws}") for ws in ("ws1", "ws2")]
    try:
        yield made
    finally:
        for agent in made:
            agent.stop()


def test_agents_on_every_ws_process_answer_work_asked_for_on_the_web_process(
    cluster: Cluster, agents: list[Agent], tmp_path: Path
):
    web = cluster.url("web").rstrip("/")
    api = Api.for_admin(web, cluster.env)
    admin = Browser(web)
    admin.log_in("admin", ADMIN_PASSWORD)
    activation = api.request("POST", "/activations/", {"registration_limit": 2}).body
    for agent in agents:
        agent.registered(activation)
        agent.start()
    for agent in agents:
        agent.wait_connected()

    run = secrets.token_hex(3)
    simulated = api.request(
        "POST", "/activations/", {"registration_limit": SIMULATED, "tags": {"Sim": run}}
    ).body
    simulator_log = tmp_path / "simulate.log"
    argv = [
        PYTHON, "-m", "bosun_agent.simulate",
        "--url", web,
        "--ws-url", cluster.url("ws2").rstrip("/"),
        "--count", str(SIMULATED),
        "--activation-id", simulated["id"],
        "--name-prefix", f"it-sim-{run}-",
        "--duration", "120",
        "--json-report", str(tmp_path / "report.json"),
        "--progress", "1",
    ]  # fmt: skip
    env = clean_env(BOSUN_AGENT_ACTIVATION_CODE=simulated["activation_code"])
    with simulator_log.open("wb") as log:
        simulator = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(
            lambda: simulator_log.read_text(errors="replace"),
            lambda text: f"connected {SIMULATED} " in text,
            timeout=60,
            every=0.5,
            what=f"{SIMULATED} simulated agents connected",
        )
        listing = api.request("GET", f"/nodes/?tag=Sim={run}&status=Online").body
        assert listing["count"] == SIMULATED, listing
        targets = [agent.node_id for agent in agents] + [listing["results"][0]["id"]]

        before = {node_id: _node(api, node_id)["facts_updated_at"] for node_id in targets}
        asked = time.monotonic()
        for node_id in targets:
            reply = admin.post(f"/fleet/nodes/{node_id}/refresh-facts/")
            assert reply.status == 302, (reply.status, reply.text[:300])
        for node_id in targets:
            wait_until(
                lambda node_id=node_id: _node(api, node_id)["facts_updated_at"],
                lambda updated, node_id=node_id: updated != before[node_id],
                timeout=30,
                what=f"{node_id}'s refreshed facts",
            )
        took = time.monotonic() - asked
    finally:
        simulator.send_signal(signal.SIGTERM)
        try:
            simulator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.wait()

    assert took < ANSWER_WITHIN_SECONDS, f"answers took {took:.1f}s"
    for node_id in targets:
        node = _node(api, node_id)
        assert node["status"] == "Online"
        assert parse_time(node["facts_updated_at"]) > parse_time(before[node_id])
    for agent in agents:
        assert agent.process.poll() is None, agent.log_tail()
        assert "Traceback" not in agent.log_text()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["registered"] == SIMULATED, report
    assert report["max_connected"] == SIMULATED, report
    assert report["messages_answered"] >= 1, report
    assert report["errors"] == {}, report


def _node(api: Api, node_id: str) -> dict:
    answer = api.request("GET", f"/nodes/{node_id}/")
    assert answer.status == 200, answer
    return answer.body
