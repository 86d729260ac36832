"""SecureString values and commands: referred to, never stored; fetched once by the node.

`{{ssm-secure:NAME}}` stays text in everything the server keeps; the agent of the node that
runs the command asks for the value at run time, as the command's sender."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied, BosunError
from commands.services.documents import document_create
from parameters.services import parameter_put
from tests.commands.runs import reply, result, rows, send, start, step, stream
from tests.factories import user_with_policy

pytestmark = pytest.mark.django_db

SECRET = "hunter2-Correct-Horse"
REFERENCE = "{{ssm-secure:/db/password}}"


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def secret(admin):
    parameter_put(principal=admin, name="/db/password", value=SECRET, parameter_type="SecureString")
    parameter_put(principal=admin, name="/db/host", value="db.internal", parameter_type="String")


def everything_stored() -> str:
    """Every row of every app, as dumpdata writes them."""
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue()


def test_a_secure_reference_stays_text_in_the_payload_and_is_listed(admin, agent, secret):
    command = send(
        admin,
        instance_ids=[agent.node_id],
        parameters={
            "commands": [f"psql -h {{{{ssm:/db/host}}}} -W {REFERENCE}", f"echo {REFERENCE}"]
        },
    )
    run_command = command.payload["steps"][0]["inputs"]["runCommand"]
    assert run_command == [f"psql -h db.internal -W {REFERENCE}", f"echo {REFERENCE}"]
    assert command.payload["secure_parameters"] == ["/db/password"]
    assert command.parameters["commands"][0].endswith(REFERENCE)


def test_secure_references_anywhere_in_the_steps_are_listed_once_in_order(admin, agent, secret):
    parameter_put(principal=admin, name="/app/dir", value="/srv", parameter_type="SecureString")
    body = {
        "schemaVersion": "2.2",
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "one",
                "inputs": {
                    "runCommand": ["cat {{ ssm-secure:/app/dir }}"],
                    "workingDirectory": "{{ssm-secure:/app/dir}}",
                },
            },
            {
                "action": "aws:runShellScript",
                "name": "two",
                "inputs": {"runCommand": [f"echo {REFERENCE}", "echo {{ssm-secure:/app/dir}}"]},
            },
        ],
    }
    document_create(principal=admin, name="two-secrets", content=json.dumps(body))
    command = send(admin, document_name="two-secrets", instance_ids=[agent.node_id])
    assert command.payload["secure_parameters"] == ["/app/dir", "/db/password"]
    assert command.payload["steps"][0]["inputs"]["workingDirectory"] == "{{ssm-secure:/app/dir}}"


def test_sending_reads_no_secret(admin, agent, secret):
    send(admin, instance_ids=[agent.node_id], parameters={"commands": [f"echo {REFERENCE}"]})
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()


def test_the_secret_is_stored_nowhere_through_a_whole_run(admin, agent, secret):
    send(
        admin,
        instance_ids=[agent.node_id],
        parameters={"commands": [f"echo {REFERENCE} | wc -c"]},
        comment="uses a secret",
    )
    message = start(agent)
    fetched = agent.post(
        "/agent/v1/commands/secure-parameters",
        {"message_id": message["message_id"], "names": ["/db/password"]},
    )
    assert fetched.json() == {"parameters": {"/db/password": SECRET}}
    # The agent masks the value in output; the run ends.
    body = result(steps=[step(stdout=stream("22\n"))])
    reply(agent, message["message_id"], body)
    stored = everything_stored()
    assert REFERENCE in stored  # the command is there, with its reference...
    assert SECRET not in stored  # ...and the value nowhere
    assert AuditEvent.objects.filter(action="kms:Decrypt", outcome="success").count() == 1


def test_a_missing_secure_parameter_is_refused_before_anything_is_written(admin, agent, secret):
    with pytest.raises(BosunError) as refused:
        send(
            admin,
            instance_ids=[agent.node_id],
            parameters={"commands": ["echo {{ssm-secure:/db/missing}}"]},
        )
    assert refused.value.aws_code == "InvalidParameters"
    assert "/db/missing does not exist" in refused.value.message
    assert rows() == (0, 0, 0)


def test_a_secure_string_behind_a_plain_reference_is_refused(admin, agent, secret):
    with pytest.raises(BosunError) as refused:
        send(
            admin,
            instance_ids=[agent.node_id],
            parameters={"commands": ["echo {{ssm:/db/password}}"]},
        )
    assert "refer to it as {{ssm-secure:/db/password}}" in refused.value.message
    assert rows() == (0, 0, 0)
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()
    assert SECRET not in everything_stored()


def test_a_sender_who_may_not_read_the_secret_may_not_refer_to_it(agent, secret):
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["ssm:SendCommand"], "Resource": "*"}],
    }
    sender = Principal(user=user_with_policy("sid", policy))
    with pytest.raises(AccessDenied):
        send(sender, instance_ids=[agent.node_id], parameters={"commands": [f"echo {REFERENCE}"]})
    assert rows() == (0, 0, 0)
    assert AuditEvent.objects.filter(action="ssm:GetParameter", outcome="denied").exists()


def test_a_versioned_secure_reference_is_served_at_that_version(admin, agent, secret):
    parameter_put(
        principal=admin,
        name="/db/password",
        value="second-value",
        parameter_type="SecureString",
        overwrite=True,
    )
    command = send(
        admin,
        instance_ids=[agent.node_id],
        parameters={"commands": ["echo {{ssm-secure:/db/password:1}}"]},
    )
    assert command.payload["secure_parameters"] == ["/db/password:1"]
    message = start(agent)
    fetched = agent.post(
        "/agent/v1/commands/secure-parameters",
        {"message_id": message["message_id"], "names": ["/db/password:1"]},
    )
    assert fetched.json() == {"parameters": {"/db/password:1": SECRET}}
