"""The simulator: many virtual nodes in one process, speaking the real protocol."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from pathlib import Path

from agent_fake_server import ACTIVATION_CODE, ACTIVATION_ID, FakeBosun, free_port

from bosun_agent import protocol
from bosun_agent.simulate import Simulation, build_parser, run_simulation


def test_fifty_virtual_agents_register_connect_heartbeat_and_answer(
    fast: FakeBosun, tmp_path: Path
) -> None:
    state_file = tmp_path / "sim.json"

    async def scenario() -> None:
        simulation = Simulation(
            fast.url,
            50,
            activation_id=ACTIVATION_ID,
            activation_code=ACTIVATION_CODE,
            ramp=500,
            state_file=state_file,
            seed=1,
        )
        task = asyncio.create_task(simulation.run(duration=30))
        while simulation.report.seconds_to_all_connected is None:
            await asyncio.sleep(0.05)
        node_ids = list(fast.nodes)
        message_ids = [
            await asyncio.to_thread(fast.enqueue, node_id, protocol.MESSAGE_PING)
            for node_id in node_ids[:10]
        ]
        while any(fast.message(m).state != "succeeded" for m in message_ids):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a few heartbeats each
        simulation.stop()
        report = await task
        assert report.registered == 50 and report.reused == 0
        assert report.connected == 50
        assert report.messages_answered == 10
        assert report.heartbeats_ok >= 100 and report.heartbeats_failed == 0
        assert report.seconds_to_all_registered is not None
        assert report.registration_failed == 0

    asyncio.run(scenario())
    hostnames = sorted(node.facts["hostname"] for node in fast.nodes.values())
    assert hostnames[0] == "sim-00001" and hostnames[-1] == "sim-00050"
    assert len({node.fingerprint for node in fast.nodes.values()}) == 50
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600


def test_a_second_run_with_the_state_file_reconnects_the_same_nodes(
    fast: FakeBosun, tmp_path: Path
) -> None:
    state_file = tmp_path / "sim.json"
    options = {
        "activation_id": ACTIVATION_ID,
        "activation_code": ACTIVATION_CODE,
        "ramp": 1000,
        "state_file": state_file,
    }
    first = asyncio.run(run_simulation(fast.url, 20, duration=1.5, **options))
    assert first.registered == 20
    nodes_after_first = set(fast.nodes)

    # No activation this time: every identity comes from the file.
    second = asyncio.run(
        run_simulation(fast.url, 20, duration=1.5, ramp=1000, state_file=state_file)
    )
    assert (second.registered, second.reused) == (0, 20)
    assert second.connected == 20
    assert set(fast.nodes) == nodes_after_first
    assert second.heartbeats_failed == 0


def test_the_simulated_fleet_recovers_from_a_server_restart(fast: FakeBosun) -> None:
    async def scenario() -> None:
        simulation = Simulation(
            fast.url, 30, activation_id=ACTIVATION_ID, activation_code=ACTIVATION_CODE, ramp=1000
        )
        task = asyncio.create_task(simulation.run(duration=30))
        while simulation.report.seconds_to_all_connected is None:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(fast.stop)
        while simulation.stats.websockets_connected:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(fast.start)
        while not simulation.report.recoveries:
            await asyncio.sleep(0.05)
        simulation.stop()
        report = await task
        assert report.reconnects == 30
        assert report.recoveries[0] < 5

    asyncio.run(scenario())


def test_the_command_line_writes_a_json_report(fast: FakeBosun, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bosun_agent.simulate",
            "--url",
            fast.url,
            "--count",
            "5",
            "--activation-id",
            ACTIVATION_ID,
            "--activation-code",
            ACTIVATION_CODE,
            "--duration",
            "2",
            "--json-report",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["registered"] == 5
    assert report["connected"] == 5
    assert report["seconds_to_all_connected"] is not None


def test_the_websockets_go_to_the_websocket_url_when_one_is_given(fast: FakeBosun) -> None:
    """--ws-url: nodes register and heartbeat at --url, and open websockets only there."""
    dead = f"ws://127.0.0.1:{free_port()}"
    options = {"activation_id": ACTIVATION_ID, "activation_code": ACTIVATION_CODE, "ramp": 1000}
    elsewhere = asyncio.run(run_simulation(fast.url, 5, duration=1.5, ws_url=dead, **options))
    assert elsewhere.registered == 5 and elsewhere.heartbeats_ok >= 5
    assert elsewhere.max_connected == 0
    beside = asyncio.run(run_simulation(fast.url, 5, duration=1.5, ws_url=fast.url, **options))
    assert beside.connected == 5


def test_the_command_line_takes_a_websocket_url() -> None:
    args = build_parser().parse_args(
        ["--url", "http://a:1", "--count", "1", "--ws-url", "ws://b:2"]
    )
    assert args.ws_url == "ws://b:2"
    assert build_parser().parse_args(["--url", "http://a:1", "--count", "1"]).ws_url is None


def test_without_an_activation_new_nodes_cannot_be_made(fast: FakeBosun) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bosun_agent.simulate", "--url", fast.url, "--count", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "3 nodes need registering: give an activation id and code" in done.stderr
