"""Registering through a hybrid activation: the one unsigned request, refused cleanly."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from bosun_agent import protocol

from audit.models import AuditEvent
from fleet.models import Activation, ManagedNode, NodeEvent, NodeStatus
from tests.fleet.protocol.agents import Agent, activation_make, encoded, facts_of


def post_register(body: dict | bytes, agent: Agent | None = None):
    client = (agent or Agent()).client
    return client.post(protocol.REGISTER_PATH, data=encoded(body), content_type="application/json")


def assert_nothing_registered(activation: Activation, uses: int = 0) -> None:
    assert ManagedNode.objects.count() == uses
    activation.refresh_from_db()
    assert activation.registrations_count == uses


def test_a_registration_creates_an_online_node_with_its_key_facts_and_tags(db):
    activation, code = activation_make(
        limit=2, node_tags=[{"Key": "Env", "Value": "dev"}], is_local=True
    )
    agent = Agent()

    response = agent.register(activation, code, name="db-7", tags={"Team": "ops"})

    assert response.status_code == 201
    answer = response.json()
    assert answer["protocol"] == protocol.PROTOCOL_VERSION
    assert answer["name"] == "db-7"
    assert answer["heartbeat_interval"] == 60
    assert isinstance(answer["server_time"], int)
    node = ManagedNode.objects.get(pk=answer["node_id"])
    assert node.pk.startswith("mi-") and len(node.pk) == 20
    assert node.status == NodeStatus.ONLINE
    assert node.last_seen_at is not None
    assert node.public_key == protocol.public_key_text(agent.key)
    assert node.fingerprint == agent.fingerprint
    assert node.is_local is True
    assert node.activation_id == activation.pk
    assert (node.hostname, node.platform_name, node.architecture) == (
        "web-1",
        "Debian GNU/Linux",
        "x86_64",
    )
    assert node.ip_address == "10.0.0.5"
    assert node.ip_addresses == ["10.0.0.5", "fe80::1"]  # the zone is no part of the address
    assert node.facts["python_version"] == "3.11.7"
    assert dict(node.tags.values_list("key", "value")) == {"Env": "dev", "Team": "ops"}
    activation.refresh_from_db()
    assert activation.registrations_count == 1
    assert NodeEvent.objects.filter(node=node, kind="registered").exists()
    event = AuditEvent.objects.get(action="bosun:RegisterNode")
    assert event.principal == f"agent:{node.pk}"
    assert code not in event.params_json


def test_the_name_is_the_agents_else_the_activations_default_else_the_hostname(db):
    named, code = activation_make(default_instance_name="lab-node")
    assert Agent().register(named, code).json()["name"] == "lab-node"
    plain, code = activation_make()
    assert Agent().register(plain, code).json()["name"] == "web-1"
    assert Agent().register(plain, code, name="mine").json()["name"] == "mine"


def test_an_agent_may_add_tags_but_not_change_the_activations(db):
    activation, code = activation_make(node_tags=[{"Key": "Env", "Value": "prod"}])
    response = Agent().register(activation, code, tags={"Env": "dev", "Role": "web"})
    node = ManagedNode.objects.get(pk=response.json()["node_id"])
    assert dict(node.tags.values_list("key", "value")) == {"Env": "prod", "Role": "web"}


def test_an_unknown_activation_and_a_wrong_code_get_one_identical_answer(activation):
    known, code = activation
    wrong_code = post_register(Agent().registration(known, code[:-1] + "?"))
    unknown = Agent().registration(known, code)
    unknown["activation_id"] = "00000000-0000-4000-8000-000000000000"
    unknown_id = post_register(unknown)
    assert wrong_code.status_code == unknown_id.status_code == 403
    assert wrong_code.json() == unknown_id.json()
    assert wrong_code.json()["error"] == protocol.ERROR_ACTIVATION
    assert_nothing_registered(known)


def test_a_deleted_activation_registers_nothing(activation):
    known, code = activation
    body = Agent().registration(known, code)
    known.delete()
    response = post_register(body)
    assert response.status_code == 403
    assert response.json()["error"] == protocol.ERROR_ACTIVATION
    assert ManagedNode.objects.count() == 0


def test_an_expired_activation_is_refused(db):
    activation, code = activation_make(expires_in=timedelta(seconds=-1))
    response = Agent().register(activation, code)
    assert response.status_code == 403
    assert response.json()["error"] == protocol.ERROR_ACTIVATION_EXPIRED
    assert_nothing_registered(activation)


def test_an_exhausted_activation_is_refused_after_its_limit(db):
    activation, code = activation_make(limit=2)
    assert Agent().register(activation, code).status_code == 201
    assert Agent().register(activation, code).status_code == 201
    response = Agent().register(activation, code)
    assert response.status_code == 403
    assert response.json()["error"] == protocol.ERROR_ACTIVATION_EXHAUSTED
    assert_nothing_registered(activation, uses=2)


def test_expiry_and_limits_are_told_only_to_holders_of_the_code(db):
    activation, _ = activation_make(expires_in=timedelta(seconds=-1))
    response = Agent().register(activation, "not-the-code")
    assert response.json()["error"] == protocol.ERROR_ACTIVATION


MALFORMED = {
    "a missing activation id": ({"activation_id": None}, "activation_id"),
    "a numeric code": ({"activation_code": 123}, "activation_code"),
    "a public key that is not base64": ({"public_key": "not base64!"}, "public_key"),
    "a public key of the wrong length": ({"public_key": "AAAA"}, "public_key"),
    "a short fingerprint": ({"fingerprint": "abc123"}, "fingerprint"),
    "a fingerprint that is not hex": ({"fingerprint": "z" * 32}, "fingerprint"),
    "a long name": ({"name": "n" * 257}, "name"),
    "a name with a newline": ({"name": "a\nb"}, "name"),
    "tags as a list": ({"tags": [{"Key": "Env"}]}, "tags"),
    "a reserved tag key": ({"tags": {"aws:x": "y"}}, "tags"),
    "a tag value with a tab": ({"tags": {"Env": "a\tb"}}, "tags"),
    "51 tags": ({"tags": {f"k{n}": "v" for n in range(51)}}, "tags"),
    "facts as a string": ({"facts": "linux"}, "facts"),
    "a hostname that is a number": ({"facts": facts_of(hostname=5)}, "facts.hostname"),
    "a bad IP address": ({"facts": facts_of(ip_addresses=["10.0.0.256"])}, "ip_addresses"),
    "65 IP addresses": ({"facts": facts_of(ip_addresses=["10.0.0.1"] * 65)}, "ip_addresses"),
    "33 extra facts": ({"facts": facts_of(**{f"x{n}": n for n in range(33)})}, "facts"),
    "a boolean protocol": ({"protocol": True}, "protocol"),
    "no protocol": ({"protocol": None}, "protocol"),
}


@pytest.mark.parametrize("fields, named", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_registration_is_a_400_naming_the_field(activation, fields, named):
    known, code = activation
    body = {**Agent().registration(known, code), **fields}
    response = post_register({key: value for key, value in body.items() if value is not None})
    assert response.status_code == 400, response.content
    assert response.json()["error"] == protocol.ERROR_BAD_REQUEST
    assert named in response.json()["message"]
    assert_nothing_registered(known)


BAD_BODIES = {
    "not JSON": b"{nope",
    "a JSON array": b"[]",
    "not UTF-8": b'{"a": "\xff"}',
    "NaN": b'{"protocol": NaN}',
    "a NUL character": b'{"protocol": 1, "name": "a\\u0000b"}',
    "a huge number": b'{"protocol": ' + b"9" * 5000 + b"}",
    "deep nesting": b'{"facts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_body_that_is_no_json_object_is_a_400(db, body):
    response = post_register(body)
    assert response.status_code == 400
    assert response.json()["error"] == protocol.ERROR_BAD_REQUEST


def test_an_agent_speaking_another_protocol_version_is_told_which_the_server_speaks(activation):
    response = post_register(Agent().registration(*activation, protocol=2))
    assert response.status_code == 426
    assert response.json()["error"] == protocol.ERROR_PROTOCOL
    assert "version 1" in response.json()["message"]


def test_an_oversized_registration_is_a_413(activation):
    body = Agent().registration(*activation, facts=facts_of(blob="x" * protocol.MAX_BODY_BYTES))
    response = post_register(body)
    assert response.status_code == 413
    assert response.json()["error"] == protocol.ERROR_TOO_LARGE
    assert_nothing_registered(activation[0])


def test_agent_endpoints_answer_405_to_anything_but_post(client, db):
    response = client.get(protocol.REGISTER_PATH)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["error"] == "MethodNotAllowed"


def test_a_refusal_is_logged_without_the_activation_code(activation, caplog):
    known, code = activation
    caplog.set_level("INFO", logger="fleet.protocol")
    post_register(Agent().registration(known, code, fingerprint="nothex"))
    post_register(Agent().registration(known, code[:-1] + "?"))
    assert "refused" in caplog.text
    assert code not in caplog.text and code[:-1] not in caplog.text
    assert json.dumps(code) not in caplog.text
