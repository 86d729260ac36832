"""A real `bosun-agent` against a live embedded stack: register, appear, answer, deregister.

Each test starts its own agents (own state dir, own fingerprint) and looks only at its own
nodes, so the tests share one server. The server's heartbeat interval is its default here
(60 s): a message answered within a second or two can only have come by the websocket wake-up.
"""

from __future__ import annotations

import ipaddress
import platform
import re
import shutil
import socket
import textwrap
import time

from bosun_agent import __version__ as AGENT_VERSION

from tests.e2e.support import Agents, Stack, parse_time, wait_until

NODE_ID = re.compile(r"mi-[0-9a-f]{17}")
REVOKED_LINE = "this node was deregistered from Bosun; register it again with an activation"
# The wake-up path is commit → channel layer → the agent's websocket → fetch, ack, reply: well
# under a second on an idle machine. The bound leaves room for a loaded two-core runner while
# staying far below the 60 s heartbeat that would otherwise be the agent's next look.
WAKE_ROUND_TRIP_SECONDS = 5.0
EXIT_REVOKED = 3
EXIT_CLONE = 4


def test_a_registered_agent_is_online_with_its_host_facts_and_the_activations_tags(
    stack: Stack, agents: Agents
):
    activation = stack.activation(tags={"Env": "e2e", "Team": "ops"}, registration_limit=2)
    agent = agents.new()

    node_id = agent.registered(activation, "--tags", "Role=web")
    registered = stack.node(node_id)
    agent.start()
    agent.wait_connected()
    node = wait_until(
        lambda: stack.node(node_id),
        lambda node: node["last_seen_at"] != registered["last_seen_at"],
        timeout=20,
        what="a heartbeat from the running agent",
    )

    assert NODE_ID.fullmatch(node_id)
    assert node["status"] == "Online"
    assert node["name"] == agent.name
    assert node["activation_id"] == activation["id"]
    assert node["tags"] == {"Env": "e2e", "Team": "ops", "Role": "web"}
    assert node["hostname"] == socket.gethostname()
    assert node["platform_type"] == "Linux"
    assert node["platform_name"]
    assert node["kernel_version"] == platform.release()
    assert node["architecture"] == platform.machine()
    assert node["agent_version"] == AGENT_VERSION
    assert node["ip_addresses"], "no IP address reported"
    assert node["ip_address"] == node["ip_addresses"][0]
    for address in node["ip_addresses"]:
        ipaddress.ip_address(address)
    assert node["suspected_clone"] is False
    assert stack.api("GET", f"/activations/{activation['id']}/").body["registrations_count"] == 1

    code, status = agent.status()
    assert code == 0, status
    assert status["node_id"] == node_id
    assert status["server"] == stack.url
    assert status["agent_running_pid"] == agent.process.pid
    assert status["server_check"]["ok"] is True
    assert status["server_check"]["status"] == "Online"
    assert status["deregistered_at"] is None


def test_a_facts_refresh_asked_on_the_node_page_is_answered_at_once_and_stored(
    stack: Stack, agents: Agents
):
    agent = agents.online()
    before = stack.node(agent.node_id)

    asked = time.monotonic()
    stack.refresh_facts(agent.node_id)
    node = wait_until(
        lambda: stack.node(agent.node_id),
        lambda node: node["facts_updated_at"] != before["facts_updated_at"],
        timeout=30,
        every=0.05,
        what="the refreshed facts",
    )
    took = time.monotonic() - asked

    assert took < WAKE_ROUND_TRIP_SECONDS, f"the round trip took {took:.2f}s"
    assert parse_time(node["facts_updated_at"]) > parse_time(before["facts_updated_at"])
    assert node["facts"]["hostname"] == socket.gethostname()
    (message,) = stack.messages_of(agent.node_id)
    assert message["kind"] == "RefreshHostFacts"
    assert message["state"] == "succeeded"
    assert message["delivery_count"] == 1
    assert message["result"]["facts"]["hostname"] == socket.gethostname()
    assert agent.process.poll() is None


