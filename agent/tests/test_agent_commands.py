"""Run Command on this host: real shells run by the real runtime against the fake server."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable

import pytest
from agent_fake_server import FakeBosun, eventually
from agent_harness import (
    command_handlers,
    command_payload,
    process_gone,
    register,
    running_agent,
    shell_step,
)

from bosun_agent import commands, process_groups, protocol
from bosun_agent.state import MemoryState
from bosun_agent.statedir import StateDir

SECRET = "hunter2-s3cret"
During = Callable[[str, str], Awaitable[None]]


async def run_command(
    server: FakeBosun,
    state_dir: Path,
    command: dict[str, Any],
    *,
    during: During | None = None,
    timeout: float = 20,
) -> tuple[str, dict[str, Any]]:
    """Register, start the agent, send one RunCommand; its id and the reply it got."""
    state = StateDir(state_dir, create=True)
    identity = await register(server, state)
    async with running_agent(server, state, command_handlers()):
        message_id = server.enqueue(identity.node_id, protocol.MESSAGE_RUN_COMMAND, command)
        if during is not None:
            await during(identity.node_id, message_id)
        await eventually(lambda: server.message(message_id).replies != [], timeout=timeout)
    return message_id, server.message(message_id).replies[0]


def test_a_shell_script_runs_and_its_output_and_exit_code_come_back(
    fast: FakeBosun, state_dir: Path
) -> None:
    command = command_payload(shell_step("runShellScript", "echo hello", "echo oops >&2", "exit 3"))
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    assert reply["status"] == "Failed"
    result = reply["result"]
    assert (result["command_id"], result["outcome"], result["response_code"]) == (
        command["command_id"],
        "Failed",
        3,
    )
    (step,) = result["steps"]
    assert step["name"] == "runShellScript" and step["action"] == "aws:runShellScript"
    assert (step["status"], step["response_code"]) == ("Failed", 3)
    assert step["started_at"] <= step["finished_at"]
    assert step["stdout"]["length"] == 6 and step["stdout"]["dropped_bytes"] == 0
    assert fast.command_output(message_id, 0, "stdout") == "hello\n"
    assert fast.command_output(message_id, 0, "stderr") == "oops\n"


def test_a_successful_run_replies_success_with_every_field_of_the_protocol(
    fast: FakeBosun, state_dir: Path
) -> None:
    command = command_payload(shell_step("hi", "echo hello"))
    _, reply = asyncio.run(run_command(fast, state_dir, command))
    assert reply["status"] == "Success"
    assert set(reply["result"]) == {"command_id", "outcome", "response_code", "steps"}
    (step,) = reply["result"]["steps"]
    assert set(step) == {
        "name",
        "action",
        "status",
        "status_details",
        "response_code",
        "started_at",
        "finished_at",
        "stdout",
        "stderr",
    }
    assert (step["status"], step["status_details"], step["response_code"]) == ("Success", "", 0)
    assert step["stdout"]["length"] == 6
    assert set(step["stdout"]) == {"length", "dropped_bytes", "offset", "data"}
    assert step["stderr"] == {"length": 0, "dropped_bytes": 0, "offset": 0, "data": ""}


def test_steps_run_in_order_and_those_after_a_failing_step_are_skipped(
    fast: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "third-ran"
    command = command_payload(
        shell_step("first", "echo one"),
        shell_step("second", "echo two", "exit 2"),
        shell_step("third", f"touch {marker}"),
    )
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    steps = reply["result"]["steps"]
    assert [s["status"] for s in steps] == ["Success", "Failed", "Skipped"]
    assert reply["result"]["response_code"] == 2  # the last step that ran
    assert [fast.command_output(message_id, i, "stdout") for i in range(3)] == [
        "one\n",
        "two\n",
        "",
    ]
    assert not marker.exists()


def test_a_step_whose_precondition_fails_is_skipped_and_its_stdout_says_why(
    fast: FakeBosun, state_dir: Path
) -> None:
    windows_only = {
        "name": "windowsOnly",
        "action": protocol.ACTION_RUN_POWERSHELL_SCRIPT,
        "precondition": {"StringEquals": ["platformType", "Windows"]},
        "inputs": {"runCommand": ["Write-Output hi"]},
    }
    linux = shell_step("linux", "echo linux")
    linux["precondition"] = {"StringEquals": ["platformType", "Linux"]}
    command = command_payload(windows_only, linux)
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    assert reply["status"] == "Success"
    assert [s["status"] for s in reply["result"]["steps"]] == ["Skipped", "Success"]
    assert fast.command_output(message_id, 0, "stdout") == (
        'Step windowsOnly skipped: its precondition {"StringEquals": ["platformType", '
        '"Windows"]} is false on Linux.\n'
    )
    assert fast.command_output(message_id, 1, "stdout") == "linux\n"


def test_powershell_is_skipped_where_none_is_installed_and_an_unknown_action_fails(
    fast: FakeBosun, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "POWERSHELLS", ("no-such-powershell-here",))
    pwsh = {
        "name": "ps",
        "action": protocol.ACTION_RUN_POWERSHELL_SCRIPT,
        "inputs": {"runCommand": ["Write-Output hi"]},
    }
    unknown = {"name": "odd", "action": "aws:runDocument", "inputs": {}}
    message_id, reply = asyncio.run(run_command(fast, state_dir, command_payload(pwsh, unknown)))
    ps_step, odd_step = reply["result"]["steps"]
    assert ps_step["status"] == "Skipped"
    assert "no pwsh or powershell is installed" in fast.command_output(message_id, 0, "stdout")
    assert odd_step["status"] == "Failed"
    assert odd_step["status_details"] == "this agent does not know the action aws:runDocument"
    assert reply["result"]["outcome"] == "Failed"


def test_refresh_host_facts_reports_the_facts_in_its_step(fast: FakeBosun, state_dir: Path) -> None:
    step = {"name": "facts", "action": protocol.ACTION_REFRESH_HOST_FACTS, "inputs": {}}
    message_id, reply = asyncio.run(run_command(fast, state_dir, command_payload(step)))
    (result,) = reply["result"]["steps"]
    assert result["status"] == "Success"
    assert result["facts"]["hostname"] == "web-1"
    summary = fast.command_output(message_id, 0, "stdout")
    assert summary.startswith("web-1: Debian GNU/Linux 12 (x86_64)") and summary.count("\n") == 1


def test_timeouts_given_as_strings_by_document_parameters_are_honoured(
    fast: FakeBosun, state_dir: Path
) -> None:
    step = shell_step("slow", "sleep 30", timeoutSeconds="1")
    command = command_payload(step, execution_timeout="60")
    _, reply = asyncio.run(run_command(fast, state_dir, command))
    assert reply["result"]["steps"][0]["status_details"] == "timed out after 1 s (timeoutSeconds)"


def test_a_background_process_holding_the_output_open_does_not_hold_the_step(
    fast: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    command = command_payload(shell_step("daemon", "sleep 300 &", f"echo $! > {pids}", "echo left"))
    started = time.monotonic()
    try:
        message_id, reply = asyncio.run(run_command(fast, state_dir, command))
        assert time.monotonic() - started < 10
        assert reply["result"]["steps"][0]["status"] == "Success"
        assert fast.command_output(message_id, 0, "stdout") == "left\n"
        assert not process_gone(int(pids.read_text()))  # a step's own daemon is its business
    finally:
        os.kill(int(pids.read_text()), signal.SIGKILL)


def test_a_step_timeout_kills_the_whole_process_group_even_what_ignores_sigterm(
    fast: FakeBosun, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_groups, "KILL_GRACE_SECONDS", 0.5)
    pids = tmp_path / "pids"
    # The shell and its child ignore SIGTERM (an ignored signal stays ignored across exec).
    script = shell_step(
        "stubborn",
        "trap '' TERM",
        "sleep 300 &",
        f"echo $$ $! > {pids}",
        "echo started",
        "wait",
        timeoutSeconds=1,
    )
    started = time.monotonic()
    message_id, reply = asyncio.run(run_command(fast, state_dir, command_payload(script)))
    elapsed = time.monotonic() - started
    result = reply["result"]
    assert (result["outcome"], result["response_code"]) == ("TimedOut", -1)
    (step,) = result["steps"]
    assert (step["status"], step["response_code"]) == ("TimedOut", -1)
    assert step["status_details"] == "timed out after 1 s (timeoutSeconds)"
    assert fast.command_output(message_id, 0, "stdout") == "started\n"
    shell, child = (int(pid) for pid in pids.read_text().split())
    assert process_gone(shell) and process_gone(child)
    assert elapsed < 10
    assert list((state_dir / "processes").iterdir()) == []


def test_the_execution_timeout_ends_a_step_whose_own_timeout_is_longer(
    fast: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    command = command_payload(
        shell_step("slow", "sleep 300 &", f"echo $! > {pids}", "wait", timeoutSeconds=600),
        shell_step("after", "echo never"),
        execution_timeout=1,
    )
    _, reply = asyncio.run(run_command(fast, state_dir, command))
    slow, after = reply["result"]["steps"]
    assert slow["status"] == "TimedOut"
    assert slow["status_details"] == "the execution timeout (1 s) ended"
    assert after["status"] == "Skipped"
    assert reply["result"]["outcome"] == "TimedOut"
    assert process_gone(int(pids.read_text()))


def test_a_cancel_command_ends_the_running_run_as_cancelled(
    fast: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    cancel_ids: list[str] = []

    async def cancel_once_started(node_id: str, message_id: str) -> None:
        await eventually(lambda: pids.exists() and pids.read_text().strip() != "")
        cancel_ids.append(
            fast.enqueue(node_id, protocol.MESSAGE_CANCEL_COMMAND, {"message_id": message_id})
        )
        await eventually(lambda: fast.message(cancel_ids[0]).replies != [])

    command = command_payload(
        shell_step("long", "sleep 300 &", f"echo $! > {pids}", "wait"),
        shell_step("next", "echo never"),
    )
    started = time.monotonic()
    _, reply = asyncio.run(run_command(fast, state_dir, command, during=cancel_once_started))
    assert time.monotonic() - started < 10
    assert fast.message(cancel_ids[0]).replies == [
        {"status": "Success", "result": {"cancelled": True}}
    ]
    assert reply["status"] == "Failed"
    result = reply["result"]
    assert (result["outcome"], result["response_code"]) == ("Cancelled", -1)
    assert [s["status"] for s in result["steps"]] == ["Cancelled", "Cancelled"]
    assert process_gone(int(pids.read_text()))


def test_a_cancel_for_a_run_that_is_not_running_here_says_so(fast: FakeBosun) -> None:
    async def scenario() -> None:
        state = MemoryState()
        identity = await register(fast, state)
        async with running_agent(fast, state, command_handlers()):
            cancel = fast.enqueue(
                identity.node_id, protocol.MESSAGE_CANCEL_COMMAND, {"message_id": "not-here"}
            )
            await eventually(lambda: fast.message(cancel).replies != [])
        assert fast.message(cancel).replies == [
            {"status": "Success", "result": {"cancelled": False}}
        ]

    asyncio.run(scenario())


def test_an_output_flood_is_capped_counted_and_never_held_in_memory(
    fast: FakeBosun, state_dir: Path
) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    flood = 50_000_000
    command = command_payload(
        shell_step("flood", f"yes | head -c {flood}", "echo done >&2"), output_limit=100_000
    )
    message_id, reply = asyncio.run(run_command(fast, state_dir, command, timeout=60))
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    (step,) = reply["result"]["steps"]
    assert step["status"] == "Success"
    assert step["stdout"]["length"] == 100_000
    assert step["stdout"]["dropped_bytes"] == flood - 100_000
    assert fast.command_output(message_id, 0, "stdout") == "y\n" * 50_000
    assert fast.command_output(message_id, 0, "stderr") == "done\n"
    assert (peak_after - peak_before) * 1024 < 30_000_000


def test_secure_values_are_fetched_for_the_script_and_masked_in_all_output(
    fast: FakeBosun, state_dir: Path
) -> None:
    fast.secure_parameters["/db/password"] = SECRET
    half = len(SECRET) // 2
    command = command_payload(
        shell_step(
            "secret",
            "echo {{ssm-secure:/db/password}} | wc -c",
            "echo password={{ ssm-secure:/db/password }}",
            # Split across two pipe reads: the mask must still cover it.
            f"printf %s '{SECRET[:half]}'; sleep 0.3; printf '%s\\n' '{SECRET[half:]}'",
            "echo {{ssm-secure:/db/password}} >&2",
        ),
        secure_parameters=["/db/password"],
    )
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    assert reply["status"] == "Success"
    assert fast.command_output(message_id, 0, "stdout").split() == [
        str(len(SECRET) + 1),
        "password=****",
        "****",
    ]
    assert fast.command_output(message_id, 0, "stderr") == "****\n"
    everything = json.dumps([fast.message(message_id).uploads, reply])
    assert SECRET not in everything and SECRET[:half] not in everything
    assert ("secure-parameters", fast.only_node().node_id) in fast.requests


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("denied", "you may not read /db/password (AccessDenied)"),
        ("unknown", "no parameter /db/password (ParameterNotFound)"),
    ],
)
def test_a_refused_secure_parameter_fails_the_run_at_once_and_runs_nothing(
    fast: FakeBosun, state_dir: Path, tmp_path: Path, setup: str, error: str
) -> None:
    if setup == "denied":
        fast.secure_parameters["/db/password"] = SECRET
        fast.denied_parameters.add("/db/password")
    marker = tmp_path / "ran"
    command = command_payload(
        shell_step("touch", f"touch {marker}", "echo {{ssm-secure:/db/password}}"),
        secure_parameters=["/db/password"],
    )
    _, reply = asyncio.run(run_command(fast, state_dir, command))
    assert reply == {"status": "Failed", "result": {"error": error}}
    assert not marker.exists()


def test_a_missing_working_directory_fails_the_step_and_names_it(
    fast: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-directory"
    command = command_payload(shell_step("cd", "echo hi", workingDirectory=str(missing)))
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    (step,) = reply["result"]["steps"]
    assert step["status"] == "Failed"
    assert step["status_details"] == f"the working directory {missing} does not exist"
    assert fast.command_output(message_id, 0, "stdout") == ""


def test_a_given_working_directory_is_where_the_script_runs(
    fast: FakeBosun, state_dir: Path, tmp_path: Path
) -> None:
    command = command_payload(shell_step("pwd", "pwd", workingDirectory=str(tmp_path)))
    message_id, _ = asyncio.run(run_command(fast, state_dir, command))
    assert fast.command_output(message_id, 0, "stdout") == f"{tmp_path}\n"


def test_the_script_is_private_runs_in_a_private_directory_and_is_removed_after(
    fast: FakeBosun, state_dir: Path
) -> None:
    step = shell_step("where", "pwd", 'stat -c %a . "$0"', "echo $BOSUN_AGENT_RUN")
    command = command_payload(step)
    message_id, _ = asyncio.run(run_command(fast, state_dir, command))
    where, directory_mode, script_mode, marker = fast.command_output(
        message_id, 0, "stdout"
    ).split()
    assert where == str(state_dir.resolve() / "runs" / message_id)
    assert (directory_mode, script_mode) == ("700", "600")
    assert marker == message_id
    assert not Path(where).exists()
    assert list((state_dir / "runs").iterdir()) == []


def test_output_is_uploaded_while_the_step_still_runs(fast: FakeBosun, state_dir: Path) -> None:
    seen_while_running: list[str] = []

    async def watch(node_id: str, message_id: str) -> None:
        message = fast.message(message_id)
        await eventually(lambda: message.output.get((0, "stdout")) == "first\n", timeout=5)
        seen_while_running.append(message.output[(0, "stdout")])
        assert message.replies == []

    command = command_payload(shell_step("slow", "echo first", "sleep 2.5", "echo second"))
    message_id, reply = asyncio.run(run_command(fast, state_dir, command, during=watch))
    assert seen_while_running == ["first\n"]
    (step,) = reply["result"]["steps"]
    # Everything was uploaded before the reply, so the reply carries no tail.
    assert step["stdout"] == {"length": 13, "dropped_bytes": 0, "offset": 13, "data": ""}
    assert fast.message(message_id).output[(0, "stdout")] == "first\nsecond\n"


def test_an_upload_the_server_could_not_take_is_sent_again_from_the_same_offset(
    fast: FakeBosun, state_dir: Path
) -> None:
    fast.fail("output", 503)
    command = command_payload(shell_step("two", "echo first", "sleep 3.5", "echo second"))
    message_id, _ = asyncio.run(run_command(fast, state_dir, command))
    message = fast.message(message_id)
    assert message.output[(0, "stdout")] == "first\nsecond\n"
    assert [route for route, _ in fast.requests].count("output!") == 1
    # The first tick failed; the second sent the same text at the same offset.
    assert [(c["offset"], c["data"]) for upload in message.uploads for c in upload] == [
        (0, "first\n"),
        (6, "second\n"),
    ]


def test_output_the_server_does_not_take_travels_in_the_reply(
    fast: FakeBosun, state_dir: Path
) -> None:
    fast.fail("output", *[503] * 50)
    command = command_payload(shell_step("quick", "echo one", "echo two >&2"))
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    (step,) = reply["result"]["steps"]
    assert step["stdout"] == {"length": 4, "dropped_bytes": 0, "offset": 0, "data": "one\n"}
    assert step["stderr"] == {"length": 4, "dropped_bytes": 0, "offset": 0, "data": "two\n"}
    assert fast.message(message_id).output == {}


def test_more_unsent_output_than_a_reply_carries_is_retried_until_it_is_uploaded(
    fast: FakeBosun, state_dir: Path
) -> None:
    fast.fail("output", 503, 503, 503)
    command = command_payload(shell_step("big", "head -c 200000 /dev/zero | tr '\\0' x"))
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    (step,) = reply["result"]["steps"]
    assert step["stdout"] == {"length": 200_000, "dropped_bytes": 0, "offset": 200_000, "data": ""}
    assert fast.message(message_id).output[(0, "stdout")] == "x" * 200_000
    assert [route for route, _ in fast.requests].count("output!") == 3


def test_a_refused_upload_leaves_the_reply_carrying_a_contiguous_tail_that_fits(
    fast: FakeBosun, state_dir: Path
) -> None:
    fast.fail("output", *[400] * 50)
    command = command_payload(
        shell_step("big", "head -c 200000 /dev/zero | tr '\\0' x", "head -c 200000 /dev/zero >&2")
    )
    message_id, reply = asyncio.run(run_command(fast, state_dir, command))
    (step,) = reply["result"]["steps"]
    assert reply["status"] == "Success"
    assert step["stdout"]["offset"] == 0 and step["stdout"]["length"] == 200_000
    assert 0 < len(step["stdout"]["data"]) <= protocol.MAX_OUTPUT_CHUNK_CHARS
    assert len(json.dumps(reply).encode()) < protocol.MAX_BODY_BYTES
    assert fast.command_output(message_id, 0, "stdout") == step["stdout"]["data"]
