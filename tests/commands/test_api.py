"""The documents and Run Command REST API: real services behind JSON, errors as {detail, code},
pages behind signed tokens, and invocations driven to the end by a protocol-level agent."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from bosun_agent import protocol
from rest_framework.test import APIClient

from access.authorization import Principal
from access.services import access_key_create
from commands.models import Command, Document, Invocation
from commands.services.documents import document_create
from tests.factories import ManagedNodeFactory, user_with_policy

pytestmark = pytest.mark.django_db

DOCUMENTS = "/api/v1/documents/"
COMMANDS = "/api/v1/commands/"
SHELL = "AWS-RunShellScript"

# Sends to, follows and cancels on Env=dev nodes; reads every document and command record.
DEV_SENDER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:ListCommands", "ssm:ListDocuments"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": [
                "ssm:SendCommand",
                "ssm:GetDocument",
                "ssm:DescribeDocument",
                "ssm:ListCommands",
                "ssm:ListCommandInvocations",
                "ssm:GetCommandInvocation",
                "ssm:CancelCommand",
            ],
            "Resource": ["arn:aws:ssm:*:*:document/*", "arn:aws:ssm:*:*:command/*"],
        },
        {
            "Effect": "Allow",
            "Action": [
                "ssm:SendCommand",
                "ssm:ListCommandInvocations",
                "ssm:GetCommandInvocation",
                "ssm:CancelCommand",
            ],
            "Resource": "arn:aws:ssm:*:*:managed-instance/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        },
    ],
}

GREETING = {
    "schemaVersion": "2.2",
    "description": "Greets someone, then counts.",
    "parameters": {
        "greeting": {"type": "String", "allowedValues": ["hello", "hi"], "default": "hello"},
        "times": {"type": "Integer", "default": 1},
        "name": {"type": "String", "allowedPattern": "^[a-z]+$", "description": "Who."},
    },
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "greet",
            "inputs": {"runCommand": ["echo {{ greeting }} {{ name }}"]},
        },
        {
            "action": "aws:runShellScript",
            "name": "count",
            "inputs": {"runCommand": ["seq {{ times }}"]},
        },
    ],
}
GREETING_YAML = """\
schemaVersion: '2.2'
description: Greets in YAML.
parameters:
  name:
    type: String
    default: world
mainSteps:
  - action: aws:runShellScript
    name: greet
    inputs:
      runCommand:
        - echo hello {{ name }}
