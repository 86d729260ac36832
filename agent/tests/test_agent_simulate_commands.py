"""Run Command on the simulator's virtual nodes: a no-op that succeeds, can be cancelled, and
is journaled so a chaos test can prove no invocation ran twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_fake_server import ACTIVATION_CODE, ACTIVATION_ID, FakeBosun
from agent_harness import command_payload, shell_step

from bosun_agent import protocol
from bosun_agent.simulate import Simulation, build_parser


def simulation(server: FakeBosun, count: int, **options: object) -> Simulation:
    return Simulation(
        server.url,
        count,
        activation_id=ACTIVATION_ID,
        activation_code=ACTIVATION_CODE,
        ramp=1000,
        seed=1,
        **options,  # type: ignore[arg-type]
    )


async def all_connected(sim: Simulation) -> None:
    while sim.report.seconds_to_all_connected is None:
        await asyncio.sleep(0.05)


async def replied(server: FakeBosun, message_ids: list[str]) -> None:
    while any(server.message(m).replies == [] for m in message_ids):
        await asyncio.sleep(0.05)


def test_virtual_nodes_answer_run_command_with_a_no_op_success_and_journal_each_run(
    fast: FakeBosun, tmp_path: Path
) -> None:
    journal = tmp_path / "runs.log"
    command = command_payload(shell_step("one", "rm -rf /"), shell_step("two", "echo hi"))

    async def scenario() -> list[tuple[str, str]]:
        sim = simulation(fast, 5, journal_file=journal)
        task = asyncio.create_task(sim.run(duration=30))
        await all_connected(sim)
        sent = []
        for node_id in list(fast.nodes):
            message_id = await asyncio.to_thread(
                fast.enqueue, node_id, protocol.MESSAGE_RUN_COMMAND, command
            )
            sent.append((node_id, message_id))
        await asyncio.wait_for(replied(fast, [m for _, m in sent]), 10)
        sim.stop()
        report = await task
        assert report.commands_started == 5 and report.commands_cancelled == 0
        return sent

    sent = asyncio.run(scenario())
    for _, message_id in sent:
        (reply,) = fast.message(message_id).replies
        assert reply["status"] == "Success"
        result = reply["result"]
        assert (result["outcome"], result["response_code"]) == ("Success", 0)
        assert [s["status"] for s in result["steps"]] == ["Success", "Success"]
        assert all(
            step[stream] == {"length": 0, "dropped_bytes": 0, "offset": 0, "data": ""}
            for step in result["steps"]
            for stream in ("stdout", "stderr")
        )
        assert fast.message(message_id).uploads == []
    lines = journal.read_text().splitlines()
    assert sorted(lines) == sorted(f"{node_id} {message_id}" for node_id, message_id in sent)
    routes = {route for route, _ in fast.requests}
    assert "output" not in routes and "secure-parameters" not in routes


def test_a_delayed_virtual_run_ends_cancelled_when_a_cancel_command_comes(
    fast: FakeBosun,
) -> None:
    async def scenario() -> None:
        sim = simulation(fast, 2, command_delay=30)
        task = asyncio.create_task(sim.run(duration=30))
        await all_connected(sim)
        busy, idle = list(fast.nodes)
        command = command_payload(shell_step("s", "sleep 9"))
        run = await asyncio.to_thread(fast.enqueue, busy, protocol.MESSAGE_RUN_COMMAND, command)
        while fast.message(run).state != "acked":
            await asyncio.sleep(0.05)
        cancel = await asyncio.to_thread(
            fast.enqueue, busy, protocol.MESSAGE_CANCEL_COMMAND, {"message_id": run}
        )
        elsewhere = await asyncio.to_thread(
            fast.enqueue, idle, protocol.MESSAGE_CANCEL_COMMAND, {"message_id": run}
        )
        await asyncio.wait_for(replied(fast, [run, cancel, elsewhere]), 10)
        sim.stop()
        report = await task
        assert report.commands_started == 1 and report.commands_cancelled == 1
        assert fast.message(cancel).replies[0]["result"] == {"cancelled": True}
        # Another node was never running it: cancels are per node.
        assert fast.message(elsewhere).replies[0]["result"] == {"cancelled": False}
        (reply,) = fast.message(run).replies
        assert reply["status"] == "Failed"
        assert reply["result"]["outcome"] == "Cancelled"
        assert reply["result"]["response_code"] == protocol.KILLED_RESPONSE_CODE
        assert [s["status"] for s in reply["result"]["steps"]] == ["Cancelled"]

    asyncio.run(scenario())


def test_the_command_line_takes_a_command_delay_and_a_journal_file() -> None:
    base = ["--url", "http://a:1", "--count", "1"]
    args = build_parser().parse_args([*base, "--command-delay", "2.5", "--journal-file", "j.log"])
    assert (args.command_delay, args.journal_file) == (2.5, Path("j.log"))
    defaults = build_parser().parse_args(base)
    assert (defaults.command_delay, defaults.journal_file) == (0.0, None)
