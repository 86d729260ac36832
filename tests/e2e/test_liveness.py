"""Liveness with real processes: a dead agent goes ConnectionLost, a restarted server is found.

This module runs its own stack with a 2 s heartbeat, so silence shows within seconds: a node
is ConnectionLost after 2.5 intervals without a heartbeat, and the sweep looks every second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import Agents, Stack, parse_time, port_open, running_stack, wait_until

HEARTBEAT_SECONDS = 2
# 2.5 intervals of silence, plus up to one interval since the last heartbeat, plus the
# sweep's own period: about 4 intervals at worst. Six leave room for a busy machine.
LOST_WITHIN_SECONDS = 6 * HEARTBEAT_SECONDS


@pytest.fixture(scope="module")
def brisk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("e2e-brisk-stack")
    with running_stack(root / "var", heartbeat_seconds=HEARTBEAT_SECONDS) as live:
        yield live


@pytest.fixture
def agents(brisk_stack: Stack, tmp_path: Path) -> Iterator[Agents]:
    made = Agents(brisk_stack, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


def test_a_killed_agent_goes_connection_lost_and_is_online_again_once_restarted(
    brisk_stack: Stack, agents: Agents
):
    agent = agents.online()

    agent.kill()
    killed = time.monotonic()
    lost = brisk_stack.wait_for_status(agent.node_id, "ConnectionLost", timeout=30)
    took = time.monotonic() - killed

    assert took < LOST_WITHIN_SECONDS, f"ConnectionLost after {took:.1f}s"
    assert parse_time(lost["status_changed_at"]) > parse_time(lost["last_seen_at"])

    agent.start()
    back = brisk_stack.wait_for_status(agent.node_id, "Online", timeout=15)

    assert parse_time(back["last_seen_at"]) > parse_time(lost["status_changed_at"])
    assert parse_time(back["status_changed_at"]) > parse_time(lost["status_changed_at"])


def test_a_running_agent_survives_a_server_restart_and_answers_again(
    brisk_stack: Stack, agents: Agents
):
    agent = agents.online()
    pid = agent.process.pid
    assert len(brisk_stack.last_children) >= 3, "web, worker and the local agent"

    survivors = brisk_stack.stop()
    assert survivors == [], "processes of the stack outlived its stop"
    assert not port_open(brisk_stack.port)
    assert agent.process.poll() is None, agent.log_tail()
    brisk_stack.start()
    restarted = time.time()

    # Backoff (1 s doubling, ±50 %) brings it back within seconds of the server's return.
    node = wait_until(
        lambda: brisk_stack.node(agent.node_id),
        lambda node: (
            node["status"] == "Online" and parse_time(node["last_seen_at"]).timestamp() > restarted
        ),
        timeout=30,
        what="the same agent heard from after the restart",
    )
    assert node["status"] == "Online"
    assert agent.process.pid == pid
    assert agent.process.poll() is None

    before = node["facts_updated_at"]
    brisk_stack.refresh_facts(agent.node_id)
    wait_until(
        lambda: brisk_stack.node(agent.node_id)["facts_updated_at"],
        lambda updated: updated != before,
        timeout=15,
        what="the answer to a message sent after the restart",
    )
    (message,) = brisk_stack.messages_of(agent.node_id)
    assert message["state"] == "succeeded"
    # Its websocket is back too. Heartbeats and the websocket back off apart (1 s doubling,
    # ±50 %), so after an outage of a few seconds the socket may take ~20 s more at worst.
    agent.wait_connected(times=2, timeout=45)
    assert "Traceback" not in agent.log_text()
