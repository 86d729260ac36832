"""What the dashboard asks of an agent: refresh its facts, rotate its key — authorized on the
node's ARN and tags, audited, and delivered through the queue or the heartbeat."""

from __future__ import annotations

import pytest
from bosun_agent import protocol

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet.codes import node_arn
from fleet.exceptions import InvalidInstanceId
from fleet.models import ManagedNode, MessageState, NodeStatus
from fleet.protocol.operations import node_refresh_facts_request, node_request_key_rotation
from tests.fleet.protocol.agents import Agent, activation_make


@pytest.fixture
def dev_agent(db) -> Agent:
    agent = Agent()
    agent.register(*activation_make(node_tags=[{"Key": "Env", "Value": "dev"}]))
    return agent


@pytest.fixture
def prod_agent(db) -> Agent:
    agent = Agent()
    agent.register(*activation_make(node_tags=[{"Key": "Env", "Value": "prod"}]))
    return agent


def test_a_facts_refresh_is_queued_for_the_agent_and_audited(
    admin_user, dev_agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as wakes:
        message = node_refresh_facts_request(
            principal=Principal(user=admin_user), node_id=dev_agent.node_id
        )
    assert len(wakes) == 1
    assert message.kind == protocol.MESSAGE_REFRESH_HOST_FACTS
    assert message.state == MessageState.PENDING
    assert message.deliver_before is not None
    assert message.created_by_arn.endswith(":user/ada")
    event = AuditEvent.objects.get(action="bosun:RefreshHostFacts")
    assert event.principal == "ada"
    assert event.resources == [node_arn(dev_agent.node_id)]

    (delivered,) = dev_agent.post(protocol.FETCH_PATH, {"max": 5}).json()["messages"]
    assert delivered["kind"] == protocol.MESSAGE_REFRESH_HOST_FACTS


def test_an_operator_scoped_to_dev_refreshes_dev_nodes_only(operator_user, dev_agent, prod_agent):
    principal = Principal(user=operator_user)
    node_refresh_facts_request(principal=principal, node_id=dev_agent.node_id)
    with pytest.raises(AccessDenied):
        node_refresh_facts_request(principal=principal, node_id=prod_agent.node_id)
    assert AuditEvent.objects.filter(action="ssm:SendCommand", outcome="denied").count() == 1


def test_an_unknown_or_deregistered_node_is_refused_without_telling_a_scoped_user_it_exists(
    admin_user, operator_user, dev_agent
):
    with pytest.raises(InvalidInstanceId):
        node_refresh_facts_request(
            principal=Principal(user=admin_user), node_id="mi-00000000000000000"
        )
    with pytest.raises(AccessDenied):
        node_refresh_facts_request(
            principal=Principal(user=operator_user), node_id="mi-00000000000000000"
        )
    ManagedNode.objects.filter(pk=dev_agent.node_id).update(status=NodeStatus.DEREGISTERED)
    with pytest.raises(InvalidInstanceId):
        node_request_key_rotation(principal=Principal(user=admin_user), node_id=dev_agent.node_id)


def test_a_requested_key_rotation_is_pushed_and_reported_until_done(
    admin_user, dev_agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as pushes:
        node_request_key_rotation(principal=Principal(user=admin_user), node_id=dev_agent.node_id)
    assert len(pushes) == 1
    assert AuditEvent.objects.filter(action="bosun:RequestNodeKeyRotation").count() == 1
    assert dev_agent.heartbeat().json()["rotate_key"] is True

    new_key = protocol.generate_private_key()
    dev_agent.post(
        protocol.ROTATE_KEY_PATH,
        {
            "public_key": protocol.public_key_text(new_key),
            "proof": protocol.key_rotation_proof(new_key, dev_agent.node_id),
        },
    )
    assert dev_agent.heartbeat(key=new_key).json()["rotate_key"] is False


def test_rotating_a_key_needs_its_own_permission(operator_user, outsider_user, dev_agent):
    for user in (operator_user, outsider_user):
        with pytest.raises(AccessDenied):
            node_request_key_rotation(principal=Principal(user=user), node_id=dev_agent.node_id)
    assert ManagedNode.objects.get(pk=dev_agent.node_id).key_rotation_requested_at is None