def test_a_ping_queued_by_another_process_is_answered_over_the_websocket_wake_up(
    stack: Stack, agents: Agents
):
    """The queue API later features use (message_enqueue), from outside the web server."""
    agent = agents.online()

    # Enqueue and watch in one process: a shell costs more than the round trip itself.
    outcome = stack.shell(
        textwrap.dedent(f"""
            import json, time
            from django.db import transaction
            from fleet.models import NodeMessage
            from fleet.protocol.messages import message_enqueue
            node_ids = [{agent.node_id!r}]
            with transaction.atomic():
                (message,) = message_enqueue(node_ids=node_ids, kind="Ping", payload={{}})
            started = time.monotonic()
            while time.monotonic() - started < 30:
                message.refresh_from_db()
                if message.state not in ("pending", "leased", "acked"):
                    break
                time.sleep(0.02)
            print(json.dumps({{"state": message.state, "result": message.result,
                              "took": time.monotonic() - started}}))
        """)
    )

    assert outcome["state"] == "succeeded", outcome
    assert outcome["result"]["pong"] is True
    assert outcome["result"]["agent_version"] == AGENT_VERSION
    assert outcome["took"] < WAKE_ROUND_TRIP_SECONDS, outcome


def test_deregistering_a_node_on_the_server_stops_its_agent_for_good(stack: Stack, agents: Agents):
    agent = agents.online()

    answer = stack.api("POST", f"/nodes/{agent.node_id}/deregister/")
    code = agent.wait(timeout=15)

    assert answer.status == 200, answer
    assert answer.body["status"] == "Deregistered"
    assert code == EXIT_REVOKED, agent.log_tail()
    log = agent.log_path.read_text()
    assert REVOKED_LINE in log
    assert "Traceback" not in log
    assert stack.node(agent.node_id)["status"] == "Deregistered"

    again = agent.cli("run", timeout=30)
    assert again.returncode == EXIT_REVOKED, again.stderr
    assert again.stderr.strip() == f"bosun-agent: {REVOKED_LINE}"
    code, status = agent.status()
    assert code == EXIT_REVOKED
    assert status["deregistered_at"] is not None


def test_an_agent_that_deregisters_itself_leaves_a_deregistered_node_and_no_credentials(
    stack: Stack, agents: Agents
):
    agent = agents.online()

    done = agent.cli("deregister")
    code = agent.wait(timeout=15)

    assert done.returncode == 0, done.stderr
    assert f"deregistered {agent.node_id}; local credentials removed" in done.stderr
    assert f"the running agent (pid {agent.process.pid}) stops by itself" in done.stderr
    assert code == EXIT_REVOKED, agent.log_tail()
    node = stack.node(agent.node_id)
    assert node["status"] == "Deregistered"
    assert node["deregistered_at"] is not None
    after = agent.cli("status", "--json")
    assert after.returncode == 1
    assert "not registered" in after.stderr
    assert "Traceback" not in after.stderr


def test_a_copied_state_dir_on_another_machine_is_refused_as_a_clone_and_the_original_goes_on(
    stack: Stack, agents: Agents
):
    original = agents.online()
    clone = agents.new(f"{original.name}-copy")
    shutil.copytree(original.state_dir, clone.state_dir)
    assert clone.fingerprint != original.fingerprint

    clone.start()
    code = clone.wait(timeout=20)

    assert code == EXIT_CLONE, clone.log_tail()
    log = clone.log_path.read_text()
    assert f"Bosun refused this machine as a suspected clone of {original.node_id}" in log
    assert "Traceback" not in log
    node = stack.node(original.node_id)
    assert node["suspected_clone"] is True
    assert node["clone_suspected_at"] is not None
    assert node["status"] == "Online"

    # The machine that registered is still the node: it keeps heartbeating and answering.
    before = node["facts_updated_at"]
    stack.refresh_facts(original.node_id)
    wait_until(
        lambda: stack.node(original.node_id)["facts_updated_at"],
        lambda updated: updated != before,
        timeout=15,
        what="the original's answer after the clone was refused",
    )
    assert original.process.poll() is None
    code, status = original.status()
    assert code == 0, status
    assert status["server_check"]["status"] == "Online"
