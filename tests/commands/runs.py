"""Helpers of the Run Command tests: sending as a principal, and an agent's side of a run
spoken over the real agent endpoints (signed requests, Django's test client).

Replies and sends run inside `committing()`, so what the core schedules on commit (settling
the command's status, waking agents) runs as it would after a real commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bosun_agent import protocol
from django.test import TestCase

from access.authorization import Principal
from commands.models import Command, Invocation
from commands.services.send import command_send
from fleet.models import MessageState, NodeMessage
from tests.fleet.protocol.agents import Agent

SHELL = "AWS-RunShellScript"


@contextmanager
def committing() -> Iterator[None]:
    """Run the on-commit callbacks of what happens inside, as a real commit would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        yield


def send(principal: Principal, **fields: Any) -> Command:
    """command_send with a shell script by default, its on-commit work run."""
    fields.setdefault("document_name", SHELL)
    if fields["document_name"] in (SHELL, "Bosun-RunShellScript"):
        fields.setdefault("parameters", {"commands": ["echo hello"]})
    with committing():
        return command_send(principal=principal, **fields)


def rows() -> tuple[int, int, int]:
    """How many commands, invocations and node messages exist."""
    return Command.objects.count(), Invocation.objects.count(), NodeMessage.objects.count()


def agents_register(activation: tuple[Any, str], count: int) -> list[Agent]:
    registered = []
    for _ in range(count):
        agent = Agent()
        response = agent.register(*activation)
        assert response.status_code == 201, response.content
        registered.append(agent)
    return registered


# --- The agent's side -----------------------------------------------------------------------


def busy(agents: list[Agent]) -> list[Agent]:
    """The agents that have a RunCommand message waiting to be fetched."""
    waiting = set(
        NodeMessage.objects.filter(
            kind=protocol.MESSAGE_RUN_COMMAND, state=MessageState.PENDING
        ).values_list("node_id", flat=True)
    )
    return [agent for agent in agents if agent.node_id in waiting]


def fetch(agent: Agent, kind: str | None = protocol.MESSAGE_RUN_COMMAND) -> list[dict[str, Any]]:
    """Lease the agent's waiting messages (of `kind`, unless None)."""
    response = agent.post(protocol.FETCH_PATH, {"max": protocol.MAX_FETCH})
    assert response.status_code == 200, response.content
    messages = response.json()["messages"]
    return [m for m in messages if kind is None or m["kind"] == kind]


def ack(agent: Agent, message_id: str):
    with committing():
        return agent.post(protocol.ACK_PATH.format(message_id=message_id), {})


def start(agent: Agent) -> dict[str, Any]:
    """Fetch and ack the agent's one RunCommand message; returns it."""
    [message] = fetch(agent)
    response = ack(agent, message["message_id"])
    assert response.status_code == 200, response.content
    return message


def reply(agent: Agent, message_id: str, result: dict[str, Any], status: str | None = None):
    """POST the reply; the status is Success when the outcome is, else Failed (as the agent)."""
    if status is None:
        status = protocol.REPLY_SUCCESS if result.get("outcome") == "Success" else "Failed"
    with committing():
        return agent.post(
            protocol.REPLY_PATH.format(message_id=message_id), {"status": status, "result": result}
        )


def upload(agent: Agent, message_id: str, chunks: list[dict[str, Any]]):
    return agent.post(protocol.OUTPUT_PATH.format(message_id=message_id), {"chunks": chunks})


def chunk(offset: int, data: str, *, step: int = 0, stream: str = "stdout") -> dict[str, Any]:
    return {"step": step, "stream": stream, "offset": offset, "data": data}


def stream(data: str = "", *, offset: int = 0, dropped_bytes: int = 0) -> dict[str, Any]:
    return {
        "length": offset + len(data),
        "dropped_bytes": dropped_bytes,
        "offset": offset,
        "data": data,
    }


def step(
    status: str = "Success",
    *,
    name: str = "runShellScript",
    action: str = protocol.ACTION_RUN_SHELL_SCRIPT,
    response_code: int = 0,
    stdout: dict[str, Any] | None = None,
    stderr: dict[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    return {
        "name": name,
        "action": action,
        "status": status,
        "status_details": "",
        "response_code": response_code,
        "started_at": 1764158400.1,
        "finished_at": 1764158400.3,
        "stdout": stdout or stream(),
        "stderr": stderr or stream(),
        **more,
    }


def result(
    outcome: str = "Success",
    steps: list[dict[str, Any]] | None = None,
    *,
    response_code: int = 0,
    **more: Any,
) -> dict[str, Any]:
    if steps is None:
        steps = [step(outcome, response_code=response_code)]
    return {"outcome": outcome, "response_code": response_code, "steps": steps, **more}


def run(agent: Agent, outcome: str = "Success", **more: Any) -> dict[str, Any]:
    """Fetch, ack and reply with `outcome`: the whole run of the agent's one message."""
    message = start(agent)
    response = reply(agent, message["message_id"], result(outcome, **more))
    assert response.status_code == 200 and response.json()["accepted"], response.content
    return message
