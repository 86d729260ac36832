from __future__ import annotations

from tests.aws.conftest import cli_json


def test_boto3_puts_and_gets_a_secure_string(ssm):
    put = ssm.put_parameter(Name="/app/db/password", Value="s3cr3t", Type="SecureString")
    assert put["Version"] == 1 and put["Tier"] == "Standard"
    got = ssm.get_parameter(Name="/app/db/password", WithDecryption=True)["Parameter"]
    assert got["Value"] == "s3cr3t" and got["Type"] == "SecureString"
    assert got["ARN"].startswith("arn:aws:ssm:eu-west-1:")


def test_the_aws_cli_gets_a_parameter(ssm, aws_cli):
    ssm.put_parameter(Name="plain", Value="hello", Type="String")
    got = cli_json(aws_cli("ssm", "get-parameter", "--name", "plain"))
    assert got["Parameter"]["Value"] == "hello"
