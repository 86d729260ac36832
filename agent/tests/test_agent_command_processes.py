"""No step outlives its run: agent stops, agent crashes, and the groups a crash leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_fake_server import ACTIVATION_CODE, ACTIVATION_ID, FakeBosun, eventually, wait_until
from agent_harness import (
    command_handlers,
    command_payload,
    process_gone,
    register,
    running_agent,
    shell_step,
)

from bosun_agent import commands, process_groups, protocol
from bosun_agent.cli import main
from bosun_agent.handlers import HandlerContext, RunningMessages
from bosun_agent.messages import INTERRUPTED
from bosun_agent.process_groups import RUN_MARKER_ENV, GroupRecords
from bosun_agent.statedir import StateDir


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts in sessions of their own; whatever is left is killed after."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def session(spawned: list[subprocess.Popen[bytes]], script: str, marker: str = "") -> int:
    env = {**os.environ, RUN_MARKER_ENV: marker} if marker else None
    process = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True, env=env)
    spawned.append(process)
    return process.pid


def kill_leftovers(pid_file: Path) -> None:
    if pid_file.exists():
        for pid in pid_file.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def test_an_agent_killed_mid_run_leaves_no_orphan_once_it_starts_again(
    server: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    argv = ["register", "--url", server.url, "--activation-id", ACTIVATION_ID]
    assert main([*argv, "--activation-code", ACTIVATION_CODE, "--state-dir", str(state_dir)]) == 0
    node = server.only_node()
    pids = tmp_path / "pids"
    log = (tmp_path / "agent.log").open("w")

    def start_agent() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "bosun_agent", "run", "--state-dir", str(state_dir)]
        return subprocess.Popen(command, stdout=log, stderr=log)

    agent = start_agent()
    try:
        wait_until(lambda: server.connected(node.node_id) == 1)
        command = command_payload(shell_step("long", "sleep 300 &", f"echo $$ $! > {pids}", "wait"))
        message_id = server.enqueue(node.node_id, protocol.MESSAGE_RUN_COMMAND, command)
        wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 2)
        wait_until(lambda: any((state_dir / "processes").glob("*.json")))
        agent.kill()  # a crash: no chance to end anything
        agent.wait()
        shell, child = (int(pid) for pid in pids.read_text().split())
        time.sleep(0.2)
        assert not process_gone(shell) and not process_gone(child), "the crash itself ended the run"
        assert len(list((state_dir / "processes").iterdir())) == 1
        assert (state_dir / "runs" / message_id).exists()

        agent = start_agent()
        wait_until(lambda: process_gone(shell) and process_gone(child), timeout=15)
        wait_until(lambda: server.message(message_id).replies != [], timeout=15)
    finally:
        agent.terminate()
        agent.wait(10)
        log.close()
        kill_leftovers(pids)
    assert server.message(message_id).replies == [
        {"status": "Failed", "result": {"error": INTERRUPTED}}
    ]
    assert list((state_dir / "processes").iterdir()) == []
    assert list((state_dir / "runs").iterdir()) == []  # the script with its secrets went too


def test_stopping_the_agent_ends_a_running_step_and_answers_that_it_stopped(
    fast: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"

    async def scenario() -> str:
        state = StateDir(state_dir, create=True)
        identity = await register(fast, state)
        async with running_agent(fast, state, command_handlers()) as agent:
            step = shell_step("long", "sleep 300 &", f"echo $! > {pids}", "wait")
            command = command_payload(step)
            message_id = fast.enqueue(identity.node_id, protocol.MESSAGE_RUN_COMMAND, command)
            await eventually(lambda: pids.exists() and pids.read_text().strip() != "")
            await agent.stop()
        return message_id

    try:
        message_id = asyncio.run(scenario())
        assert process_gone(int(pids.read_text()))
    finally:
        kill_leftovers(pids)
    assert fast.message(message_id).replies == [
        {
            "status": "Failed",
            "result": {"error": "the agent was stopped while running this message"},
        }
    ]
    assert list((state_dir / "processes").iterdir()) == []


def test_a_group_the_crash_left_unrecorded_is_found_by_its_run_marker(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    """The crash came after the step started and before its group was recorded."""
    (tmp_path / "runs" / "m-1").mkdir(parents=True)
    marked = session(spawned, "sleep 300", marker="m-1")
    unrelated = session(spawned, "sleep 300", marker="m-2")
    context = HandlerContext("mi-1", call=no_calls, running=RunningMessages(), state_dir=tmp_path)
    asyncio.run(commands.end_interrupted_runs(context))
    spawned[0].wait(5)
    assert spawned[1].poll() is None, f"{unrelated} belongs to no interrupted run"
    assert marked and list((tmp_path / "runs").iterdir()) == []


async def no_calls(path: str, body: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("no call expected")


def write_record(directory: Path, **fields: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    record = {"message_id": "m-1", "step": 0, "boot_id": process_groups.boot_id(), **fields}
    (directory / f"{record['message_id']}.0.json").write_text(json.dumps(record))


def test_a_recorded_group_whose_leader_is_the_same_process_is_ended(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    pid = session(spawned, "sleep 300")
    write_record(tmp_path, pgid=pid, leader_start=process_groups.start_time(pid))
    assert asyncio.run(GroupRecords(tmp_path).end_leftovers()) == [pid]
    spawned[0].wait(5)
    assert list(tmp_path.iterdir()) == []


def test_a_group_whose_leader_exited_is_ended_by_the_run_marker_of_its_members(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    pid_file = tmp_path / "child"
    leader = session(spawned, f"sleep 300 & echo $! > {pid_file}", marker="m-1")
    spawned[0].wait(5)  # the leader is gone, its child is still in the group
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    child = int(pid_file.read_text())
    try:
        write_record(tmp_path / "records", pgid=leader, leader_start="1")
        assert asyncio.run(GroupRecords(tmp_path / "records").end_leftovers()) == [leader]
        wait_until(lambda: process_gone(child))
    finally:
        kill_leftovers(pid_file)


@pytest.mark.parametrize("difference", ["another boot", "another leader"])
def test_a_recorded_id_now_used_by_another_group_is_left_alone(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]], difference: str
) -> None:
    pid = session(spawned, "sleep 300")  # no run marker: not a step's process
    start = process_groups.start_time(pid)
    if difference == "another boot":
        write_record(tmp_path, pgid=pid, leader_start=start, boot_id="a-boot-long-ago")
    else:
        write_record(tmp_path, pgid=pid, leader_start=str(int(start) - 100))
    assert asyncio.run(GroupRecords(tmp_path).end_leftovers()) == []
    assert spawned[0].poll() is None
    assert list(tmp_path.iterdir()) == []  # the record is spent either way


def test_a_torn_record_is_dropped_without_acting_on_it(tmp_path: Path) -> None:
    (tmp_path / "m-1.0.json").write_text('{"pgid": 12')
    assert asyncio.run(GroupRecords(tmp_path).end_leftovers()) == []
    assert list(tmp_path.iterdir()) == []
