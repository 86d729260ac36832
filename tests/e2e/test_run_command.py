"""Run Command end to end: real `bosun-agent`s run real shell scripts sent through the REST API.

Every test sends to its own agents (by their ids, or by a tag of its own) and reads the result
as an API client would: the command, its invocations, their inline output and downloads. What
happened on the machine is checked on the machine: the processes in /proc, the agents' journals
("S <time> <message id>" before a run starts) and the files in their state directories.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from tests.e2e.support import (
    Agents,
    RunCommands,
    Stack,
    group_members,
    processes_of_run,
    processes_running,
    wait_until,
)

# A script's round trip (send, wake-up, fetch, run, reply) is about a second on an idle
# machine; these bounds leave room for a loaded two-core runner.
RUN_TIMEOUT = 60.0
# The agent gives a process group this long between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 5.0
INLINE_CHARS = 24000
INTERRUPTED = "the agent stopped while running this message; it was not run again"


def _commands(stack: Stack) -> RunCommands:
    return stack.run_commands()


def _by_node(invocations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {invocation["node_id"]: invocation for invocation in invocations}


def _only_step(invocation: dict[str, Any]) -> dict[str, Any]:
    (step,) = invocation["steps"]
    assert step["name"] == "runShellScript", step
    return step


def _sleep_marker() -> str:
    """A sleep length no other process on this machine has in its command line."""
    return f"{secrets.randbelow(900) + 100}.{secrets.randbelow(10**9):09d}"


def _tag_target(run: str) -> list[dict[str, Any]]:
    return [{"Key": "tag:Run", "Values": [run]}]


def test_a_script_sent_by_tag_runs_on_every_node_and_each_reports_its_own_output(
    stack: Stack, agents: Agents
):
    run = secrets.token_hex(4)
    activation = stack.activation(tags={"Run": run}, registration_limit=3)
    fleet = agents.online_many(3, activation=activation)
    commands = _commands(stack)

    sent = commands.send(
        ["echo host=$(hostname)", "echo dir=$(pwd)", "echo to-stderr >&2"],
        targets=_tag_target(run),
        comment="several nodes",
    )
    done = commands.wait_until_done(sent["command_id"], timeout=RUN_TIMEOUT)

    assert sent["target_count"] == 3, sent
    assert done["status"] == "Success", done
    assert done["status_details"] == "Success"
    assert (done["completed_count"], done["error_count"]) == (3, 0), done
    assert done["counts"] == {"Success": 3}, done
    invocations = _by_node(commands.invocations(sent["command_id"], details=True))
    assert sorted(invocations) == sorted(agent.node_id for agent in fleet)
    for agent in fleet:
        invocation = invocations[agent.node_id]
        (message_id,) = agent.journal_started()
        step = _only_step(invocation)
        assert invocation["node_name"] == agent.name
        assert (invocation["status"], invocation["status_details"]) == ("Success", "Success")
        assert invocation["response_code"] == 0
        assert invocation["started_at"] and invocation["finished_at"], invocation
        assert (step["status"], step["response_code"]) == ("Success", 0), step
        # The run's private directory is under this agent's own state directory.
        expected = f"host={socket.gethostname()}\ndir={agent.state_dir}/runs/{message_id}\n"
        assert step["stdout"]["content"] == expected, step
        assert step["stdout"]["length"] == len(expected)
        assert step["stdout"]["truncated"] is False
        assert step["stderr"]["content"] == "to-stderr\n", step
        assert not (agent.state_dir / "runs" / message_id).exists(), "the run dir was kept"


def test_a_script_that_exits_3_fails_with_response_code_3_and_its_stderr_captured(
    stack: Stack, agents: Agents
):
    agent = agents.online()
    commands = _commands(stack)

    sent = commands.send(
        ["echo partial", "echo 'no such thing' >&2", "exit 3", "echo never"],
        instance_ids=[agent.node_id],
    )
    done = commands.wait_until_done(sent["command_id"], timeout=RUN_TIMEOUT)
    invocation = commands.invocation(sent["command_id"], agent.node_id)
    step = _only_step(invocation)

    assert done["status"] == "Failed", done
    assert done["error_count"] == 1, done
    assert (invocation["status"], invocation["status_details"]) == ("Failed", "Failed")
    assert invocation["response_code"] == 3, invocation
    assert (step["status"], step["response_code"]) == ("Failed", 3), step
    assert step["stdout"]["content"] == "partial\n", step
    assert step["stderr"]["content"] == "no such thing\n", step


def test_cancelling_a_long_run_stops_its_processes_and_ends_it_cancelled(
    stack: Stack, agents: Agents
):
    agent = agents.online()
    commands = _commands(stack)
    marker = _sleep_marker()
    # The shell takes its time to stop (as a real service would), so Cancelling is visible;
    # a background sleep shows the whole process group is ended, not just the shell.
    sent = commands.send(
        [
            "trap 'echo stopping; sleep 2; exit 143' TERM",
            "echo started",
            f"sleep {marker} &",
            f"sleep {marker}",
        ],
        instance_ids=[agent.node_id],
    )
    command_id = sent["command_id"]
    running = wait_until(
        lambda: processes_running(marker),
        lambda found: len(found) == 2,
        timeout=RUN_TIMEOUT,
        what="both sleeps of the script running",
    )
    wait_until(
        lambda: commands.invocation(command_id, agent.node_id)["status"],
        lambda status: status == "InProgress",
        timeout=RUN_TIMEOUT,
        what="the invocation InProgress",
    )
    (pgid,) = {group for _, group in running}

    asked = time.monotonic()
    answer = commands.cancel(command_id)
    seen: list[tuple[str, str]] = []

    def observe() -> tuple[str, str]:
        now = (
            commands.invocation(command_id, agent.node_id)["status"],
            commands.command(command_id)["status"],
        )
        if not seen or seen[-1] != now:
            seen.append(now)
        return now

    wait_until(
        observe,
        lambda now: now == ("Cancelled", "Cancelled"),
        timeout=RUN_TIMEOUT,
        every=0.05,
        what="the invocation and the command Cancelled",
    )
    took = time.monotonic() - asked

    assert answer == {"command_id": command_id, "open_invocations": 1}, answer
    assert ("Cancelling", "Cancelling") in seen, seen
    assert seen[-1] == ("Cancelled", "Cancelled"), seen
    # SIGTERM, the trap's two seconds, the reply: never the SIGKILL grace on top.
    assert took < 2 + KILL_GRACE_SECONDS + 10, f"cancelling took {took:.1f}s"
    invocation = commands.invocation(command_id, agent.node_id)
    step = _only_step(invocation)
    assert invocation["status_details"] == "Cancelled", invocation
    assert step["status"] == "Cancelled", step
    assert step["stdout"]["content"].startswith("started\n"), step
    command = commands.command(command_id)
    assert command["status_details"] == "Cancelled", command
    assert command["cancel_requested_at"] and command["finished_at"], command
    assert processes_running(marker) == []
    assert group_members(pgid) == []
    run, cancel = stack.messages_of(agent.node_id)
    assert (run["kind"], run["result"]["outcome"]) == ("RunCommand", "Cancelled"), run
    assert cancel["kind"] == "CancelCommand", cancel
    assert cancel["result"] == {"cancelled": True}, cancel
    assert agent.journal_started() == [run["message_id"], cancel["message_id"]]
    assert processes_of_run(run["message_id"]) == []


def test_a_run_past_its_execution_timeout_is_killed_and_ends_timed_out(
    stack: Stack, agents: Agents
):
    agent = agents.online()
    commands = _commands(stack)
    marker = _sleep_marker()

    started = time.monotonic()
    sent = commands.send(
        ["echo waiting", f"sleep {marker}"],
        instance_ids=[agent.node_id],
        parameters={"executionTimeout": ["3"]},
    )
    # Seen alive, so the checks below that it is gone mean something.
    wait_until(lambda: processes_running(marker), timeout=RUN_TIMEOUT, what="the sleep running")
    done = commands.wait_until_done(sent["command_id"], timeout=RUN_TIMEOUT)
    took = time.monotonic() - started
    invocation = commands.invocation(sent["command_id"], agent.node_id)
    step = _only_step(invocation)

    assert took < 12, f"a 3 s timeout took {took:.1f}s to end the command"
    assert (invocation["status"], invocation["status_details"]) == ("TimedOut", "ExecutionTimedOut")
    assert invocation["response_code"] == -1, invocation
    assert step["status"] == "TimedOut", step
    assert "3 s" in step["status_details"], step
    assert step["stdout"]["content"] == "waiting\n", step
    assert done["error_count"] == 1, done  # an execution timeout counts against MaxErrors
    assert done["status"] in ("Failed", "TimedOut"), done
    assert processes_running(marker) == []
    (message_id,) = agent.journal_started()
    assert processes_of_run(message_id) == []


def test_an_agent_killed_mid_run_ends_the_orphaned_script_on_restart_and_reports_it_failed(
    stack: Stack, agents: Agents
):
    agent = agents.online()
    commands = _commands(stack)
    marker = _sleep_marker()
    sent = commands.send([f"sleep {marker}"], instance_ids=[agent.node_id])
    wait_until(lambda: processes_running(marker), timeout=RUN_TIMEOUT, what="the sleep running")

    agent.kill()
    # Its own session, so the script outlives the agent: only the agent's records find it.
    orphans = processes_running(marker)
    agent.start()
    done = commands.wait_until_done(sent["command_id"], timeout=RUN_TIMEOUT)
    invocation = commands.invocation(sent["command_id"], agent.node_id)

    assert orphans, "the script died with the agent: nothing for the restart to clean up"
    assert processes_running(marker) == []
    assert (invocation["status"], invocation["status_details"]) == ("Failed", "Failed")
    assert INTERRUPTED in invocation["reason"], invocation
    assert done["status"] == "Failed", done
    (message_id,) = agent.journal_started()
    assert processes_of_run(message_id) == []
    assert "Traceback" not in agent.log_text(), agent.log_tail()


def test_a_command_for_a_node_whose_agent_is_gone_times_out_undelivered_and_never_runs_later(
    stack: Stack, agents: Agents
):
    """The one slow test: the shortest delivery timeout there is (30 s) has to pass."""
    agent = agents.online()
    agent.stop()
    assert agent.process.returncode is not None
    commands = _commands(stack)

    sent = commands.send(["echo too late"], instance_ids=[agent.node_id], timeout_seconds=30)
    done = commands.wait_until_done(sent["command_id"], timeout=30 + 60)
    invocation = commands.invocation(sent["command_id"], agent.node_id)

    assert (invocation["status"], invocation["status_details"]) == ("TimedOut", "DeliveryTimedOut")
    assert invocation["started_at"] is None, invocation
    assert "delivery timeout" in invocation["reason"], invocation
    # Not started anywhere: the delivery timeout is not an execution error.
    assert done["error_count"] == 0, done
    assert done["delivery_timed_out_count"] == 1, done
    assert (done["status"], done["status_details"]) == ("TimedOut", "DeliveryTimedOut"), done
    (message,) = stack.messages_of(agent.node_id)
    assert (message["kind"], message["state"]) == ("RunCommand", "expired"), message

    # Back again, the agent runs what is sent now, and never the withdrawn command.
    agent.start()
    agent.wait_connected()
    again = commands.send(["echo back"], instance_ids=[agent.node_id])
    back = commands.wait_until_done(again["command_id"], timeout=RUN_TIMEOUT)

    assert back["status"] == "Success", back
    expired, ran = stack.messages_of(agent.node_id)
    assert expired == message, expired
    assert agent.journal_started() == [ran["message_id"]]


def test_a_failure_past_max_errors_stops_the_command_and_the_other_nodes_never_get_it(
    stack: Stack, agents: Agents
):
    run = secrets.token_hex(4)
    activation = stack.activation(tags={"Run": run}, registration_limit=4)
    fleet = agents.online_many(4, activation=activation)
    commands = _commands(stack)

    sent = commands.send(
        ["echo failing >&2", "exit 1"],
        targets=_tag_target(run),
        max_concurrency="1",
        max_errors="0",
    )
    done = commands.wait_until_done(sent["command_id"], timeout=RUN_TIMEOUT)
    invocations = _by_node(commands.invocations(sent["command_id"], details=True))

    assert (done["status"], done["status_details"]) == ("Failed", "Failed"), done
    assert done["counts"] == {"Failed": 1, "Terminated": 3}, done
    assert (done["completed_count"], done["error_count"]) == (4, 1), done
    failed = [agent for agent in fleet if invocations[agent.node_id]["status"] == "Failed"]
    assert len(failed) == 1, invocations
    for agent in fleet:
        invocation = invocations[agent.node_id]
        if agent in failed:
            assert invocation["response_code"] == 1, invocation
            assert len(agent.journal_started()) == 1
            continue
        assert (invocation["status"], invocation["status_details"]) == ("Cancelled", "Terminated")
        assert "MaxErrors" in invocation["reason"], invocation
        assert invocation["dispatched_at"] is None, invocation
        assert invocation["started_at"] is None, invocation
        assert _only_step(invocation)["stdout"]["content"] == ""
        # Never sent: no message was queued for the node, and its agent ran nothing.
        assert stack.messages_of(agent.node_id) == []
        assert agent.journal_started() == []


def test_a_secure_parameter_reaches_the_script_but_is_masked_and_never_stored(
    stack: Stack, agents: Agents
):
    name = f"/e2e/secret-{secrets.token_hex(3)}"
    value = f"s3cr3t-{secrets.token_hex(12)}"
    created = stack.api(
        "POST", "/parameters/", {"name": name, "value": value, "type": "SecureString"}
    )
    assert created.status == 201, created
    agent = agents.online()
    commands = _commands(stack)
    reference = f"{{{{ssm-secure:{name}}}}}"

    sent = commands.send(
        [f"echo the secret is {reference}", f"printf %s '{reference}' | wc -c"],
        instance_ids=[agent.node_id],
    )
    done = commands.wait_until_done(sent["command_id"], timeout=RUN_TIMEOUT)
    invocation = commands.invocation(sent["command_id"], agent.node_id)
    step = _only_step(invocation)

    assert done["status"] == "Success", (done, invocation)
    # The script had the real value (its length), the output shows it masked.
    assert step["stdout"]["content"] == f"the secret is ****\n{len(value)}\n", step
    assert commands.output(step["stdout"]) == step["stdout"]["content"]
    assert done["parameters"]["commands"][0] == f"echo the secret is {reference}", done
    faces = [
        done,
        sent,
        invocation,
        commands.invocations(sent["command_id"], details=True),
        stack.api("GET", "/commands/?max_results=50").body,
    ]
    assert value not in json.dumps(faces)
    # Nowhere in the database in the clear: not the command, its invocation, its output,
    # the node message and its reply, nor the audit trail.
    dump = stack.manage("dumpdata", "--natural-foreign").stdout
    assert f'"{sent["command_id"]}"' in dump, "the dump does not hold the command"
    assert value not in dump
    # Nor left on the node: the script file went with the run directory.
    for path in agent.state_dir.rglob("*"):
        if path.is_file():
            assert value.encode() not in path.read_bytes(), path


def test_output_longer_than_the_inline_limit_is_cut_inline_and_downloadable_whole(
    stack: Stack, agents: Agents, tmp_path: Path
):
    agent = agents.online()
    commands = _commands(stack)
    expected = "".join(f"{n}\n" for n in range(1, 10001))  # 48,894 characters
    assert len(expected) > 2 * INLINE_CHARS
    release = tmp_path / "release"  # the script runs on until the test creates this

    sent = commands.send(
        ["seq 1 10000", "echo short >&2", f"while [ ! -e {release} ]; do sleep 0.1; done"],
        instance_ids=[agent.node_id],
    )
    command_id = sent["command_id"]
    # While it runs: the inline copy is cut, the download holds everything uploaded so far.
    live = wait_until(
        lambda: _only_step(commands.invocation(command_id, agent.node_id))["stdout"],
        lambda stdout: len(stdout["content"]) == INLINE_CHARS,
        timeout=RUN_TIMEOUT,
        what="the first 24,000 characters uploaded",
    )
    wait_until(
        lambda: len(commands.output(live)),
        lambda length: length >= len(expected),
        timeout=RUN_TIMEOUT,
        what="the whole output so far in the download of the running step",
    )
    running = commands.invocation(command_id, agent.node_id)
    assert running["status"] == "InProgress", running
    assert commands.output(live) == expected
    release.touch()
    done = commands.wait_until_done(command_id, timeout=RUN_TIMEOUT)
    invocation = commands.invocation(command_id, agent.node_id)
    step = _only_step(invocation)

    assert live["truncated"] is True
    assert live["content"] == expected[:INLINE_CHARS]
    assert done["status"] == "Success", done
    stdout = step["stdout"]
    assert stdout["length"] == len(expected), stdout["length"]
    assert stdout["truncated"] is True
    assert stdout["content"] == expected[:INLINE_CHARS]
    assert stdout["dropped_bytes"] == 0
    whole = commands.output(stdout)
    assert len(whole) == len(expected)
    assert whole == expected
    assert step["stderr"]["truncated"] is False
    assert commands.output(step["stderr"]) == "short\n"
    assert re.search(r"[?&]stream=stdout\b", stdout["url"]), stdout["url"]
