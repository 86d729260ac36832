"""Run Command on the AWS endpoint, driven by a real boto3 client (and the aws CLI) against a
live server. No agent runs in this tier: commands go to factory-made nodes and stay pending,
which is enough for their shapes; what an agent reports is written as the results service
stores it, to see it come back as AWS shapes it (the e2e tier runs a real agent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from commands.documents.builtin import builtin_documents_sync
from commands.models import Invocation, InvocationStatus
from tests.aws.conftest import REGION, cli_json
from tests.factories import ManagedNodeFactory, UserFactory

OPEN = ("Pending", "InProgress", "Delayed")


@pytest.fixture(autouse=True)
def builtins(transactional_db):
    builtin_documents_sync()


@pytest.fixture
def nodes(transactional_db) -> list[Any]:
    return [
        ManagedNodeFactory(name="web-1", tags={"Env": "dev"}),
        ManagedNodeFactory(name="web-2", tags={"Env": "dev"}),
        ManagedNodeFactory(name="db-1", tags={"Env": "prod"}),
    ]


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def _send(ssm: Any, node_ids: list[str], *lines: str, **more: Any) -> dict[str, Any]:
    return ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=node_ids,
        Parameters={"commands": list(lines) or ["echo hello"]},
        **more,
    )["Command"]


def _finish(command_id: str, node_id: str, *, code: int = 0, stdout: str = "", stderr: str = ""):
    """What the results service stores when the agent reports the run."""
    started = datetime.now(UTC) - timedelta(seconds=2)
    finished = started + timedelta(seconds=1, milliseconds=250)
    status = InvocationStatus.SUCCESS if code == 0 else InvocationStatus.FAILED

    def stream(text: str) -> dict[str, Any]:
        return {"inline": text, "length": len(text), "inline_cut": False, "dropped_bytes": 0}

    Invocation.objects.filter(command__command_id=command_id, node_id=node_id).update(
        status=status,
        status_details=str(status),
        response_code=code,
        started_at=started,
        finished_at=finished,
        steps=[
            {
                "name": "runShellScript",
                "action": "aws:runShellScript",
                "status": str(status),
                "status_details": str(status),
                "response_code": code,
                "started_at": started.timestamp(),
                "finished_at": finished.timestamp(),
                "stdout": stream(stdout),
                "stderr": stream(stderr),
            }
        ],
    )


# --- SendCommand ----------------------------------------------------------------------------


def test_send_command_to_instance_ids_answers_the_command(ssm, nodes):
    ids = [nodes[0].pk, nodes[1].pk]
    command = _send(ssm, ids, "echo hello", Comment="say hello", TimeoutSeconds=600)

    assert len(command["CommandId"]) == 36
    assert command["DocumentName"] == "Bosun-RunShellScript"
    assert command["DocumentVersion"] == "1"
    assert command["Comment"] == "say hello"
    assert command["Parameters"] == {"commands": ["echo hello"]}
    assert command["InstanceIds"] == ids and command["Targets"] == []
    assert isinstance(command["RequestedDateTime"], datetime)
    assert command["ExpiresAfter"] - command["RequestedDateTime"] == timedelta(seconds=600)
    assert (command["Status"], command["StatusDetails"]) == ("Pending", "Pending")
    assert (command["MaxConcurrency"], command["MaxErrors"]) == ("50", "0")
    assert command["TimeoutSeconds"] == 600
    assert (command["TargetCount"], command["CompletedCount"], command["ErrorCount"]) == (2, 0, 0)
    assert command["DeliveryTimedOutCount"] == 0
    assert command["OutputS3Region"] == REGION
    assert (command["OutputS3BucketName"], command["OutputS3KeyPrefix"]) == ("", "")
    assert command["CloudWatchOutputConfig"] == {
        "CloudWatchLogGroupName": "",
        "CloudWatchOutputEnabled": False,
    }
    # The invocations exist as soon as SendCommand answers (the waiter relies on it).
    for node_id in ids:
        invocation = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=node_id)
        assert invocation["Status"] in OPEN


def test_send_command_by_tag_with_rate_control(ssm, nodes):
    command = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        DocumentVersion="$DEFAULT",
        Targets=[{"Key": "tag:Env", "Values": ["dev"]}],
        Parameters={"commands": ["uptime"], "workingDirectory": ["/srv"]},
        MaxConcurrency="1",
        MaxErrors="10%",
    )["Command"]

    assert command["Targets"] == [{"Key": "tag:Env", "Values": ["dev"]}]
    assert command["InstanceIds"] == []
    assert command["TargetCount"] == 2
    assert (command["MaxConcurrency"], command["MaxErrors"]) == ("1", "10%")
    listed = ssm.list_command_invocations(CommandId=command["CommandId"])["CommandInvocations"]
    assert sorted(item["InstanceId"] for item in listed) == sorted([nodes[0].pk, nodes[1].pk])


def test_send_command_errors(ssm, nodes):
    node_id = nodes[0].pk

    with pytest.raises(ssm.exceptions.InvalidDocument) as raised:
        ssm.send_command(DocumentName="Nothing", InstanceIds=[node_id])
    assert _error(raised) == ("InvalidDocument", "The document Nothing does not exist.")

    with pytest.raises(ssm.exceptions.InvalidDocumentVersion) as raised:
        _send(ssm, [node_id], DocumentVersion="5")
    assert _error(raised) == ("InvalidDocumentVersion", "Bosun-RunShellScript has no version 5.")

    with pytest.raises(ssm.exceptions.InvalidParameters) as raised:
        ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[node_id])
    assert _error(raised)[0] == "InvalidParameters" and "commands" in _error(raised)[1]

    with pytest.raises(ssm.exceptions.InvalidInstanceId) as raised:
        _send(ssm, ["mi-0123456789abcdef0"])
    assert _error(raised) == (
        "InvalidInstanceId",
        "The targets match no managed node you may send commands to (not managed nodes: "
        "mi-0123456789abcdef0). Check the ids, tags or resource group, and that the nodes "
        "are registered.",
    )

    with pytest.raises(ClientError) as raised:
        ssm.send_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=[node_id],
            Targets=[{"Key": "tag:Env", "Values": ["dev"]}],
            Parameters={"commands": ["true"]},
        )
    assert _error(raised) == (
        "ValidationException",
        "Give either InstanceIds or Targets, not both.",
    )

    with pytest.raises(ssm.exceptions.DuplicateInstanceId) as raised:
        _send(ssm, [node_id, node_id])
    assert _error(raised) == (
        "DuplicateInstanceId",
        f"The instance ID {node_id} is given more than once.",
    )

    with pytest.raises(ClientError) as raised:
        _send(ssm, [node_id], OutputS3BucketName="my-bucket")
    assert _error(raised) == (
        "ValidationException",
        "OutputS3BucketName is not supported by Bosun: Bosun keeps each command's output "
        "itself (GetCommandInvocation returns it); leave out OutputS3BucketName, "
        "OutputS3KeyPrefix and OutputS3Region.",
    )
    with pytest.raises(ClientError) as raised:
        _send(ssm, [node_id], CloudWatchOutputConfig={"CloudWatchOutputEnabled": True})
    assert _error(raised)[0] == "ValidationException"


def test_send_command_validation_exceptions_in_aws_words(client_for, admin, nodes):
    # boto3 would refuse these itself: the server must too, in AWS's words.
    unchecked = client_for(admin, parameter_validation=False)
    with pytest.raises(ClientError) as raised:
        _send(unchecked, [nodes[0].pk], TimeoutSeconds=10, MaxConcurrency="0")
    assert _error(raised) == (
        "ValidationException",
        "2 validation errors detected: Value '10' at 'timeoutSeconds' failed to satisfy "
        "constraint: Member must have value greater than or equal to 30; Value '0' at "
        "'maxConcurrency' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$",
    )


def test_an_unauthorized_caller_is_denied(client_for, nodes):
    nobody = client_for(UserFactory(username="nobody"))

    with pytest.raises(ClientError) as raised:
        _send(nobody, [nodes[0].pk])
    code, message = _error(raised)
    assert code == "AccessDeniedException"
    assert message.startswith("User nobody is not authorized to perform ssm:SendCommand")

    with pytest.raises(ClientError) as raised:
        nobody.list_commands()
    assert _error(raised) == (
        "AccessDeniedException",
        "User nobody is not authorized to perform ssm:ListCommands on resource *",
    )


# --- ListCommands ---------------------------------------------------------------------------


def test_list_commands_pages_newest_first(ssm, nodes):
    sent = [_send(ssm, [nodes[0].pk], f"echo {n}")["CommandId"] for n in range(3)]

    pages = list(ssm.get_paginator("list_commands").paginate(PaginationConfig={"PageSize": 2}))

    assert [len(page["Commands"]) for page in pages] == [2, 1]
    listed = [command["CommandId"] for page in pages for command in page["Commands"]]
    assert listed == list(reversed(sent))
    first = pages[0]["Commands"][0]
    assert first["DocumentName"] == "Bosun-RunShellScript"
    assert first["Parameters"] == {"commands": ["echo 2"]}
    assert first["InstanceIds"] == [nodes[0].pk]


def test_list_commands_filters(ssm, nodes):
    first = _send(ssm, [nodes[0].pk])["CommandId"]
    second = _send(ssm, [nodes[1].pk])["CommandId"]

    def ids(**kwargs: Any) -> list[str]:
        return [command["CommandId"] for command in ssm.list_commands(**kwargs)["Commands"]]

    assert ids(CommandId=first) == [first]
    assert ids(InstanceId=nodes[1].pk) == [second]
    assert ids(Filters=[{"key": "DocumentName", "value": "AWS-RunShellScript"}]) == [
        second,
        first,
    ]
    assert ids(Filters=[{"key": "DocumentName", "value": "Bosun-RunPowerShellScript"}]) == []
    assert ids(Filters=[{"key": "ExecutionStage", "value": "Executing"}]) == [second, first]
    assert ids(Filters=[{"key": "ExecutionStage", "value": "Complete"}]) == []
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(Filters=[{"key": "InvokedAfter", "value": future}]) == []
    assert ids(Filters=[{"key": "InvokedBefore", "value": future}]) == [second, first]

    with pytest.raises(ssm.exceptions.InvalidCommandId) as raised:
        ssm.list_commands(CommandId="00000000-0000-0000-0000-000000000000")
    assert _error(raised) == (
        "InvalidCommandId",
        "There is no command 00000000-0000-0000-0000-000000000000.",
    )
    with pytest.raises(ClientError) as raised:
        ssm.list_commands(Filters=[{"key": "Status", "value": "Sleeping"}])
    assert _error(raised)[0] == "ValidationException"
    with pytest.raises(ClientError) as raised:
        ssm.list_commands(Filters=[{"key": "InvokedAfter", "value": "yesterday"}])
    assert _error(raised) == (
        "ValidationException",
        "yesterday is not a date and time: give one as 2024-01-31T12:00:00Z.",
    )
    with pytest.raises(ssm.exceptions.InvalidNextToken):
        ssm.list_commands(NextToken="forged")


# --- Invocations ----------------------------------------------------------------------------


def test_list_command_invocations_with_details(ssm, nodes):
    command_id = _send(ssm, [nodes[0].pk, nodes[1].pk], "echo hello")["CommandId"]
    _finish(command_id, nodes[0].pk, stdout="hello\n", stderr="careful\n")

    plain = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    # In sending order: the nodes by id.
    assert [item["InstanceId"] for item in plain] == sorted([nodes[0].pk, nodes[1].pk])
    assert all(item["CommandPlugins"] == [] for item in plain)
    by_node = {item["InstanceId"]: item for item in plain}
    done = by_node[nodes[0].pk]
    assert (done["Status"], done["StatusDetails"]) == ("Success", "Success")
    assert done["InstanceName"] == "web-1"
    assert done["DocumentName"] == "Bosun-RunShellScript" and done["DocumentVersion"] == "1"
    assert isinstance(done["RequestedDateTime"], datetime)

    detailed = {
        item["InstanceId"]: item
        for item in ssm.list_command_invocations(CommandId=command_id, Details=True)[
            "CommandInvocations"
        ]
    }
    (plugin,) = detailed[nodes[0].pk]["CommandPlugins"]
    assert plugin["Name"] == "runShellScript"
    assert (plugin["Status"], plugin["ResponseCode"]) == ("Success", 0)
    assert plugin["Output"] == "hello\n\n----------ERROR-------\ncareful\n"
    assert plugin["ResponseFinishDateTime"] > plugin["ResponseStartDateTime"]
    (waiting,) = detailed[nodes[1].pk]["CommandPlugins"]
    assert waiting["Status"] in OPEN and waiting["ResponseCode"] == -1

    # Without a command: every command's invocations, newest first; by node, by status.
    other = _send(ssm, [nodes[0].pk])["CommandId"]
    on_node = ssm.list_command_invocations(InstanceId=nodes[0].pk)["CommandInvocations"]
    assert [item["CommandId"] for item in on_node] == [other, command_id]
    succeeded = ssm.list_command_invocations(Filters=[{"key": "Status", "value": "Success"}])
    assert [item["InstanceId"] for item in succeeded["CommandInvocations"]] == [nodes[0].pk]
    complete = ssm.list_command_invocations(
        CommandId=command_id, Filters=[{"key": "ExecutionStage", "value": "Complete"}]
    )["CommandInvocations"]
    assert [item["InstanceId"] for item in complete] == [nodes[0].pk]
    executing = ssm.list_command_invocations(
        CommandId=command_id, Filters=[{"key": "ExecutionStage", "value": "Executing"}]
    )["CommandInvocations"]
    assert [item["InstanceId"] for item in executing] == [nodes[1].pk]

    pages = list(
        ssm.get_paginator("list_command_invocations").paginate(PaginationConfig={"PageSize": 2})
    )
    assert [len(page["CommandInvocations"]) for page in pages] == [2, 1]

    with pytest.raises(ssm.exceptions.InvalidCommandId):
        ssm.list_command_invocations(CommandId="00000000-0000-0000-0000-000000000000")


def test_get_command_invocation_shows_the_output(ssm, nodes):
    command_id = _send(ssm, [nodes[0].pk], "echo hello")["CommandId"]
    _finish(command_id, nodes[0].pk, stdout="hello\n")

    got = ssm.get_command_invocation(CommandId=command_id, InstanceId=nodes[0].pk)

    assert (got["CommandId"], got["InstanceId"]) == (command_id, nodes[0].pk)
    assert (got["DocumentName"], got["DocumentVersion"]) == ("Bosun-RunShellScript", "1")
    assert got["PluginName"] == "runShellScript"
    assert (got["Status"], got["StatusDetails"], got["ResponseCode"]) == ("Success", "Success", 0)
    assert got["StandardOutputContent"] == "hello\n"
    assert got["StandardErrorContent"] == ""
    assert got["ExecutionElapsedTime"] == "PT1.250S"
    started = datetime.strptime(got["ExecutionStartDateTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
    ended = datetime.strptime(got["ExecutionEndDateTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert ended > started
    by_plugin = ssm.get_command_invocation(
        CommandId=command_id, InstanceId=nodes[0].pk, PluginName="runShellScript"
    )
    assert (by_plugin["Status"], by_plugin["StandardOutputContent"]) == ("Success", "hello\n")

    # The waiter boto3 ships: done at once when it succeeded, a failure when it failed.
    ssm.get_waiter("command_executed").wait(
        CommandId=command_id, InstanceId=nodes[0].pk, WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )
    failing = _send(ssm, [nodes[1].pk], "exit 3")["CommandId"]
    _finish(failing, nodes[1].pk, code=3, stderr="nope\n")
    with pytest.raises(WaiterError) as waited:
        ssm.get_waiter("command_executed").wait(
            CommandId=failing, InstanceId=nodes[1].pk, WaiterConfig={"Delay": 1, "MaxAttempts": 2}
        )
    assert "terminal failure state" in str(waited.value)
    failed = ssm.get_command_invocation(CommandId=failing, InstanceId=nodes[1].pk)
    assert (failed["Status"], failed["ResponseCode"]) == ("Failed", 3)
    assert failed["StandardErrorContent"] == "nope\n"


def test_get_command_invocation_errors(ssm, nodes):
    command_id = _send(ssm, [nodes[0].pk])["CommandId"]
    pending = ssm.get_command_invocation(CommandId=command_id, InstanceId=nodes[0].pk)
    assert pending["Status"] in OPEN
    assert pending["ResponseCode"] == -1
    assert pending["ExecutionStartDateTime"] == "" and pending["StandardOutputContent"] == ""

    with pytest.raises(ssm.exceptions.InvocationDoesNotExist) as raised:
        ssm.get_command_invocation(CommandId=command_id, InstanceId=nodes[2].pk)
    assert _error(raised) == (
        "InvocationDoesNotExist",
        f"Command {command_id} has no invocation on {nodes[2].pk} you may see.",
    )
    with pytest.raises(ssm.exceptions.InvalidCommandId) as raised:
        ssm.get_command_invocation(
            CommandId="00000000-0000-0000-0000-000000000000", InstanceId=nodes[0].pk
        )
    assert _error(raised)[0] == "InvalidCommandId"
    with pytest.raises(ssm.exceptions.InvalidPluginName) as raised:
        ssm.get_command_invocation(
            CommandId=command_id, InstanceId=nodes[0].pk, PluginName="nothing"
        )
    assert _error(raised) == (
        "InvalidPluginName",
        f"Command {command_id} has no step nothing (its steps: runShellScript).",
    )
    with pytest.raises(ClientError) as raised:
        ssm.get_command_invocation(CommandId=command_id, InstanceId="web-1")
    assert _error(raised)[0] == "ValidationException"


# --- CancelCommand --------------------------------------------------------------------------


def test_cancel_command(ssm, nodes):
    command_id = _send(ssm, [nodes[0].pk, nodes[1].pk])["CommandId"]

    assert (
        ssm.cancel_command(CommandId=command_id, InstanceIds=[nodes[1].pk])["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    one = ssm.get_command_invocation(CommandId=command_id, InstanceId=nodes[1].pk)
    assert one["Status"] == "Cancelled"
    ssm.cancel_command(CommandId=command_id)
    invocations = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert {item["Status"] for item in invocations} == {"Cancelled"}
    (command,) = ssm.list_commands(CommandId=command_id)["Commands"]
    assert command["Status"] == "Cancelled"

    with pytest.raises(ssm.exceptions.InvalidCommandId) as raised:
        ssm.cancel_command(CommandId=command_id)
    assert _error(raised) == (
        "InvalidCommandId",
        f"Command {command_id} has already ended (Cancelled); there is nothing left to cancel.",
    )
    with pytest.raises(ssm.exceptions.InvalidCommandId) as raised:
        ssm.cancel_command(CommandId="00000000-0000-0000-0000-000000000000")
    assert _error(raised) == (
        "InvalidCommandId",
        "There is no command 00000000-0000-0000-0000-000000000000.",
    )


# --- The aws CLI ----------------------------------------------------------------------------


def test_the_aws_cli_sends_and_lists_a_command(aws_cli, nodes):
    sent = cli_json(
        aws_cli(
            "ssm",
            "send-command",
            "--document-name",
            "AWS-RunShellScript",
            "--instance-ids",
            nodes[0].pk,
            "--parameters",
            "commands=echo hello",
            "--comment",
            "from the cli",
        )
    )
    command_id = sent["Command"]["CommandId"]
    assert sent["Command"]["Comment"] == "from the cli"
    assert isinstance(sent["Command"]["RequestedDateTime"], int | float)

    listed = cli_json(aws_cli("ssm", "list-commands", "--command-id", command_id))
    assert [command["CommandId"] for command in listed["Commands"]] == [command_id]
    invocation = cli_json(
        aws_cli(
            "ssm",
            "get-command-invocation",
            "--command-id",
            command_id,
            "--instance-id",
            nodes[0].pk,
        )
    )
    assert invocation["Status"] in OPEN