"""


# --- Fixtures and helpers -------------------------------------------------------------------


def client_of(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def api(admin_user) -> APIClient:
    return client_of(admin_user)


@pytest.fixture
def dev_sender(db) -> APIClient:
    return client_of(user_with_policy("dora", DEV_SENDER_POLICY))


@pytest.fixture
def outsider(outsider_user) -> APIClient:
    return client_of(outsider_user)


@pytest.fixture
def bearer(admin) -> dict[str, str]:
    key, secret = access_key_create(principal=admin, user=admin.user)
    return {"Authorization": f"Bearer {key.access_key_id}:{secret}"}


@pytest.fixture
def dev_node(db):
    return ManagedNodeFactory(name="dev-web-1", tags={"Env": "dev", "Role": "web"})


@pytest.fixture
def prod_node(db):
    return ManagedNodeFactory(name="prod-web-1", tags={"Env": "prod", "Role": "web"})


@pytest.fixture
def greeting(admin):
    return document_create(
        principal=admin, name="Greeting", content=json.dumps(GREETING), tags={"Team": "ops"}
    ).document


def create(client: APIClient, name: str, body: dict | str = GREETING, **more: Any):
    content = body if isinstance(body, str) else json.dumps(body, indent=2)
    return client.post(DOCUMENTS, {"name": name, "content": content, **more}, format="json")


def send(client: APIClient, **data: Any):
    data.setdefault("document_name", SHELL)
    data.setdefault("parameters", {"commands": ["uptime"]})
    return client.post(COMMANDS, data, format="json")


def error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    return body["detail"]


def run_on_agent(agent, steps: list[dict[str, Any]], capture) -> None:
    """The agent fetches the command, acks it and replies with `steps` (Success)."""
    fetched = agent.post(protocol.FETCH_PATH, {"max": 10}).json()["messages"]
    message_id = fetched[0]["message_id"]
    assert agent.post(protocol.ACK_PATH.format(message_id=message_id), {}).status_code == 200
    result = {
        "command_id": fetched[0]["payload"]["command_id"],
        "outcome": "Success",
        "response_code": 0,
        "steps": steps,
    }
    with capture(execute=True):
        reply = agent.post(
            protocol.REPLY_PATH.format(message_id=message_id),
            {"status": "Success", "result": result},
        )
    assert reply.json()["accepted"], reply.content


def step_report(name: str, stdout: str, stderr: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "action": "aws:runShellScript",
        "status": "Success",
        "response_code": 0,
        "started_at": 1767225600.0,
        "finished_at": 1767225601.5,
        "stdout": {"offset": 0, "data": stdout, "dropped_bytes": 0},
        "stderr": {"offset": 0, "data": stderr, "dropped_bytes": 0},
    }


# --- Authentication -------------------------------------------------------------------------


def test_the_api_needs_credentials(client):
    assert client.get(DOCUMENTS).status_code == 401
    assert client.get(COMMANDS).status_code == 401
    assert client.post(COMMANDS, {}, content_type="application/json").status_code == 401


def test_an_access_key_lists_documents_and_sends_a_command(client, bearer, dev_node):
    listed = client.get(DOCUMENTS, {"owner": "Bosun"}, headers=bearer)
    assert listed.status_code == 200
    assert "Bosun-RunShellScript" in [doc["name"] for doc in listed.json()["results"]]
    sent = client.post(
        COMMANDS,
        {"document_name": SHELL, "parameters": {"commands": ["id"]}, "instance_ids": [dev_node.pk]},
        content_type="application/json",
        headers=bearer,
    )
    assert sent.status_code == 201, sent.content
    assert sent.json()["requested_by"] == "ada"


# --- Documents: list ------------------------------------------------------------------------


def test_the_built_in_documents_are_listed_as_bosuns_with_their_default_version(api):
    body = api.get(DOCUMENTS, {"owner": "Bosun"}).json()
    assert body["next_token"] is None
    shell = next(doc for doc in body["results"] if doc["name"] == "Bosun-RunShellScript")
    assert shell["owner"] == "Bosun"
    assert shell["created_by"] is None
    assert shell["document_type"] == "Command"
    assert shell["document_format"] == "JSON"
    assert shell["schema_version"] == "2.2"
    assert shell["platform_types"] == ["Linux", "MacOS"]
    assert shell["document_version"] == shell["latest_version"] >= 1


def test_documents_are_listed_by_name_a_page_at_a_time(api, admin):
    for name in ("Charlie", "Alpha", "Bravo"):
        create(api, name)
    first = api.get(DOCUMENTS, {"owner": "Self", "max_results": 2}).json()
    assert [doc["name"] for doc in first["results"]] == ["Alpha", "Bravo"]
    assert first["next_token"]
    second = api.get(
        DOCUMENTS, {"owner": "Self", "max_results": 2, "next_token": first["next_token"]}
    ).json()
    assert [doc["name"] for doc in second["results"]] == ["Charlie"]
    assert second["next_token"] is None
    # A token pages only the query it was made for.
    other = api.get(DOCUMENTS, {"owner": "Bosun", "next_token": first["next_token"]})
    assert "next_token" in error(other, 400, "validation_error")


def test_the_search_owner_and_tag_filters_narrow_the_list(api, greeting):
    create(api, "Cleanup", tags={"Team": "dev"})
    names = lambda **q: [doc["name"] for doc in api.get(DOCUMENTS, q).json()["results"]]  # noqa: E731
    assert names(search="greet") == ["Greeting"]
    assert names(owner="Self") == ["Cleanup", "Greeting"]
    assert names(tag="Team=ops") == ["Greeting"]
    listed = api.get(DOCUMENTS, {"tag": "Team=ops"}).json()["results"][0]
    assert listed["tags"] == {"Team": "ops"}
    assert listed["created_by"] == "ada"
    assert listed["owner"] == "Self"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"owner": "Amazon"}, "owner"),
        ({"tag": "Team"}, "tag"),
        ({"max_results": 0}, "max_results"),
        ({"max_results": 51}, "max_results"),
        ({"sort": "name"}, "sort"),
        ({"next_token": "forged"}, "next_token"),
    ],
)
def test_a_bad_document_query_is_a_400_naming_the_parameter(api, params, field):
    detail = error(api.get(DOCUMENTS, params), 400, "validation_error")
    assert detail.startswith(f"{field}:")


# --- Documents: create, get, describe -------------------------------------------------------


def test_a_document_is_created_with_201_and_described(api):
    response = create(api, "Greeting", version_name="first", tags=[{"Key": "Team", "Value": "ops"}])
    assert response.status_code == 201, response.content
    assert response["Location"] == f"{DOCUMENTS}Greeting/"
    body = response.json()
    assert body["name"] == "Greeting"
    assert body["owner"] == "Self"
    assert body["created_by"] == "ada"
    assert (body["document_version"], body["default_version"], body["latest_version"]) == (1, 1, 1)
    assert body["version_name"] == "first"
    assert body["hash_type"] == "Sha256"
    assert len(body["hash"]) == 64
    assert body["status"] == "Active"
    assert body["document_format"] == "JSON"
    assert body["platform_types"] == ["Linux", "MacOS"]
    assert body["tags"] == {"Team": "ops"}
    assert body["parameters"] == [
        {"name": "greeting", "type": "String", "description": "", "default_value": "hello"},
        {"name": "times", "type": "Integer", "description": "", "default_value": 1},
        {"name": "name", "type": "String", "description": "Who.", "default_value": None},
    ]
    described = api.get(f"{DOCUMENTS}Greeting/metadata/").json()
    assert described == body


def test_a_yaml_document_is_read_as_written_or_converted(api):
    created = create(api, "YamlGreeting", GREETING_YAML, document_format="YAML")
    assert created.status_code == 201, created.content
    as_written = api.get(f"{DOCUMENTS}YamlGreeting/").json()
    assert as_written["document_format"] == "YAML"
    assert as_written["content"] == GREETING_YAML
    as_json = api.get(f"{DOCUMENTS}YamlGreeting/", {"format": "JSON"}).json()
    assert as_json["document_format"] == "JSON"
    assert json.loads(as_json["content"]) == yaml.safe_load(GREETING_YAML)


def test_a_json_document_converts_to_yaml_with_format(api, greeting):
    response = api.get(f"{DOCUMENTS}Greeting/", {"format": "YAML"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert yaml.safe_load(response.json()["content"]) == GREETING


def test_the_aws_name_of_a_built_in_reads_the_bosun_document(api):
    body = api.get(f"{DOCUMENTS}{SHELL}/").json()
    assert body["name"] == "Bosun-RunShellScript"
    assert json.loads(body["content"])["mainSteps"][0]["action"] == "aws:runShellScript"


@pytest.mark.parametrize(
    ("content", "document_format", "words"),
    [
        ('{\n  "schemaVersion": "2.2",\n  "mainSteps": [\n}', "JSON", "line 4"),
        ("schemaVersion: '2.2'\nmainSteps:\n  - name: [unclosed\n", "YAML", "line 4"),
        (
            '{\n  "schemaVersion": "2.2",\n  "mainSteps": [\n    {"name": "x", '
            '"action": "aws:runEverything"}\n  ]\n}',
            "JSON",
            "mainSteps[0].action (line 4)",
        ),
    ],
)
def test_malformed_content_is_a_400_naming_the_line(api, content, document_format, words):
    response = create(api, "Broken", content, document_format=document_format)
    assert words in error(response, 400, "invalid_document_content")
    assert not Document.objects.filter(name="Broken").exists()


def test_a_wrong_schema_version_is_its_own_error(api):
    response = create(api, "Old", {**GREETING, "schemaVersion": "1.2"})
    assert "schemaVersion" in error(response, 400, "invalid_document_schema_version")


@pytest.mark.parametrize("name", ["AWS-Mine", "aws-mine", "Bosun-Mine", "Bosun-RunShellScript"])
def test_reserved_document_names_are_refused(api, name):
    assert "reserved" in error(create(api, name), 400, "validation_error")


def test_a_taken_name_is_a_409(api, greeting):
    error(create(api, "Greeting"), 409, "document_already_exists")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "NoContent"}, "content"),
        ({"content": "{}"}, "name"),
        ({"name": "Odd", "content": "{}", "document_format": "TOML"}, "document_format"),
        ({"name": "Odd", "content": "{}", "tags": "Team"}, "tags"),
        ({"name": "Odd", "content": "{}", "tags": {"Team": 3}}, "tags"),
        ({"name": "Odd", "content": "{}", "tags": [{"Name": "x"}]}, "tags"),
        ({"name": "x", "content": "{}"}, "name"),
        ({"name": "Odd", "content": json.dumps(GREETING), "version_name": "a b"}, "version_name"),
    ],
)
def test_a_bad_create_is_a_400_naming_the_field(api, data, field):
    response = api.post(DOCUMENTS, data, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body["detail"] or field in body.get("fields", {}), body


def test_a_body_that_is_not_an_object_is_a_400(api):
    response = api.post(DOCUMENTS, [1, 2], format="json")
    assert error(response, 400, "validation_error") == "The body is a JSON object."


def test_an_unknown_document_or_version_is_a_404(api, greeting):
    error(api.get(f"{DOCUMENTS}Nowhere/"), 404, "invalid_document")
    error(api.get(f"{DOCUMENTS}Nowhere/metadata/"), 404, "invalid_document")
    error(api.get(f"{DOCUMENTS}Nowhere/versions/"), 404, "invalid_document")
    error(api.get(f"{DOCUMENTS}Greeting/", {"version": "7"}), 404, "invalid_document_version")
    error(api.get(f"{DOCUMENTS}Greeting/", {"version": "nope"}), 404, "invalid_document_version")


# --- Documents: versions --------------------------------------------------------------------


def new_version(api: APIClient, name: str, description: str, **more: Any):
    content = json.dumps({**GREETING, "description": description})
    return api.put(f"{DOCUMENTS}{name}/", {"content": content, **more}, format="json")


def test_an_update_writes_the_next_version_from_the_latest_only(api, greeting):
    second = new_version(api, "Greeting", "v2", version_name="second")
    assert second.status_code == 200, second.content
    body = second.json()
    assert (body["document_version"], body["latest_version"], body["default_version"]) == (2, 2, 1)
    assert body["description"] == "v2"
    third = new_version(api, "Greeting", "v3", document_version="2")
    assert third.json()["document_version"] == 3
    stale = new_version(api, "Greeting", "v4", document_version="2")
    assert "not the latest" in error(stale, 404, "invalid_document_version")
    same = new_version(api, "Greeting", "v3")
    error(same, 409, "duplicate_document_content")
    taken = new_version(api, "Greeting", "v5", version_name="second")
    error(taken, 409, "duplicate_document_version_name")
    missing = api.put(f"{DOCUMENTS}Greeting/", {"document_format": "YAML"}, format="json")
    assert error(missing, 400, "validation_error").startswith("content:")


def test_a_version_is_read_by_number_name_latest_and_default(api, greeting):
    new_version(api, "Greeting", "v2", version_name="second")
    version = lambda v: api.get(f"{DOCUMENTS}Greeting/", {"version": v}).json()  # noqa: E731
    assert version("1")["document_version"] == 1
    assert version("second")["document_version"] == 2
    assert version("$LATEST")["document_version"] == 2
    assert version("$DEFAULT")["document_version"] == 1
    assert api.get(f"{DOCUMENTS}Greeting/").json()["document_version"] == 1
    described = api.get(f"{DOCUMENTS}Greeting/metadata/", {"version": "2"}).json()
    assert (described["document_version"], described["version_name"]) == (2, "second")


def test_versions_are_listed_newest_first_a_page_at_a_time(api, greeting):
    for number in (2, 3):
        new_version(api, "Greeting", f"v{number}")
    first = api.get(f"{DOCUMENTS}Greeting/versions/", {"max_results": 2}).json()
    assert [v["document_version"] for v in first["results"]] == [3, 2]
    assert [v["is_default_version"] for v in first["results"]] == [False, False]
    rest = api.get(
        f"{DOCUMENTS}Greeting/versions/", {"max_results": 2, "next_token": first["next_token"]}
    ).json()
    assert [(v["document_version"], v["is_default_version"]) for v in rest["results"]] == [
        (1, True)
    ]
    assert rest["next_token"] is None


def test_the_default_version_is_set_and_then_read_by_default(api, greeting):
    new_version(api, "Greeting", "v2", version_name="second")
    response = api.put(
        f"{DOCUMENTS}Greeting/default-version/", {"document_version": "2"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "name": "Greeting",
        "default_version": 2,
        "default_version_name": "second",
    }
    assert api.get(f"{DOCUMENTS}Greeting/").json()["document_version"] == 2
    unknown = api.put(
        f"{DOCUMENTS}Greeting/default-version/", {"document_version": "9"}, format="json"
    )
    error(unknown, 404, "invalid_document_version")
    empty = api.put(f"{DOCUMENTS}Greeting/default-version/", {}, format="json")
    assert error(empty, 400, "validation_error").startswith("document_version:")


def test_one_version_is_deleted_but_never_the_default(api, greeting):
    new_version(api, "Greeting", "v2", version_name="second")
    new_version(api, "Greeting", "v3")
    error(api.delete(f"{DOCUMENTS}Greeting/?version=1"), 403, "invalid_document_operation")
    assert api.delete(f"{DOCUMENTS}Greeting/?version=second").status_code == 204
    assert api.delete(f"{DOCUMENTS}Greeting/?version=3").status_code == 204
    versions = api.get(f"{DOCUMENTS}Greeting/versions/").json()["results"]
    assert [v["document_version"] for v in versions] == [1]
    assert api.get(f"{DOCUMENTS}Greeting/metadata/").json()["latest_version"] == 1
    error(api.delete(f"{DOCUMENTS}Greeting/?version=8"), 404, "invalid_document_version")


def test_the_whole_document_is_deleted(api, greeting):
    assert api.delete(f"{DOCUMENTS}Greeting/").status_code == 204
    assert not Document.objects.filter(name="Greeting").exists()
    error(api.delete(f"{DOCUMENTS}Greeting/"), 404, "invalid_document")


def test_a_built_in_document_cannot_be_edited(api):
    content = json.dumps(GREETING)
    for response in (
        api.put(f"{DOCUMENTS}{SHELL}/", {"content": content}, format="json"),
        api.put(f"{DOCUMENTS}Bosun-RunShellScript/default-version/", {"document_version": "1"}),
        api.delete(f"{DOCUMENTS}Bosun-RunShellScript/"),
    ):
        assert "read-only" in error(response, 403, "invalid_document_operation")


def test_the_outsider_may_neither_read_nor_write_documents(outsider, greeting):
    error(outsider.get(f"{DOCUMENTS}Greeting/"), 403, "access_denied")
    error(outsider.get(f"{DOCUMENTS}Greeting/metadata/"), 403, "access_denied")
    error(create(outsider, "Mine"), 403, "access_denied")
    error(new_version(outsider, "Greeting", "v2"), 403, "access_denied")
    error(outsider.delete(f"{DOCUMENTS}Greeting/"), 403, "access_denied")
    assert outsider.get(DOCUMENTS).json()["results"] == []


# --- Commands: send -------------------------------------------------------------------------


def test_a_send_answers_201_with_the_command(api, dev_node, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = send(
            api,
            parameters={"commands": ["uptime", "df -h"], "executionTimeout": [600]},
            instance_ids=[dev_node.pk],
            max_concurrency="10%",
            max_errors="1",
            timeout_seconds="120",
            comment="disk check",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    command = Command.objects.get()
    assert response["Location"] == f"{COMMANDS}{command.command_id}/"
    assert body["command_id"] == command.command_id
    assert body["document_name"] == "Bosun-RunShellScript"
    assert body["document_version"] == 1
    assert body["parameters"] == {"commands": ["uptime", "df -h"], "executionTimeout": ["600"]}
    assert body["targets"] == [{"Key": "InstanceIds", "Values": [dev_node.pk]}]
    assert (body["max_concurrency"], body["max_errors"]) == ("10%", "1")
    assert (body["timeout_seconds"], body["comment"]) == (120, "disk check")
    assert (body["target_count"], body["status"]) == (1, "Pending")
    assert body["left_out"] == {"refused": [], "unknown": [], "deregistered": []}
    assert body["requested_by"] == "ada"
    detail = api.get(f"{COMMANDS}{command.command_id}/").json()
    assert detail["counts"] == {"Pending": 1}
    assert detail["status"] == "Pending"


def test_targets_by_tag_reach_the_matching_nodes(api, dev_node, prod_node):
    response = send(api, targets=[{"Key": "tag:Env", "Values": ["dev"]}])
    assert response.status_code == 201, response.content
    assert response.json()["target_count"] == 1
    assert list(Invocation.objects.values_list("node_id", flat=True)) == [dev_node.pk]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"parameters": ["uptime"]}, "parameters"),
        ({"parameters": {"commands": "uptime"}}, "parameters.commands"),
        ({"parameters": {"commands": [["uptime"]]}}, "parameters.commands"),
        ({"parameters": {"commands": [{"run": "uptime"}]}}, "parameters.commands"),
        ({"targets": "tag:Env=dev"}, "targets"),
        ({"targets": [{"Key": "tag:Env"}]}, "targets.0.Values"),
        ({"targets": [{"Key": "tag:Env", "Values": []}]}, "targets.0.Values"),
        ({"targets": [{"Key": "tag:Env", "Values": "dev"}]}, "targets.0.Values"),
        ({"targets": [{"Key": "tag:Env", "Values": ["dev"], "Op": "="}]}, "targets.0.Op"),
        ({"targets": ["tag:Env"]}, "targets.0"),
        ({"instance_ids": "mi-00000000000000001"}, "instance_ids"),
        ({"timeout_seconds": "soon"}, "timeout_seconds"),
        ({"timeout_seconds": 90.5}, "timeout_seconds"),
        ({"timeout_seconds": True}, "timeout_seconds"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"max_errors": ["1"]}, "max_errors"),
        ({"document_name": None}, "document_name"),
        ({"document_version": ""}, "document_version"),
    ],
)
def test_a_send_of_the_wrong_shape_is_a_400_naming_the_field(api, dev_node, data, field):
    response = send(api, **{"instance_ids": [dev_node.pk], **data})
    detail = error(response, 400, "validation_error")
    assert detail.startswith(f"{field}:"), detail
    assert not Command.objects.exists()


def test_a_send_without_a_document_name_names_it(api, dev_node):
    response = api.post(COMMANDS, {"instance_ids": [dev_node.pk]}, format="json")
    assert error(response, 400, "validation_error").startswith("document_name:")


@pytest.mark.parametrize(
    ("data", "status", "code", "words"),
    [
        ({"document_name": "Nowhere"}, 404, "invalid_document", "Nowhere does not exist"),
        ({"document_version": "9"}, 404, "invalid_document_version", "no version 9"),
        ({"document_version": "$LATEST", "parameters": {"name": ["ada"]}}, 201, None, None),
        ({"parameters": {"name": ["ada"], "greeting": ["hey"]}}, 400, "invalid_parameters",
         "greeting: the value must be one of: hello, hi"),
        ({"parameters": {"name": ["Ada"]}}, 400, "invalid_parameters",
         "name: a value does not match the allowed pattern"),
        ({"parameters": {"name": ["ada"], "times": ["twice"]}}, 400, "invalid_parameters",
         "times: 'twice' is not a whole number"),
        ({"parameters": {"name": ["ada"], "times": ["1", "2"]}}, 400, "invalid_parameters",
         "times: a Integer parameter takes exactly one value"),
        ({"parameters": {}}, 400, "invalid_parameters", "name is required"),
        ({"parameters": {"name": ["ada"], "colour": ["red"]}}, 400, "invalid_parameters",
         "colour is not defined"),
        ({"parameters": {"name": ["ada"]}}, 201, None, None),
    ],
)  # fmt: skip
def test_a_send_is_checked_against_the_document(api, dev_node, greeting, data, status, code, words):
    data.setdefault("document_name", "Greeting")
    response = send(api, instance_ids=[dev_node.pk], **data)
    if code is None:
        assert response.status_code == status, response.content
        return
    assert words in error(response, status, code)
    assert not Command.objects.exists()


@pytest.mark.parametrize(
    ("data", "status", "code", "words"),
    [
        ({"max_concurrency": "0"}, 400, "validation_error", "MaxConcurrency '0'"),
        ({"max_concurrency": "101%"}, 400, "validation_error", "MaxConcurrency '101%'"),
        ({"max_concurrency": "abc"}, 400, "validation_error", "MaxConcurrency 'abc'"),
        ({"max_errors": "abc"}, 400, "validation_error", "MaxErrors 'abc'"),
        ({"max_errors": "101%"}, 400, "validation_error", "MaxErrors '101%'"),
        ({"timeout_seconds": 10}, 400, "validation_error", "TimeoutSeconds"),
        ({"comment": "x" * 101}, 400, "validation_error", "at most 100"),
        ({"instance_ids": []}, 400, "validation_error", "Name the nodes"),
        ({"instance_ids": [f"mi-{n:017x}" for n in range(51)]}, 400, "validation_error",
         "51 instance ids given; at most 50"),
        ({"targets": [{"Key": "tag:Env", "Values": ["dev"]}]}, 400, "validation_error",
         "either InstanceIds or Targets"),
        ({"instance_ids": ["i-123"]}, 400, "invalid_target", "not a managed node id"),
        ({"instance_ids": None, "targets": [{"Key": "color", "Values": ["red"]}]}, 400,
         "invalid_target", "unknown key"),
        ({"instance_ids": None, "targets": [{"Key": "tag:Env", "Values": ["qa"]}]}, 400,
         "targets_match_nothing", "match no managed node"),
        ({"instance_ids": ["mi-0123456789abcdef0"]}, 400, "targets_match_nothing",
         "not managed nodes: mi-0123456789abcdef0"),
        ({"instance_ids": None, "targets": [{"Key": "resource-groups:Name", "Values": ["x"]}]},
         404, "resource_group_not_found", "no resource group"),
    ],
)  # fmt: skip
def test_a_send_the_services_refuse_is_rendered_with_its_code(
    api, dev_node, data, status, code, words
):
    data = {"instance_ids": [dev_node.pk], **data}
    if data["instance_ids"] is None:
        del data["instance_ids"]
    assert words in error(send(api, **data), status, code)
    assert not Command.objects.exists()


def test_the_dev_sender_reaches_dev_nodes_and_a_named_prod_node_is_refused(
    dev_sender, dev_node, prod_node
):
    response = send(dev_sender, instance_ids=[dev_node.pk, prod_node.pk])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["target_count"] == 1
    assert body["left_out"]["refused"] == [prod_node.pk]
    assert list(Invocation.objects.values_list("node_id", flat=True)) == [dev_node.pk]


def test_the_dev_sender_is_refused_prod_alone_and_told_why(dev_sender, prod_node):
    detail = error(send(dev_sender, instance_ids=[prod_node.pk]), 400, "targets_match_nothing")
    assert f"not allowed to send to: {prod_node.pk}" in detail


def test_the_dev_sender_targeting_by_tag_reaches_only_dev_nodes(dev_sender, dev_node, prod_node):
    response = send(dev_sender, targets=[{"Key": "tag:Role", "Values": ["web"]}])
    assert response.status_code == 201, response.content
    # Matched by tag, not named: a refused node is left out silently.
    assert response.json()["target_count"] == 1
    assert response.json()["left_out"]["refused"] == []


def test_the_outsider_may_not_send_or_read_commands(outsider, api, dev_node):
    error(send(outsider, instance_ids=[dev_node.pk]), 403, "access_denied")
    command_id = send(api, instance_ids=[dev_node.pk]).json()["command_id"]
    error(outsider.get(f"{COMMANDS}{command_id}/"), 403, "access_denied")
    error(outsider.get(f"{COMMANDS}{command_id}/invocations/"), 403, "access_denied")
    error(outsider.post(f"{COMMANDS}{command_id}/cancel/", {}, format="json"), 403, "access_denied")
    error(outsider.get(COMMANDS), 403, "access_denied")


# --- Commands: list, get, cancel ------------------------------------------------------------


def test_commands_are_listed_newest_first_a_page_at_a_time(api, dev_node):
    sent = [send(api, instance_ids=[dev_node.pk], comment=f"run {n}").json() for n in range(3)]
    first = api.get(COMMANDS, {"max_results": 2}).json()
    assert [c["comment"] for c in first["results"]] == ["run 2", "run 1"]
    rest = api.get(COMMANDS, {"max_results": 2, "next_token": first["next_token"]}).json()
    assert [c["comment"] for c in rest["results"]] == ["run 0"]
    assert rest["next_token"] is None
    # A command sent meanwhile does not shift the pages being walked.
    send(api, instance_ids=[dev_node.pk], comment="run 3")
    again = api.get(COMMANDS, {"max_results": 2, "next_token": first["next_token"]}).json()
    assert [c["command_id"] for c in again["results"]] == [sent[0]["command_id"]]
    moved = api.get(COMMANDS, {"status": "Pending", "next_token": first["next_token"]})
    error(moved, 400, "validation_error")


def test_the_command_filters_narrow_the_list(api, dev_sender, greeting, dev_node, prod_node):
    send(api, instance_ids=[prod_node.pk], comment="prod")
    send(api, document_name="Greeting", parameters={"name": ["ada"]}, instance_ids=[dev_node.pk])
    send(dev_sender, instance_ids=[dev_node.pk], comment="by dora")
    comments = lambda **q: [c["comment"] for c in api.get(COMMANDS, q).json()["results"]]  # noqa: E731
    assert comments(node_id=prod_node.pk) == ["prod"]
    assert comments(document_name="Greeting") == [""]
    assert comments(document_name=SHELL) == ["by dora", "prod"]
    assert comments(requested_by="dora") == ["by dora"]
    assert comments(search="dor") == ["by dora"]
    assert comments(status="Pending") == ["by dora", "", "prod"]
    assert comments(status="Success") == []
    bad = api.get(COMMANDS, {"status": "Done"})
    assert error(bad, 400, "validation_error").startswith("status:")


def test_an_unknown_command_is_a_404(api):
    missing = "00000000-0000-0000-0000-000000000000"
    error(api.get(f"{COMMANDS}{missing}/"), 404, "invalid_command_id")
    error(api.get(f"{COMMANDS}{missing}/invocations/"), 404, "invalid_command_id")
    error(api.post(f"{COMMANDS}{missing}/cancel/", {}, format="json"), 404, "invalid_command_id")


def test_a_command_is_cancelled_on_some_nodes_or_all(
    api, dev_node, prod_node, django_capture_on_commit_callbacks
):
    command_id = send(api, instance_ids=[dev_node.pk, prod_node.pk]).json()["command_id"]
    with django_capture_on_commit_callbacks(execute=True):
        one = api.post(
            f"{COMMANDS}{command_id}/cancel/", {"instance_ids": [prod_node.pk]}, format="json"
        )
    assert one.json() == {"command_id": command_id, "open_invocations": 1}
    assert api.get(f"{COMMANDS}{command_id}/").json()["counts"] == {"Pending": 1, "Cancelled": 1}
    with django_capture_on_commit_callbacks(execute=True):
        rest = api.post(f"{COMMANDS}{command_id}/cancel/", {}, format="json")
    assert rest.status_code == 200 and rest.json()["open_invocations"] == 1
    assert api.get(f"{COMMANDS}{command_id}/").json()["status"] == "Cancelled"
    ended = api.post(f"{COMMANDS}{command_id}/cancel/", {}, format="json")
    assert "already ended" in error(ended, 400, "command_already_ended")
    shape = api.post(f"{COMMANDS}{command_id}/cancel/", {"instance_ids": "all"}, format="json")
    assert error(shape, 400, "validation_error").startswith("instance_ids:")


# --- Invocations ----------------------------------------------------------------------------


def test_an_invocation_run_by_an_agent_shows_its_steps_and_output(
    api, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        command_id = send(
            api, parameters={"commands": ["echo hello"]}, instance_ids=[agent.node_id]
        ).json()["command_id"]
    run_on_agent(
        agent,
        [step_report("runShellScript", "hello\n", "warning\n")],
        django_capture_on_commit_callbacks,
    )
    base = f"{COMMANDS}{command_id}/invocations/"

    brief = api.get(base).json()["results"][0]
    assert (brief["node_id"], brief["status"], brief["response_code"]) == (
        agent.node_id,
        "Success",
        0,
    )
    assert "steps" not in brief
    detailed = api.get(base, {"details": "true"}).json()["results"][0]
    step = detailed["steps"][0]
    assert (step["name"], step["status"], step["response_code"]) == ("runShellScript", "Success", 0)
    assert step["started_at"].startswith("2026-01-01T00:00:00")
    assert step["stdout"] == {
        "content": "hello\n",
        "length": 6,
        "truncated": False,
        "dropped_bytes": 0,
        "url": f"{base}{agent.node_id}/output/?step=runShellScript&stream=stdout",
    }
    assert step["stderr"]["content"] == "warning\n"

    one = api.get(f"{base}{agent.node_id}/").json()
    assert one["steps"] == detailed["steps"]
    assert one["document_name"] == "Bosun-RunShellScript"
    only = api.get(f"{base}{agent.node_id}/", {"step": "runShellScript"}).json()
    assert [s["name"] for s in only["steps"]] == ["runShellScript"]
    unknown = api.get(f"{base}{agent.node_id}/", {"step": "nope"})
    assert "no step nope" in error(unknown, 404, "invalid_plugin_name")

    download = api.get(step["stdout"]["url"], headers={"Accept": "text/plain"})
    assert download.status_code == 200
    assert download["Content-Type"] == "text/plain; charset=utf-8"
    assert download.content == b"hello\n"
    assert "attachment" in download["Content-Disposition"]
    stderr = api.get(f"{base}{agent.node_id}/output/", {"stream": "stderr"})
    assert stderr.content == b"warning\n"

    command = api.get(f"{COMMANDS}{command_id}/").json()
    assert (command["status"], command["completed_count"]) == ("Success", 1)
    assert command["counts"] == {"Success": 1}


def test_a_running_invocation_shows_the_output_so_far(
    api, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        command_id = send(api, instance_ids=[agent.node_id]).json()["command_id"]
    message_id = agent.post(protocol.FETCH_PATH, {"max": 10}).json()["messages"][0]["message_id"]
    agent.post(protocol.ACK_PATH.format(message_id=message_id), {})
    chunk = {"step": 0, "stream": "stdout", "offset": 0, "data": "half way"}
    agent.post(protocol.OUTPUT_PATH.format(message_id=message_id), {"chunks": [chunk]})
    url = f"{COMMANDS}{command_id}/invocations/{agent.node_id}/"
    body = api.get(url).json()
    assert body["status"] == "InProgress"
    assert body["steps"][0]["status"] == "InProgress"
    assert body["steps"][0]["stdout"]["content"] == "half way"
    assert api.get(f"{url}output/").content == b"half way"
    # A list shows only what the agent reported at the end.
    listed = api.get(f"{COMMANDS}{command_id}/invocations/", {"details": True}).json()
    assert listed["results"][0]["steps"][0]["stdout"]["content"] == ""


def test_a_long_output_is_cut_inline_and_downloaded_whole(
    api, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        command_id = send(api, instance_ids=[agent.node_id]).json()["command_id"]
    long_text = "".join(f"line {n:05d}\n" for n in range(3000))  # 33,000 characters
    run_on_agent(
        agent, [step_report("runShellScript", long_text)], django_capture_on_commit_callbacks
    )
    url = f"{COMMANDS}{command_id}/invocations/{agent.node_id}/"
    stdout = api.get(url).json()["steps"][0]["stdout"]
    assert (stdout["length"], stdout["truncated"]) == (len(long_text), True)
    assert len(stdout["content"]) == 24000
    assert api.get(f"{url}output/").content.decode() == long_text


def test_a_download_names_its_step_when_the_document_has_several(api, dev_node, greeting):
    command_id = send(
        api, document_name="Greeting", parameters={"name": ["ada"]}, instance_ids=[dev_node.pk]
    ).json()["command_id"]
    url = f"{COMMANDS}{command_id}/invocations/{dev_node.pk}/"
    detail = error(api.get(f"{url}output/"), 400, "validation_error")
    assert detail == "step: The document has 2 steps; name one: greet, count."
    assert api.get(f"{url}output/", {"step": "count"}).content == b""
    bad_stream = api.get(f"{url}output/", {"step": "count", "stream": "stdin"})
    assert error(bad_stream, 400, "validation_error").startswith("stream:")
    pending = api.get(url).json()
    assert [(s["name"], s["status"]) for s in pending["steps"]] == [
        ("greet", "Pending"),
        ("count", "Pending"),
    ]


def test_invocations_are_listed_in_sending_order_a_page_at_a_time(api):
    nodes = [ManagedNodeFactory(tags={"Env": "dev"}) for _ in range(3)]
    command_id = send(api, targets=[{"Key": "tag:Env", "Values": ["dev"]}]).json()["command_id"]
    url = f"{COMMANDS}{command_id}/invocations/"
    first = api.get(url, {"max_results": 2}).json()
    rest = api.get(url, {"max_results": 2, "next_token": first["next_token"]}).json()
    listed = [i["node_id"] for i in first["results"] + rest["results"]]
    assert listed == sorted(node.pk for node in nodes)
    assert rest["next_token"] is None
    bad = api.get(url, {"details": "maybe"})
    assert error(bad, 400, "validation_error").startswith("details:")


def test_the_dev_sender_sees_only_the_invocations_on_dev_nodes(
    api, dev_sender, dev_node, prod_node
):
    command_id = send(api, instance_ids=[dev_node.pk, prod_node.pk]).json()["command_id"]
    listed = dev_sender.get(f"{COMMANDS}{command_id}/invocations/").json()["results"]
    assert [i["node_id"] for i in listed] == [dev_node.pk]
    assert dev_sender.get(f"{COMMANDS}{command_id}/").json()["counts"] == {"Pending": 1}
    hidden = dev_sender.get(f"{COMMANDS}{command_id}/invocations/{prod_node.pk}/")
    error(hidden, 404, "invocation_does_not_exist")
    error(dev_sender.get(f"{COMMANDS}{command_id}/invocations/{prod_node.pk}/output/"), 404,
          "invocation_does_not_exist")  # fmt: skip


# --- Error fields and query counts ----------------------------------------------------------


def test_a_services_400_names_its_field_as_a_serializers_does(api, dev_node, greeting):
    rate = send(api, instance_ids=[dev_node.pk], max_concurrency="0").json()
    assert rate["fields"] == {"max_concurrency": [rate["detail"]]}
    value = send(api, document_name="Greeting", parameters={}, instance_ids=[dev_node.pk]).json()
    assert value["fields"] == {"parameters": {"name": [value["detail"]]}}
    content = create(api, "Broken", '{"schemaVersion": "2.2",\n "mainSteps": 7}').json()
    assert content["detail"].startswith("mainSteps (line 2): ")
    assert content["fields"] == {"content": [content["detail"]]}
    fmt = api.post(DOCUMENTS, {"name": "Odd", "content": "x", "document_format": "TOML"})
    assert set(fmt.json()["fields"]) == {"document_format"}
    missing = error(api.get(f"{DOCUMENTS}Nowhere/"), 404, "invalid_document")
    assert "fields" not in api.get(f"{DOCUMENTS}Nowhere/").json(), missing


def test_listing_costs_the_same_few_queries_for_a_page_of_any_size(
    api, greeting, django_assert_max_num_queries
):
    nodes = [ManagedNodeFactory(tags={"Env": "dev"}) for _ in range(5)]
    for _ in range(5):
        send(api, targets=[{"Key": "tag:Env", "Values": ["dev"]}])
    command_id = Command.objects.first().command_id
    # Session, user, policies, then the rows: never one more per row.
    with django_assert_max_num_queries(4):
        assert len(api.get(COMMANDS).json()["results"]) == 5
    with django_assert_max_num_queries(4):
        results = api.get(f"{COMMANDS}{command_id}/invocations/", {"details": True}).json()
    assert len(results["results"]) == len(nodes)
    with django_assert_max_num_queries(5):
        assert len(api.get(DOCUMENTS).json()["results"]) >= 4
