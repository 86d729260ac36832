"""A first end-to-end pass through the service layer with a protocol-level test agent."""

from __future__ import annotations

from bosun_agent import protocol

from access.authorization import Principal
from commands.models import Command, Invocation
from commands.services.cancel import command_cancel
from commands.services.send import command_send
from commands.services.sweep import commands_sweep


def test_a_command_runs_to_success_through_fetch_ack_and_reply(agent, admin_user, django_capture_on_commit_callbacks):
    principal = Principal(user=admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        command = command_send(
            principal=principal,
            document_name="AWS-RunShellScript",
            parameters={"commands": ["echo hello"]},
            instance_ids=[agent.node_id],
        )
    fetched = agent.post(protocol.FETCH_PATH, {"max": 10}).json()["messages"]
    assert fetched[0]["kind"] == "RunCommand"
    payload = fetched[0]["payload"]
    assert payload["steps"][0]["inputs"]["runCommand"] == ["echo hello"]
    mid = fetched[0]["message_id"]
    assert agent.post(protocol.ACK_PATH.format(message_id=mid), {}).status_code == 200
    assert Invocation.objects.get().status == "InProgress"
    r = agent.post(protocol.OUTPUT_PATH.format(message_id=mid), {"chunks": [{"step": 0, "stream": "stdout", "offset": 0, "data": "hel"}]})
    assert r.json() == {"stored": 1}, r.content
    result = {"command_id": payload["command_id"], "outcome": "Success", "response_code": 0,
              "steps": [{"name": "runShellScript", "action": "aws:runShellScript", "status": "Success",
                         "response_code": 0, "stdout": {"length": 6, "offset": 3, "data": "lo\n", "dropped_bytes": 0},
                         "stderr": {"length": 0, "offset": 0, "data": ""}}]}
    with django_capture_on_commit_callbacks(execute=True):
        r = agent.post(protocol.REPLY_PATH.format(message_id=mid), {"status": "Success", "result": result})
    assert r.json()["accepted"], r.content
    invocation = Invocation.objects.get()
    assert invocation.status == "Success"
    assert invocation.steps[0]["stdout"]["inline"] == "hello\n"
    command.refresh_from_db()
    assert command.status == "Success"
    assert command.completed_count == 1


def test_cancel_and_sweep(agent, admin_user, django_capture_on_commit_callbacks):
    principal = Principal(user=admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        command = command_send(
            principal=principal,
            document_name="Bosun-RunShellScript",
            parameters={"commands": ["sleep 100"]},
            instance_ids=[agent.node_id],
        )
        command_cancel(principal=principal, command_id=command.command_id)
    command.refresh_from_db()
    assert command.status == "Cancelled", command.status
    commands_sweep()
    assert Command.objects.get().status == "Cancelled"
