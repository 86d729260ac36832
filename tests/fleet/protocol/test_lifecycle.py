"""Heartbeat and status, facts reports, key rotation and the agent's own deregistration."""

from __future__ import annotations

from datetime import timedelta

from bosun_agent import protocol
from django.utils import timezone

from audit.models import AuditEvent
from fleet.models import ManagedNode, MessageState, NodeEvent, NodeStatus, RequestNonce
from fleet.protocol.messages import message_enqueue
from fleet.protocol.status import nodes_connection_lost_sweep
from fleet.tasks import sweep_connection_lost
from tests.fleet.protocol.agents import Agent, facts_of


def node_of(agent: Agent) -> ManagedNode:
    return ManagedNode.objects.get(pk=agent.node_id)


# --- Heartbeat and status -------------------------------------------------------------------


def test_a_heartbeat_marks_the_node_seen_and_says_what_waits(agent):
    ManagedNode.objects.filter(pk=agent.node_id).update(last_seen_at=None)
    message_enqueue(node_ids=[agent.node_id], kind=protocol.MESSAGE_PING, payload={})

    answer = agent.post(protocol.HEARTBEAT_PATH, {"agent_version": "0.2.0"}).json()

    assert answer == {
        "protocol": protocol.PROTOCOL_VERSION,
        "status": "Online",
        "heartbeat_interval": 60,
        "pending_messages": 1,
        "rotate_key": False,
        "server_time": answer["server_time"],
    }
    node = node_of(agent)
    assert node.last_seen_at is not None
    assert node.agent_version == "0.2.0"


def test_the_heartbeat_stays_cheap(agent, django_assert_max_num_queries):
    # Node, nonce (in a savepoint), one UPDATE, one COUNT: the fleet-scale hot path.
    with django_assert_max_num_queries(6):
        assert agent.heartbeat().status_code == 200


def test_the_heartbeat_asks_for_a_rotation_when_the_key_is_old_or_one_was_requested(
    agent, settings
):
    settings.BOSUN_AGENT_KEY_MAX_AGE_DAYS = 30
    ManagedNode.objects.filter(pk=agent.node_id).update(
        key_rotated_at=timezone.now() - timedelta(days=31)
    )
    assert agent.heartbeat().json()["rotate_key"] is True
    ManagedNode.objects.filter(pk=agent.node_id).update(
        key_rotated_at=timezone.now(), key_rotation_requested_at=timezone.now()
    )
    assert agent.heartbeat().json()["rotate_key"] is True


def test_a_silent_node_is_swept_to_connection_lost_and_a_heartbeat_brings_it_back(
    agent, activation, django_capture_on_commit_callbacks
):
    fresh = Agent()
    fresh.register(*activation)
    ManagedNode.objects.filter(pk=agent.node_id).update(
        last_seen_at=timezone.now() - timedelta(seconds=151)
    )
    with django_capture_on_commit_callbacks() as published:
        assert nodes_connection_lost_sweep() == [agent.node_id]
    assert len(published) == 1
    assert node_of(agent).status == NodeStatus.CONNECTION_LOST
    assert node_of(fresh).status == NodeStatus.ONLINE
    assert nodes_connection_lost_sweep() == []  # once

    with django_capture_on_commit_callbacks() as published:
        assert agent.heartbeat().json()["status"] == "Online"
    assert len(published) == 1
    assert node_of(agent).status == NodeStatus.ONLINE
    changes = NodeEvent.objects.filter(node_id=agent.node_id, kind="status")
    summaries = list(changes.values_list("summary", flat=True))  # newest first
    assert len(summaries) == 2
    assert summaries[0].startswith("Online again")
    assert summaries[1].startswith("Connection lost")


def test_a_node_a_little_late_is_not_lost(agent):
    ManagedNode.objects.filter(pk=agent.node_id).update(
        last_seen_at=timezone.now() - timedelta(seconds=100)
    )
    assert nodes_connection_lost_sweep() == []


def test_the_sweep_task_also_expires_overdue_messages_and_prunes_nonces(agent):
    (late,) = message_enqueue(
        node_ids=[agent.node_id],
        kind=protocol.MESSAGE_PING,
        payload={},
        deliver_before=timezone.now() - timedelta(seconds=1),
    )
    RequestNonce.objects.update(seen_at=timezone.now() - timedelta(hours=1))
    sweep_connection_lost()
    late.refresh_from_db()
    assert late.state == MessageState.EXPIRED
    assert RequestNonce.objects.count() == 0


# --- Facts ----------------------------------------------------------------------------------


