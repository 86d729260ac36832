"""The per-node message queue: fetch under a lease, redelivery, ack, first reply wins."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from bosun_agent import protocol
from django.utils import timezone

from fleet.models import MessageState, NodeMessage
from fleet.protocol import messages
from fleet.protocol.messages import message_enqueue, register_reply_handler
from tests.fleet.protocol.agents import Agent, facts_of


def enqueue(agent: Agent, kind: str = protocol.MESSAGE_PING, **fields) -> NodeMessage:
    (message,) = message_enqueue(node_ids=[agent.node_id], kind=kind, payload={"n": 1}, **fields)
    return message


def fetch(agent: Agent, count: int = 10) -> list[dict]:
    response = agent.post(protocol.FETCH_PATH, {"max": count})
    assert response.status_code == 200, response.content
    return response.json()["messages"]


def test_enqueued_messages_wake_the_agents_after_commit(
    agent, activation, django_capture_on_commit_callbacks
):
    other = Agent()
    other.register(*activation)
    with django_capture_on_commit_callbacks() as wakes:
        created = message_enqueue(
            node_ids=[agent.node_id, other.node_id, agent.node_id],
            kind=protocol.MESSAGE_PING,
            payload={},
            created_by_arn="arn:aws:iam::000000000000:user/ada",
        )
    assert len(created) == 2  # one per node, however often named
    assert len(wakes) == 1


def test_a_fetch_leases_the_oldest_messages_first(agent):
    first, second, third = (enqueue(agent) for _ in range(3))
    leased = fetch(agent, 2)
    assert [m["message_id"] for m in leased] == [str(first.message_id), str(second.message_id)]
    assert leased[0] == {
        "message_id": str(first.message_id),
        "kind": protocol.MESSAGE_PING,
        "payload": {"n": 1},
        "created_at": int(first.created_at.timestamp()),
        "lease_seconds": protocol.LEASE_SECONDS,
        "delivery_count": 1,
    }
    first.refresh_from_db()
    assert first.state == MessageState.LEASED and first.lease_expires_at > timezone.now()
    assert [m["message_id"] for m in fetch(agent)] == [str(third.message_id)]
    assert fetch(agent) == []


def test_a_message_not_acked_within_its_lease_is_delivered_again(agent):
    message = enqueue(agent)
    fetch(agent)
    NodeMessage.objects.filter(pk=message.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert agent.heartbeat().json()["pending_messages"] == 1
    (again,) = fetch(agent)
    assert again["delivery_count"] == 2


def test_a_restarted_agent_reclaims_what_its_previous_run_leased_and_never_acked(agent):
    leased, acked = enqueue(agent), enqueue(agent)
    fetch(agent)
    agent.post(protocol.ACK_PATH.format(message_id=acked.message_id), {})
    assert fetch(agent) == []  # the lease holds for an ordinary fetch
    response = agent.post(protocol.FETCH_PATH, {"max": 10, "reclaim": True})
    (again,) = response.json()["messages"]
    assert again["message_id"] == str(leased.message_id)
    assert again["delivery_count"] == 2


def test_reclaim_must_be_true_or_false(agent):
    response = agent.post(protocol.FETCH_PATH, {"max": 10, "reclaim": "yes"})
    assert response.status_code == 400
    assert "reclaim" in response.json()["message"]


def test_an_acked_message_is_not_delivered_again_and_acks_are_idempotent(agent):
    message = enqueue(agent)
    fetch(agent)
    path = protocol.ACK_PATH.format(message_id=message.message_id)
    assert agent.post(path, {}).json() == {"message_id": str(message.message_id), "state": "acked"}
    assert agent.post(path, {}).json()["state"] == "acked"
    NodeMessage.objects.filter(pk=message.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert fetch(agent) == []


def test_a_message_past_its_deadline_expires_instead_of_being_delivered(agent):
    late = enqueue(agent, deliver_before=timezone.now() - timedelta(seconds=1))
    on_time = enqueue(agent, deliver_before=timezone.now() + timedelta(minutes=5))
    assert [m["message_id"] for m in fetch(agent)] == [str(on_time.message_id)]
    late.refresh_from_db()
    assert late.state == MessageState.EXPIRED


def test_a_withdrawn_message_is_refused_at_ack_so_the_agent_does_not_run_it(agent):
    message = enqueue(agent)
    fetch(agent)
    NodeMessage.objects.filter(pk=message.pk).update(state=MessageState.CANCELLED)
    response = agent.post(protocol.ACK_PATH.format(message_id=message.message_id), {})
    assert response.status_code == 404
    assert "withdrawn" in response.json()["message"]


def test_the_first_terminal_reply_wins(agent):
    message = enqueue(agent)
    fetch(agent)
    path = protocol.REPLY_PATH.format(message_id=message.message_id)
    first = agent.post(path, {"status": "Success", "result": {"pong": True}})
    second = agent.post(path, {"status": "Failed", "result": {"error": "late"}})
    assert first.json() == {
        "message_id": str(message.message_id),
        "state": "succeeded",
        "accepted": True,
    }
    assert second.json() == {
        "message_id": str(message.message_id),
        "state": "succeeded",
        "accepted": False,
    }
    message.refresh_from_db()
    assert message.result == {"pong": True}
    assert message.completed_at is not None


def test_a_failed_reply_is_recorded_as_failed(agent):
    message = enqueue(agent)
    path = protocol.REPLY_PATH.format(message_id=message.message_id)
    assert agent.post(path, {"status": "Failed", "result": {}}).json()["state"] == "failed"


@pytest.mark.parametrize(
    "body, named",
    [
        ({"status": "Done", "result": {}}, "status"),
        ({"status": "Success", "result": [1]}, "result"),
    ],
)
def test_a_malformed_reply_is_a_400(agent, body, named):
    message = enqueue(agent)
    response = agent.post(protocol.REPLY_PATH.format(message_id=message.message_id), body)
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_another_nodes_message_is_not_found(agent, activation):
    other = Agent()
    other.register(*activation)
    theirs = enqueue(other)
    for template in (protocol.ACK_PATH, protocol.REPLY_PATH):
        path = template.format(message_id=theirs.message_id)
        response = agent.post(path, {"status": "Success", "result": {}})
        assert response.status_code == 404
        assert response.json()["error"] == protocol.ERROR_NOT_FOUND
    theirs.refresh_from_db()
    assert theirs.state == MessageState.PENDING


@pytest.mark.parametrize("message_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_message_is_not_found(agent, message_id):
    response = agent.post(protocol.ACK_PATH.format(message_id=message_id), {})
    assert response.status_code == 404


@pytest.mark.parametrize("count", [0, protocol.MAX_FETCH + 1, "3", True])
def test_a_fetch_outside_its_bounds_is_a_400(agent, count):
    response = agent.post(protocol.FETCH_PATH, {"max": count})
    assert response.status_code == 400
    assert "max" in response.json()["message"]


def test_a_refresh_host_facts_reply_stores_the_facts(agent):
    message = enqueue(agent, kind=protocol.MESSAGE_REFRESH_HOST_FACTS)
    facts = facts_of(hostname="renamed", kernel_version="6.12.0")
    path = protocol.REPLY_PATH.format(message_id=message.message_id)
    assert agent.post(path, {"status": "Success", "result": {"facts": facts}}).json()["accepted"]
    node = message.node
    node.refresh_from_db()
    assert (node.hostname, node.kernel_version) == ("renamed", "6.12.0")


def test_a_refresh_host_facts_reply_with_malformed_facts_is_kept_but_stores_nothing(agent):
    message = enqueue(agent, kind=protocol.MESSAGE_REFRESH_HOST_FACTS)
    path = protocol.REPLY_PATH.format(message_id=message.message_id)
    body = {"status": "Success", "result": {"facts": {"hostname": 42}}}
    assert agent.post(path, body).json()["accepted"] is True
    message.node.refresh_from_db()
    assert message.node.hostname == "web-1"


def test_later_apps_hook_replies_of_their_kinds(agent, monkeypatch):
    seen: list[NodeMessage] = []
    monkeypatch.setattr(messages, "_REPLY_HANDLERS", dict(messages._REPLY_HANDLERS))
    register_reply_handler("aws:runShellScript", seen.extend)
    message = enqueue(agent, kind="aws:runShellScript")
    path = protocol.REPLY_PATH.format(message_id=message.message_id)
    agent.post(path, {"status": "Success", "result": {"stdout": "hi"}})
    agent.post(path, {"status": "Success", "result": {"stdout": "again"}})
    assert [(m.message_id, m.state, m.result) for m in seen] == [
        (message.message_id, MessageState.SUCCEEDED, {"stdout": "hi"})
    ]
