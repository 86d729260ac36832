"""The AWS endpoint end to end: boto3 sends AWS-RunShellScript to a real agent and waits with
the `CommandExecuted` waiter boto3 ships, as scripts written for AWS do."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.support import Agents, Stack

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def ssm(stack: Stack) -> Any:
    """boto3's SSM client with a new access key of the admin, made as an operator would (one
    for the module: a user holds at most two keys, and the stack's REST client has one)."""
    pair = json.loads(stack.manage("createaccesskey", "--user", "admin", "--json").stdout)
    return boto3.client(
        "ssm",
        endpoint_url=stack.url,
        region_name=REGION,
        aws_access_key_id=pair["AccessKeyId"],
        aws_secret_access_key=pair["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


def test_the_command_executed_waiter_sees_a_script_run_on_a_real_agent(ssm: Any, agents: Agents):
    agent = agents.online()

    command = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[agent.node_id],
        Parameters={"commands": ["echo hello"]},
        Comment="waiter",
    )["Command"]
    command_id = command["CommandId"]
    # The waiter's Delay (5 s as boto3 ships it) lowered, its patience kept about the same.
    ssm.get_waiter("command_executed").wait(
        CommandId=command_id,
        InstanceId=agent.node_id,
        WaiterConfig={"Delay": 1, "MaxAttempts": 60},
    )
    got = ssm.get_command_invocation(CommandId=command_id, InstanceId=agent.node_id)

    assert (got["Status"], got["StatusDetails"]) == ("Success", "Success"), got
    assert got["ResponseCode"] == 0
    assert got["StandardOutputContent"] == "hello\n"
    assert got["StandardErrorContent"] == ""
    assert got["PluginName"] == "runShellScript"
    assert got["ExecutionStartDateTime"] and got["ExecutionEndDateTime"]
    assert got["Comment"] == "waiter"
    (listed,) = ssm.list_commands(CommandId=command_id)["Commands"]
    assert (listed["Status"], listed["CompletedCount"], listed["ErrorCount"]) == ("Success", 1, 0)
    (invocation,) = ssm.list_command_invocations(CommandId=command_id, Details=True)[
        "CommandInvocations"
    ]
    assert invocation["CommandPlugins"][0]["Output"] == "hello\n"


def test_the_waiter_stops_on_a_failed_script(ssm: Any, agents: Agents):
    agent = agents.online()

    command_id = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[agent.node_id],
        Parameters={"commands": ["echo oops >&2", "exit 3"]},
    )["Command"]["CommandId"]
    waiter = ssm.get_waiter("command_executed")
    try:
        waiter.wait(
            CommandId=command_id,
            InstanceId=agent.node_id,
            WaiterConfig={"Delay": 1, "MaxAttempts": 60},
        )
    except Exception as error:  # botocore's WaiterError: a terminal failure state
        assert "terminal failure state" in str(error), error
    else:
        raise AssertionError("the waiter succeeded on a script that exited 3")
    got = ssm.get_command_invocation(CommandId=command_id, InstanceId=agent.node_id)
    assert (got["Status"], got["ResponseCode"]) == ("Failed", 3), got
    assert got["StandardErrorContent"] == "oops\n"