def test_a_facts_report_updates_the_node_and_notes_what_changed(agent):
    facts = facts_of(hostname="web-2", ip_addresses=["192.0.2.9"], rack="r12")
    response = agent.post(protocol.FACTS_PATH, {"facts": facts})
    assert response.status_code == 200
    assert response.json() == {"updated": True}
    node = node_of(agent)
    assert (node.hostname, node.ip_address, node.facts["rack"]) == ("web-2", "192.0.2.9", "r12")
    event = NodeEvent.objects.get(node=node, kind="facts")
    assert "hostname" in event.summary and "ip_addresses" in event.summary


def test_a_malformed_facts_report_is_a_400_and_changes_nothing(agent):
    response = agent.post(protocol.FACTS_PATH, {"facts": facts_of(ip_addresses="10.0.0.1")})
    assert response.status_code == 400
    assert "ip_addresses" in response.json()["message"]
    assert node_of(agent).ip_address == "10.0.0.5"
    assert agent.post(protocol.FACTS_PATH, {}).status_code == 400


# --- Key rotation ---------------------------------------------------------------------------


def rotation(agent: Agent, new_key) -> dict:
    return {
        "public_key": protocol.public_key_text(new_key),
        "proof": protocol.key_rotation_proof(new_key, agent.node_id),
    }


def test_a_rotated_key_signs_at_once_and_the_old_one_only_during_the_overlap(agent):
    ManagedNode.objects.filter(pk=agent.node_id).update(key_rotation_requested_at=timezone.now())
    old_key, new_key = agent.key, protocol.generate_private_key()

    response = agent.post(protocol.ROTATE_KEY_PATH, rotation(agent, new_key))

    assert response.status_code == 200
    assert isinstance(response.json()["rotated_at"], int)
    node = node_of(agent)
    assert node.public_key == protocol.public_key_text(new_key)
    assert node.key_rotation_requested_at is None
    assert node.previous_key_valid_until > timezone.now() + timedelta(seconds=590)
    assert agent.heartbeat(key=new_key).json()["rotate_key"] is False
    assert agent.heartbeat(key=old_key).status_code == 200  # requests in flight still count

    ManagedNode.objects.filter(pk=agent.node_id).update(
        previous_key_valid_until=timezone.now() - timedelta(seconds=1)
    )
    assert agent.heartbeat(key=old_key).status_code == 401
    assert agent.heartbeat(key=new_key).status_code == 200
    assert NodeEvent.objects.filter(node=node, kind="key_rotated").count() == 1
    assert AuditEvent.objects.filter(action="bosun:RotateNodeKey").count() == 1


def test_a_retried_rotation_changes_nothing_more(agent):
    new_key = protocol.generate_private_key()
    first = agent.post(protocol.ROTATE_KEY_PATH, rotation(agent, new_key)).json()
    again = agent.post(protocol.ROTATE_KEY_PATH, rotation(agent, new_key))  # old key, in overlap
    assert again.status_code == 200
    assert again.json() == first
    assert node_of(agent).previous_public_key == protocol.public_key_text(agent.key)


def test_a_rotation_without_proof_of_the_new_key_is_refused(agent):
    new_key = protocol.generate_private_key()
    body = rotation(agent, new_key)
    body["proof"] = protocol.key_rotation_proof(protocol.generate_private_key(), agent.node_id)
    response = agent.post(protocol.ROTATE_KEY_PATH, body)
    assert response.status_code == 400
    assert "proof" in response.json()["message"]
    bad_key = agent.post(protocol.ROTATE_KEY_PATH, {**body, "public_key": "AAAA"})
    assert bad_key.status_code == 400
    assert node_of(agent).public_key == protocol.public_key_text(agent.key)


# --- Deregistration -------------------------------------------------------------------------


def test_an_agent_that_deregisters_is_revoked_at_once(agent, django_capture_on_commit_callbacks):
    (waiting,) = message_enqueue(node_ids=[agent.node_id], kind=protocol.MESSAGE_PING, payload={})
    with django_capture_on_commit_callbacks() as signals:
        response = agent.post(protocol.DEREGISTER_PATH, {})
    assert response.status_code == 200
    assert response.json() == {"status": "Deregistered"}
    assert len(signals) == 2  # the agent's websocket is revoked; the dashboards hear of it
    node = node_of(agent)
    assert node.status == NodeStatus.DEREGISTERED and node.deregistered_at is not None
    waiting.refresh_from_db()
    assert waiting.state == MessageState.CANCELLED
    assert AuditEvent.objects.get(action="ssm:DeregisterManagedInstance").principal == (
        f"agent:{agent.node_id}"
    )
    assert agent.heartbeat().status_code == 403
