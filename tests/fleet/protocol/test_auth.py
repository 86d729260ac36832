"""Signed requests: unsigned, stale, replayed, wrongly signed, unknown, revoked or cloned."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from bosun_agent import protocol
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from fleet.models import ManagedNode, NodeEvent, NodeStatus, RequestNonce
from fleet.protocol.auth import request_authenticate, request_nonces_prune
from fleet.protocol.errors import close_code, refusal
from tests.fleet.protocol.agents import Agent


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    answer = response.json()
    assert answer["error"] == code
    assert answer["message"]
    return answer


def test_a_signed_heartbeat_is_answered(agent):
    assert agent.heartbeat().status_code == 200


def test_an_unsigned_request_is_refused_naming_what_is_missing(agent):
    response = agent.client.post(
        protocol.HEARTBEAT_PATH, data=b"{}", content_type="application/json"
    )
    answer = refused(response, 401, protocol.ERROR_SIGNATURE)
    assert protocol.HEADER_SIGNATURE in answer["message"]


@pytest.mark.parametrize(
    "skew", [-protocol.CLOCK_SKEW_SECONDS - 5, protocol.CLOCK_SKEW_SECONDS + 5]
)
def test_a_request_outside_the_clock_window_is_refused_as_expired(agent, skew):
    refused(agent.heartbeat(now=time.time() + skew), 401, protocol.ERROR_STALE)


def test_a_request_within_the_clock_window_is_accepted(agent):
    assert agent.heartbeat(now=time.time() - protocol.CLOCK_SKEW_SECONDS + 5).status_code == 200


def test_a_replayed_request_is_refused(agent):
    nonce = protocol.new_nonce()
    assert agent.heartbeat(nonce=nonce).status_code == 200
    refused(agent.heartbeat(nonce=nonce), 401, protocol.ERROR_REPLAY)


def test_a_request_signed_by_another_key_is_refused(agent):
    refused(agent.heartbeat(key=protocol.generate_private_key()), 401, protocol.ERROR_SIGNATURE)


def test_a_body_changed_after_signing_is_refused(agent):
    headers = agent.headers(protocol.HEARTBEAT_PATH, b'{"agent_version": "0.1.0"}')
    response = agent.client.post(
        protocol.HEARTBEAT_PATH,
        data=b'{"agent_version": "9.9.9"}',
        content_type="application/json",
        headers=headers,
    )
    refused(response, 401, protocol.ERROR_SIGNATURE)


def test_a_signature_for_another_path_is_refused(agent):
    headers = agent.headers(protocol.FACTS_PATH, b"{}")
    response = agent.client.post(
        protocol.DEREGISTER_PATH, data=b"{}", content_type="application/json", headers=headers
    )
    refused(response, 401, protocol.ERROR_SIGNATURE)
    assert ManagedNode.objects.get(pk=agent.node_id).status == NodeStatus.ONLINE


def test_a_failed_signature_leaves_no_nonce_behind(agent):
    agent.heartbeat(key=protocol.generate_private_key())
    assert RequestNonce.objects.count() == 0


@pytest.mark.parametrize("node_id", ["mi-0123456789abcdef0", "i-123", "mi-" + "g" * 17])
def test_an_unknown_node_is_refused(agent, node_id):
    refused(agent.heartbeat(node_id=node_id), 401, protocol.ERROR_UNKNOWN_NODE)


def test_malformed_headers_are_a_bad_request(agent):
    refused(agent.heartbeat(nonce="short"), 400, protocol.ERROR_BAD_REQUEST)
    refused(agent.heartbeat(fingerprint="not-hex"), 400, protocol.ERROR_BAD_REQUEST)


def test_an_unsupported_protocol_header_is_a_426(agent):
    headers = agent.headers(protocol.HEARTBEAT_PATH, b"{}")
    headers[protocol.HEADER_PROTOCOL] = "7"
    response = agent.client.post(
        protocol.HEARTBEAT_PATH, data=b"{}", content_type="application/json", headers=headers
    )
    answer = refused(response, 426, protocol.ERROR_PROTOCOL)
    assert "version 1" in answer["message"]


def test_a_deregistered_node_is_refused_and_told_to_register_again(agent):
    ManagedNode.objects.filter(pk=agent.node_id).update(status=NodeStatus.DEREGISTERED)
    answer = refused(agent.heartbeat(), 403, protocol.ERROR_REVOKED)
    assert "register" in answer["message"]


def test_a_second_machine_with_the_same_identity_is_refused_and_flagged_once(
    agent, django_capture_on_commit_callbacks
):
    clone = Agent(key=agent.key, node_id=agent.node_id)  # the key copied, another machine
    with django_capture_on_commit_callbacks() as published:
        refused(clone.heartbeat(), 409, protocol.ERROR_CLONE)
    refused(clone.heartbeat(), 409, protocol.ERROR_CLONE)

    node = ManagedNode.objects.get(pk=agent.node_id)
    assert node.clone_suspected_at is not None
    assert node.clone_fingerprint == clone.fingerprint
    assert NodeEvent.objects.filter(node=node, kind="clone_suspected").count() == 1
    alert = AuditEvent.objects.get(action="bosun:DetectNodeClone")
    assert alert.outcome == "denied" and alert.error_code == protocol.ERROR_CLONE
    assert len(published) == 1  # the dashboards hear of it
    assert agent.heartbeat().status_code == 200  # the registered machine carries on


def test_a_replay_inside_a_callers_transaction_does_not_poison_it(agent):
    headers = agent.headers(protocol.HEARTBEAT_PATH, b"{}")

    def authenticate():
        return request_authenticate(
            method="POST", path=protocol.HEARTBEAT_PATH, headers=headers, body=b"{}"
        )

    with transaction.atomic():
        authenticate()
        with pytest.raises(protocol.ProtocolError) as replay:
            authenticate()
        assert ManagedNode.objects.filter(pk=agent.node_id).exists()  # still usable
    assert replay.value.code == protocol.ERROR_REPLAY


def test_old_nonces_are_pruned_and_recent_ones_kept(agent):
    agent.heartbeat()
    RequestNonce.objects.create(
        node_id=agent.node_id, nonce="0" * 32, seen_at=timezone.now() - timedelta(minutes=11)
    )
    assert request_nonces_prune() == 1
    assert RequestNonce.objects.count() == 1


@pytest.mark.parametrize(
    "code, close",
    [
        (protocol.ERROR_BAD_REQUEST, protocol.CLOSE_BAD_REQUEST),
        (protocol.ERROR_STALE, protocol.CLOSE_UNAUTHORIZED),
        (protocol.ERROR_REVOKED, protocol.CLOSE_DEREGISTERED),
        (protocol.ERROR_CLONE, protocol.CLOSE_CLONE),
        (protocol.ERROR_PROTOCOL, protocol.CLOSE_PROTOCOL),
    ],
)
def test_each_refusal_has_its_websocket_close_code(code, close):
    assert close_code(refusal(code, "no")) == close
