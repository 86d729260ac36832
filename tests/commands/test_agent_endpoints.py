"""The agent's Run Command endpoints: output uploads and `{{ssm-secure:…}}` values at run time.

Every request is signed by a registered test agent, over Django's test client."""

from __future__ import annotations

import json
import logging

import pytest
from bosun_agent import protocol

from access.authorization import Principal
from access.models import ManagedPolicy
from audit.models import AuditEvent
from commands.models import Command, OutputChunk
from fleet.models import NodeMessage
from fleet.protocol.messages import message_enqueue
from parameters.services import parameter_delete, parameter_put
from tests.commands.runs import (
    agents_register,
    chunk,
    committing,
    fetch,
    reply,
    result,
    send,
    start,
    upload,
)
from tests.factories import user_with_policy
from tests.fleet.protocol.agents import Agent

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Value-42"
SECURE_PATH = protocol.SECURE_PARAMETERS_PATH


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def command(admin, agent) -> Command:
    return send(admin, instance_ids=[agent.node_id])


@pytest.fixture
def running(agent, command) -> str:
    return start(agent)["message_id"]


@pytest.fixture
def stranger(activation) -> Agent:
    """Another registered node's agent."""
    [other] = agents_register(activation, 1)
    return other


def refusal(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code
    return body["message"]


# --- Output ---------------------------------------------------------------------------------


def test_an_upload_stores_its_chunks_and_says_how_many(agent, running):
    response = upload(agent, running, [chunk(0, "a"), chunk(0, "b", stream="stderr")])
    assert response.status_code == 200
    assert response.json() == {"stored": 2}
    assert OutputChunk.objects.count() == 2


def test_an_upload_sent_again_changes_nothing(agent, running):
    chunks = [chunk(0, "hello "), chunk(6, "world")]
    upload(agent, running, chunks)
    again = upload(agent, running, chunks)
    assert again.status_code == 200
    assert sorted(OutputChunk.objects.values_list("offset", "data")) == [
        (0, "hello "),
        (6, "world"),
    ]


def test_empty_chunks_are_accepted_and_not_stored(agent, running):
    response = upload(agent, running, [chunk(0, "")])
    assert response.json() == {"stored": 0}
    assert upload(agent, running, []).json() == {"stored": 0}
    assert not OutputChunk.objects.exists()


@pytest.mark.parametrize(
    ("chunks", "field"),
    [
        (None, "chunks"),
        ("text", "chunks"),
        ([chunk(0, "x")] * 65, "chunks"),
        (["x"], "chunks[0]"),
        ([chunk(0, "x"), {"stream": "stdout", "offset": 0, "data": "x"}], "chunks[1].step"),
        ([{**chunk(0, "x"), "step": True}], "chunks[0].step"),
        ([{**chunk(0, "x"), "step": -1}], "chunks[0].step"),
        ([{**chunk(0, "x"), "step": 100}], "chunks[0].step"),
        ([{**chunk(0, "x"), "step": "0"}], "chunks[0].step"),
        ([{**chunk(0, "x"), "stream": "stdin"}], "chunks[0].stream"),
        ([{**chunk(0, "x"), "offset": -1}], "chunks[0].offset"),
        ([{**chunk(0, "x"), "offset": 2**31}], "chunks[0].offset"),
        ([{**chunk(0, "x"), "offset": 1.5}], "chunks[0].offset"),
        ([{**chunk(0, "x"), "offset": False}], "chunks[0].offset"),
        ([{**chunk(0, "x"), "data": 5}], "chunks[0].data"),
        ([{**chunk(0, "x"), "data": None}], "chunks[0].data"),
    ],
)
def test_a_malformed_upload_is_a_bad_request_naming_the_field(agent, running, chunks, field):
    body = {} if chunks is None else {"chunks": chunks}
    response = agent.post(protocol.OUTPUT_PATH.format(message_id=running), body)
    message = refusal(response, 400, protocol.ERROR_BAD_REQUEST)
    assert message.startswith(f"{field}:")
    assert not OutputChunk.objects.exists()


def test_an_upload_arriving_after_the_run_ended_is_accepted_and_dropped(agent, running):
    upload(agent, running, [chunk(0, "hello\n")])
    reply(agent, running, result())
    # A delayed duplicate of an upload the reply already covered.
    late = upload(agent, running, [chunk(0, "hello\n"), chunk(6, "more")])
    assert late.status_code == 200
    assert late.json() == {"stored": 0}
    assert not OutputChunk.objects.exists()


def test_a_chunk_over_the_chunk_limit_is_a_bad_request(agent, running):
    data = "x" * (protocol.MAX_OUTPUT_CHUNK_CHARS + 1)
    response = upload(agent, running, [chunk(0, data)])
    # Either the body limit or the chunk limit refuses it; nothing is stored.
    assert response.status_code in (400, 413)
    assert not OutputChunk.objects.exists()


def test_a_chunk_at_the_chunk_limit_is_stored(agent, running):
    response = upload(agent, running, [chunk(0, "x" * (protocol.MAX_OUTPUT_CHUNK_CHARS))])
    assert response.json() == {"stored": 1}


def test_output_for_another_nodes_message_is_not_found(agent, running, stranger):
    message = refusal(upload(stranger, running, [chunk(0, "x")]), 404, protocol.ERROR_NOT_FOUND)
    assert "no command message" in message
    assert not OutputChunk.objects.exists()


@pytest.mark.parametrize("message_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_output_for_an_unknown_message_is_not_found(agent, running, message_id):
    refusal(upload(agent, message_id, [chunk(0, "x")]), 404, protocol.ERROR_NOT_FOUND)


def test_output_for_a_message_that_is_not_a_command_is_not_found(agent):
    with committing():
        [ping] = message_enqueue(node_ids=[agent.node_id], kind=protocol.MESSAGE_PING, payload={})
    response = upload(agent, str(ping.message_id), [chunk(0, "x")])
    refusal(response, 404, protocol.ERROR_NOT_FOUND)


def test_an_unsigned_upload_is_refused(agent, running):
    response = agent.client.post(
        protocol.OUTPUT_PATH.format(message_id=running),
        data=json.dumps({"chunks": [chunk(0, "x")]}),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert not OutputChunk.objects.exists()


def test_agent_endpoints_take_post_only(agent, running):
    response = agent.client.get(protocol.OUTPUT_PATH.format(message_id=running))
    assert response.status_code == 405
    assert agent.client.get(SECURE_PATH).status_code == 405


# --- Secure parameters ----------------------------------------------------------------------

# May send commands and read (and decrypt) the /db/ parameters.
SENDER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["ssm:SendCommand"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": "arn:aws:ssm:*:*:parameter/db/*",
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"},
    ],
}


def without(action: str) -> dict:
    statements = [s for s in SENDER_POLICY["Statement"] if action not in s["Action"]]
    return {**SENDER_POLICY, "Statement": statements}


@pytest.fixture
def secret(admin):
    parameter_put(principal=admin, name="/db/password", value=SECRET, parameter_type="SecureString")
    parameter_put(principal=admin, name="/db/user", value="app", parameter_type="SecureString")


@pytest.fixture
def sender(db):
    return user_with_policy("sam", SENDER_POLICY)


def send_secret(agent: Agent, user) -> str:
    """Send, as `user`, a command using two secrets; start it; return its message id."""
    send(
        Principal(user=user),
        instance_ids=[agent.node_id],
        parameters={
            "commands": [
                "psql -U {{ssm-secure:/db/user}} -W {{ssm-secure:/db/password}}",
                "echo {{ ssm-secure:/db/password }}",
            ]
        },
    )
    return start(agent)["message_id"]


def ask(agent: Agent, message_id: str, names: list[str] | None = None):
    body = {"message_id": message_id, "names": names or ["/db/password", "/db/user"]}
    return agent.post(SECURE_PATH, body)


def set_policy(user, document: dict) -> None:
    ManagedPolicy.objects.filter(users=user).update(document=json.dumps(document))


def test_the_running_node_gets_the_decrypted_values_its_command_refers_to(agent, secret, sender):
    message_id = send_secret(agent, sender)
    response = ask(agent, message_id)
    assert response.status_code == 200, response.content
    assert response.json() == {"parameters": {"/db/password": SECRET, "/db/user": "app"}}


def test_each_read_is_audited_as_the_sender_from_the_agent(agent, secret, sender):
    message_id = send_secret(agent, sender)
    ask(agent, message_id, ["/db/password"])
    [event] = AuditEvent.objects.filter(action="kms:Decrypt")
    assert (event.principal, event.user_id, event.face) == ("sam", sender.pk, "agent")
    assert event.outcome == "success"
    assert event.source_ip == "127.0.0.1"
    assert any(resource.endswith("parameter/db/password") for resource in event.resources)
    assert SECRET not in event.params_json


def test_the_message_must_have_been_delivered_to_the_node_first(agent, secret, admin):
    send(
        admin,
        instance_ids=[agent.node_id],
        parameters={"commands": ["echo {{ssm-secure:/db/password}}"]},
    )
    waiting = str(NodeMessage.objects.get().message_id)
    message = refusal(ask(agent, waiting, ["/db/password"]), 404, protocol.ERROR_NOT_FOUND)
    assert "is not running" in message
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()


def test_a_leased_message_is_served_as_its_ack_may_not_have_reached_the_server(
    agent, secret, admin
):
    # The agent journals a message before acking it, and runs it even if the ack is lost.
    send(
        admin,
        instance_ids=[agent.node_id],
        parameters={"commands": ["echo {{ssm-secure:/db/password}}"]},
    )
    [leased] = fetch(agent)
    response = ask(agent, leased["message_id"], ["/db/password"])
    assert response.json() == {"parameters": {"/db/password": SECRET}}


def test_a_finished_run_gets_no_values(agent, secret, sender):
    message_id = send_secret(agent, sender)
    reply(agent, message_id, result("Success"))
    refusal(ask(agent, message_id), 404, protocol.ERROR_NOT_FOUND)


def test_another_nodes_run_is_not_found(agent, secret, sender, stranger):
    message_id = send_secret(agent, sender)
    refusal(ask(stranger, message_id), 404, protocol.ERROR_NOT_FOUND)
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()


def test_a_message_that_is_not_a_command_is_not_found(agent, secret):
    with committing():
        [ping] = message_enqueue(
            node_ids=[agent.node_id],
            kind=protocol.MESSAGE_PING,
            payload={"secure_parameters": ["/db/password"]},
        )
    fetch(agent, kind=None)
    agent.post(protocol.ACK_PATH.format(message_id=ping.message_id), {})
    refusal(ask(agent, str(ping.message_id), ["/db/password"]), 404, protocol.ERROR_NOT_FOUND)


@pytest.mark.parametrize("names", [["/db/other"], ["/db/password", "/db/other"], ["/db/pass*"]])
def test_only_names_the_command_refers_to_are_served(agent, secret, sender, names, admin):
    parameter_put(principal=admin, name="/db/other", value="x", parameter_type="SecureString")
    message_id = send_secret(agent, sender)
    message = refusal(ask(agent, message_id, names), 403, protocol.ERROR_ACCESS_DENIED)
    assert "only its own references are served" in message
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()


def test_a_sender_without_kms_decrypt_is_denied_and_the_denial_audited(agent, secret, db):
    # GetParameter suffices to send (the value is not read then); the run needs kms:Decrypt.
    sender = user_with_policy("sam", without("kms:Decrypt"))
    message_id = send_secret(agent, sender)
    refusal(ask(agent, message_id), 403, protocol.ERROR_ACCESS_DENIED)
    [denial] = AuditEvent.objects.filter(action="kms:Decrypt")
    assert (denial.outcome, denial.principal, denial.face) == ("denied", "sam", "agent")


def test_a_sender_who_lost_get_parameter_since_the_send_is_denied(agent, secret, sender):
    message_id = send_secret(agent, sender)
    set_policy(sender, without("ssm:GetParameter"))
    refusal(ask(agent, message_id), 403, protocol.ERROR_ACCESS_DENIED)
    denial = AuditEvent.objects.filter(action="ssm:GetParameter", outcome="denied").get()
    assert (denial.principal, denial.face) == ("sam", "agent")
    assert not AuditEvent.objects.filter(action="kms:Decrypt", outcome="success").exists()


def test_a_deactivated_sender_can_no_longer_have_secrets_read(agent, secret, sender):
    message_id = send_secret(agent, sender)
    sender.is_active = False
    sender.save()
    message = refusal(ask(agent, message_id), 403, protocol.ERROR_ACCESS_DENIED)
    assert "sender" in message


def test_a_parameter_deleted_since_the_send_is_parameter_not_found(agent, secret, sender, admin):
    message_id = send_secret(agent, sender)
    parameter_delete(principal=admin, name="/db/user")
    message = refusal(ask(agent, message_id), 400, protocol.ERROR_PARAMETER_NOT_FOUND)
    assert "/db/user" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"names": ["/db/password"]}, "message_id"),
        ({"message_id": 5, "names": ["/db/password"]}, "message_id"),
        ({"message_id": "x" * 65, "names": ["/db/password"]}, "message_id"),
        ({"message_id": "MID"}, "names"),
        ({"message_id": "MID", "names": []}, "names"),
        ({"message_id": "MID", "names": "/db/password"}, "names"),
        ({"message_id": "MID", "names": ["/db/password"] * 51}, "names"),
        ({"message_id": "MID", "names": [5]}, "names"),
        ({"message_id": "MID", "names": [""]}, "names"),
        ({"message_id": "MID", "names": ["/" + "x" * 2048]}, "names"),
    ],
)
def test_a_malformed_secure_parameters_request_is_a_bad_request(agent, secret, sender, body, field):
    message_id = send_secret(agent, sender)
    if body.get("message_id") == "MID":
        body = {**body, "message_id": message_id}
    message = refusal(agent.post(SECURE_PATH, body), 400, protocol.ERROR_BAD_REQUEST)
    assert message.startswith(f"{field}:")


def test_an_unsigned_secure_parameters_request_is_refused(agent, secret, sender):
    message_id = send_secret(agent, sender)
    response = agent.client.post(
        SECURE_PATH,
        data=json.dumps({"message_id": message_id, "names": ["/db/password"]}),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert SECRET not in response.content.decode()


def test_the_secret_never_reaches_the_logs(agent, secret, sender, stranger, caplog):
    with caplog.at_level(logging.DEBUG):
        message_id = send_secret(agent, sender)
        ask(agent, message_id)
        ask(stranger, message_id)
        ask(agent, message_id, ["/db/nope"])
        reply(agent, message_id, result("Success"))
        ask(agent, message_id)
    assert caplog.records  # the refusals above were logged
    assert SECRET not in caplog.text
    for event in AuditEvent.objects.all():
        assert SECRET not in event.params_json
    assert not any(SECRET in json.dumps(m.payload) for m in NodeMessage.objects.all())
