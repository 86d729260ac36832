"""The simulator against a live server: 50 virtual agents register, connect and answer.

`python -m bosun_agent.simulate` is what every scale benchmark runs; here it proves, at a
size the test suite affords, that its virtual nodes speak the protocol the server speaks.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
from pathlib import Path

from tests.e2e.support import Stack, clean_env, wait_until
from tests.support.processes import PYTHON, ROOT

COUNT = 50
# A cap only: the test stops the simulator (SIGTERM, as Ctrl-C) as soon as it has seen enough.
MAX_DURATION_SECONDS = 120


def test_fifty_simulated_agents_register_connect_and_answer_a_message(stack: Stack, tmp_path: Path):
    run = secrets.token_hex(3)
    activation = stack.activation(
        registration_limit=COUNT, description="e2e simulator", tags={"Sim": run}
    )
    report_path = tmp_path / "report.json"
    log_path = tmp_path / "simulate.log"
    argv = [
        PYTHON, "-m", "bosun_agent.simulate",
        "--url", stack.url,
        "--count", str(COUNT),
        "--activation-id", activation["id"],
        "--name-prefix", f"sim-{run}-",
        "--duration", str(MAX_DURATION_SECONDS),
        "--json-report", str(report_path),
        "--progress", "1",
    ]  # fmt: skip
    env = clean_env(BOSUN_AGENT_ACTIVATION_CODE=activation["activation_code"])
    with log_path.open("wb") as log:
        simulator = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        online = wait_until(
            lambda: stack.nodes(tag=f"Sim={run}", status="Online"),
            lambda listing: listing["count"] == COUNT,
            timeout=60,
            every=0.5,
            what=f"{COUNT} simulated nodes Online",
        )
        wait_until(
            lambda: log_path.read_text(errors="replace"),
            lambda text: f"connected {COUNT} " in text,
            timeout=30,
            every=0.5,
            what=f"all {COUNT} websockets open",
        )
        node = stack.node(online["results"][0]["id"])
        stack.refresh_facts(node["id"])
        answered = wait_until(
            lambda: stack.node(node["id"]),
            lambda detail: detail["facts_updated_at"] != node["facts_updated_at"],
            timeout=15,
            what=f"{node['id']}'s answer",
        )
    finally:
        simulator.send_signal(signal.SIGTERM)
        try:
            code = simulator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            simulator.kill()
            code = simulator.wait()

    log = log_path.read_text(errors="replace")
    assert code == 0, log[-3000:]
    report = json.loads(report_path.read_text())
    assert report["registered"] == COUNT, report
    assert report["registration_failed"] == 0, report
    assert report["max_connected"] == COUNT, report
    assert report["seconds_to_all_registered"] is not None, report
    assert report["seconds_to_all_connected"] is not None, report
    assert report["messages_answered"] >= 1, report
    assert report["stopped"] == 0, report
    assert report["errors"] == {}, report
    assert "Traceback" not in log
    assert {n["tags"]["Sim"] for n in online["results"]} == {run}
    assert {n["platform_name"] for n in online["results"]} == {"Bosun Simulated Linux"}
    assert sorted(n["name"] for n in online["results"]) == [
        f"sim-{run}-{index:05d}" for index in range(1, COUNT + 1)
    ]
    assert answered["facts"]["hostname"] == node["name"]
    (message,) = stack.messages_of(node["id"])
    assert message["kind"] == "RefreshHostFacts"
    assert message["state"] == "succeeded"
