"""The AWS endpoint against a live server, driven by a real boto3 client and the real aws CLI.

`live_server` runs Bosun's WSGI application in a thread on the test database; the clients
sign with access keys made through access.services, as a user would in the dashboard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from access.authorization import Principal
from access.services import access_key_create
from tests.factories import UserFactory

REGION = "eu-west-1"
AWS = Path(sys.executable).with_name("aws")


@pytest.fixture
def keys_for(transactional_db) -> Callable[[Any], tuple[str, str]]:
    """`keys_for(user)`: a new access key pair of `user`, made by an administrator."""
    maker = UserFactory(username="keymaker", is_superuser=True)

    def make(user: Any) -> tuple[str, str]:
        access_key, secret = access_key_create(principal=Principal(user=maker), user=user)
        return access_key.access_key_id, secret

    return make


@pytest.fixture
def client_for(live_server, keys_for) -> Callable[..., Any]:
    """`client_for(user)`: a boto3 SSM client signing as `user`, pointed at the live server."""

    def make(user: Any, **options: Any) -> Any:
        key_id, secret = keys_for(user)
        return boto3.client(
            "ssm",
            endpoint_url=live_server.url,
            region_name=options.pop("region", REGION),
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, **options),
        )

    return make


@pytest.fixture
def admin(transactional_db):
    return UserFactory(username="ada", is_superuser=True, is_staff=True)


@pytest.fixture
def ssm(client_for, admin) -> Any:
    """boto3's SSM client as an administrator."""
    return client_for(admin)


@pytest.fixture
def keys(admin, keys_for) -> tuple[str, str]:
    """The administrator's access key (id, secret), for requests signed by hand."""
    return keys_for(admin)


@pytest.fixture
def url(live_server, ssm) -> str:
    """The endpoint (`POST /`), with a String parameter `greeting` ("hello") to read."""
    ssm.put_parameter(Name="greeting", Value="hello", Type="String")
    return live_server.url + "/"


@pytest.fixture
def aws_cli(live_server, keys_for, admin, tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """`aws_cli("ssm", "get-parameter", "--name", "x")`: the aws CLI as the administrator,
    pointed at the live server with AWS_ENDPOINT_URL_SSM; JSON output."""
    key_id, secret = keys_for(admin)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_SSM": live_server.url,
        "AWS_MAX_ATTEMPTS": "1",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(AWS), *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def cli_json(done: subprocess.CompletedProcess) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None
