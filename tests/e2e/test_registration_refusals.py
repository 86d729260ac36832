"""Registrations the server refuses, through the real `bosun-agent register`.

Each refusal is one clear line on stderr and a non-zero exit, never a traceback, and leaves
nothing behind: no node on the server, no identity on the machine, no use of the activation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.support import Agents, Stack


def _wrong_code(stack: Stack, agents: Agents) -> dict[str, Any]:
    activation = stack.activation()
    return {**activation, "activation_code": secrets.token_hex(10)}


def _unknown_id(stack: Stack, agents: Agents) -> dict[str, Any]:
    activation = stack.activation()
    return {**activation, "id": "5d2b0f4e-0000-4000-8000-000000000000"}


def _expired(stack: Stack, agents: Agents) -> dict[str, Any]:
    activation = stack.activation()
    # The service refuses to make one in the past; time passes for it in the database.
    stack.shell(
        "import json; from datetime import timedelta; from django.utils import timezone; "
        "from fleet.models import Activation; "
        f"print(json.dumps(Activation.objects.filter(pk={activation['id']!r})"
        ".update(expires_at=timezone.now() - timedelta(minutes=1))))"
    )
    assert stack.api("GET", f"/activations/{activation['id']}/").body["expired"] is True
    return activation


def _used_up(stack: Stack, agents: Agents) -> dict[str, Any]:
    activation = stack.activation(registration_limit=1)
    agents.new().registered(activation)
    return activation


def _deleted(stack: Stack, agents: Agents) -> dict[str, Any]:
    activation = stack.activation()
    assert stack.api("DELETE", f"/activations/{activation['id']}/").status == 204
    return activation


REFUSALS: dict[str, tuple[Callable[[Stack, Agents], dict[str, Any]], str]] = {
    "wrong code": (_wrong_code, "InvalidActivation"),
    "unknown activation id": (_unknown_id, "InvalidActivation"),
    "expired activation": (_expired, "ActivationExpired"),
    "used-up one-use activation": (_used_up, "ActivationLimitExceeded"),
    "deleted activation": (_deleted, "InvalidActivation"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_registration_says_why_in_one_line_and_leaves_nothing_behind(
    stack: Stack, agents: Agents, case: str
):
    prepare, code = REFUSALS[case]
    activation = prepare(stack, agents)
    used_before = _registrations_count(stack, activation["id"])
    nodes_before = stack.nodes(status="")["count"]
    agent = agents.new()

    done = agent.register(activation)

    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bosun-agent: registration refused: "), lines[0]
    assert lines[0].endswith(f"({code})"), lines[0]
    assert "Traceback" not in done.stderr
    assert stack.nodes(q=agent.name)["count"] == 0
    assert stack.nodes(q=agent.name, status="Deregistered")["count"] == 0
    assert stack.nodes(status="")["count"] == nodes_before
    assert _registrations_count(stack, activation["id"]) == used_before
    status = agent.cli("status", "--offline", "--json")
    assert status.returncode == 1
    assert "not registered" in status.stderr


def test_the_wrong_code_answer_does_not_tell_an_unknown_id_from_a_wrong_code(
    stack: Stack, agents: Agents
):
    wrong_code = agents.new().register(_wrong_code(stack, agents))
    unknown_id = agents.new().register(_unknown_id(stack, agents))

    assert wrong_code.returncode == unknown_id.returncode == 1
    assert wrong_code.stderr == unknown_id.stderr


def _registrations_count(stack: Stack, activation_id: str) -> int | None:
    answer = stack.api("GET", f"/activations/{activation_id}/")
    return answer.body["registrations_count"] if answer.status == 200 else None
