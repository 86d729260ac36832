"""Sending a command: every refusal comes before any row is written; what a send writes."""

from __future__ import annotations

import json

import pytest

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied, BosunError
from commands.models import Invocation
from commands.scope import command_arn, document_arn
from commands.services.documents import document_create, document_update
from commands.services.send import OUTPUT_LIMIT_BYTES
from fleet.models import MessageState, NodeMessage
from parameters.services import parameter_put
from tests.commands.runs import rows, send
from tests.factories import ManagedNodeFactory, ResourceGroupFactory, user_with_policy

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "mi-00000000000000000"

# May send any document, to Env=dev nodes only (AWS's usual shape for a scoped operator).
DEV_SENDER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:SendCommand"],
            "Resource": "arn:aws:ssm:*:*:document/*",
        },
        {
            "Effect": "Allow",
            "Action": ["ssm:SendCommand"],
            "Resource": "arn:aws:ssm:*:*:managed-instance/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        },
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": "arn:aws:ssm:*:*:parameter/dev/*",
        },
    ],
}

PARAMETERS_DOC = {
    "schemaVersion": "2.2",
    "parameters": {
        "mode": {"type": "String", "default": "fast", "allowedValues": ["fast", "slow"]},
        "tag": {"type": "String", "default": "v1", "allowedPattern": "^v[0-9]+$"},
        "count": {"type": "Integer", "default": 1},
        "dry": {"type": "Boolean", "default": False},
        "env": {"type": "StringMap", "default": {}},
        "items": {"type": "MapList", "default": [], "maxItems": 2},
        "hosts": {"type": "StringList", "minItems": 1},
    },
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "deploy",
            "inputs": {
                "runCommand": [
                    "deploy --mode {{ mode }} --tag {{ tag }} -n {{ count }} --dry={{ dry }}",
                    "echo {{ env }} {{ items }}",
                    "{{ hosts }}",
                ],
                "timeoutSeconds": 120,
            },
        },
        {
            "action": "aws:runShellScript",
            "name": "verify",
            "inputs": {"runCommand": "check", "workingDirectory": "/srv/{{ tag }}"},
        },
    ],
}


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def node(db):
    return ManagedNodeFactory(name="web-1", tags={"Env": "dev", "Role": "web"})


@pytest.fixture
def deploy(admin):
    return document_create(principal=admin, name="deploy", content=json.dumps(PARAMETERS_DOC))


def refused(admin, **fields) -> BosunError:
    """Send `fields`, which must be refused, leaving no command, invocation or message."""
    with pytest.raises(BosunError) as caught:
        send(admin, **fields)
    assert rows() == (0, 0, 0), caught.value
    return caught.value


# --- What a send writes ---------------------------------------------------------------------


def test_a_send_writes_the_command_its_invocations_and_messages(admin, node):
    other = ManagedNodeFactory(name="web-2", tags={"Env": "dev"})
    command = send(
        admin,
        instance_ids=[node.pk, other.pk],
        comment="say hello",
        timeout_seconds=600,
    )
    command.refresh_from_db()
    assert command.document_name == "Bosun-RunShellScript"
    assert command.document_version == "1"
    assert command.parameters == {"commands": ["echo hello"]}
    assert command.targets == [{"Key": "InstanceIds", "Values": [node.pk, other.pk]}]
    assert command.comment == "say hello"
    assert (command.max_concurrency, command.max_errors) == ("50", "0")
    assert (command.concurrency_limit, command.error_limit) == (50, 0)
    assert command.timeout_seconds == 600
    assert (command.expires_after - command.requested_at).total_seconds() == 600
    assert command.target_count == 2
    assert command.status == "Pending" and command.dispatch_complete
    assert command.requested_by == admin.user and command.requested_by_arn.endswith("user/ada")
    invocations = list(command.invocations.order_by("sequence"))
    assert {i.node_id: i.node_name for i in invocations} == {node.pk: "web-1", other.pk: "web-2"}
    assert [i.status for i in invocations] == ["Pending", "Pending"]
    assert all(i.dispatched_at == command.requested_at for i in invocations)
    messages = NodeMessage.objects.order_by("node_id")
    assert {m.message_id for m in messages} == {i.message_id for i in invocations}
    assert all(m.kind == "RunCommand" and m.state == MessageState.PENDING for m in messages)
    assert all(m.deliver_before == command.expires_after for m in messages)


def test_the_payload_carries_substituted_steps_and_the_run_limits(admin, node):
    command = send(
        admin,
        instance_ids=[node.pk],
        parameters={
            "commands": ["cd /tmp", "ls"],
            "workingDirectory": ["/var"],
            "executionTimeout": ["90"],
        },
    )
    payload = NodeMessage.objects.get().payload
    assert payload == command.payload
    assert payload == {
        "command_id": command.command_id,
        "document_name": "Bosun-RunShellScript",
        "document_version": "1",
        "execution_timeout": 90,
        "output_limit": OUTPUT_LIMIT_BYTES,
        "secure_parameters": [],
        "steps": [
            {
                "name": "runShellScript",
                "action": "aws:runShellScript",
                "precondition": None,
                "inputs": {
                    "runCommand": ["cd /tmp", "ls"],
                    "workingDirectory": "/var",
                    "timeoutSeconds": 90,
                },
            }
        ],
    }
    assert command.execution_timeout == 90


def test_every_parameter_type_reaches_the_payload_typed_and_substituted(admin, node, deploy):
    command = send(
        admin,
        document_name="deploy",
        instance_ids=[node.pk],
        parameters={
            "mode": ["slow"],
            "tag": ["v7"],
            "count": ["3"],
            "dry": ["true"],
            "env": ['{"A": "1"}'],
            "items": ['[{"k": "v"}]'],
            "hosts": ["ping a", "ping b"],
        },
    )
    first, second = command.payload["steps"]
    assert first["inputs"]["runCommand"] == [
        "deploy --mode slow --tag v7 -n 3 --dry=true",
        'echo {"A":"1"} [{"k":"v"}]',
        "ping a",
        "ping b",
    ]
    assert second["inputs"] == {"runCommand": ["check"], "workingDirectory": "/srv/v7"}
    # Steps without a timeout count the default hour toward the run's.
    assert command.execution_timeout == 120 + 3600
    # The values are kept as given, so a re-run sends the same.
    assert command.parameters["hosts"] == ["ping a", "ping b"]


def test_a_send_is_audited_with_its_targets_and_rate_control(admin, node):
    command = send(admin, instance_ids=[node.pk], max_concurrency="10%", max_errors="1")
    event = AuditEvent.objects.get(action="ssm:SendCommand")
    assert event.outcome == "success" and event.principal == "ada"
    assert event.resources == [
        command_arn(command.command_id),
        document_arn("Bosun-RunShellScript"),
    ]
    assert event.params["TargetCount"] == 1
    assert event.params["MaxConcurrency"] == "10%" and event.params["MaxErrors"] == "1"
    assert event.params["Targets"] == [{"Key": "InstanceIds", "Values": [node.pk]}]


def test_a_named_version_or_latest_is_sent_not_the_default(admin, node):
    def content(text: str) -> str:
        step = {"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": text}}
        return json.dumps({"schemaVersion": "2.2", "mainSteps": [step]})

    document_create(principal=admin, name="pinned", content=content("v1"))
    document_update(principal=admin, name="pinned", content=content("v2"), version_name="r2")
    default = send(admin, document_name="pinned", instance_ids=[node.pk])
    latest = send(admin, document_name="pinned", document_version="$LATEST", instance_ids=[node.pk])
    named = send(admin, document_name="pinned", document_version="r2", instance_ids=[node.pk])
    assert default.payload["steps"][0]["inputs"]["runCommand"] == ["v1"]
    assert latest.payload["steps"][0]["inputs"]["runCommand"] == ["v2"]
    assert named.document_version == "2"
    assert default.document_hash != latest.document_hash == named.document_hash


def test_an_offline_node_is_sent_its_message_and_shows_delayed(admin, node):
    away = ManagedNodeFactory(status="ConnectionLost")
    command = send(admin, instance_ids=[node.pk, away.pk])
    assert command.invocations.get(node=away).status == "Delayed"
    assert command.invocations.get(node=node).status == "Pending"
    assert NodeMessage.objects.filter(node=away).exists()
    command.refresh_from_db()
    assert command.status == "InProgress"


def test_named_ids_left_out_are_reported_by_why(admin, node):
    gone = ManagedNodeFactory(status="Deregistered")
    command = send(admin, instance_ids=[node.pk, gone.pk, UNKNOWN_ID])
    assert command.left_out == {"unknown": [UNKNOWN_ID], "deregistered": [gone.pk]}
    assert list(command.invocations.values_list("node_id", flat=True)) == [node.pk]
    assert not NodeMessage.objects.filter(node=gone).exists()


# --- Targets --------------------------------------------------------------------------------


def test_tag_targets_reach_the_tagged_nodes(admin, node):
    ManagedNodeFactory(tags={"Env": "prod", "Role": "web"})
    ManagedNodeFactory(tags={"Env": "dev", "Role": "db"})
    command = send(
        admin,
        targets=[{"Key": "tag:Env", "Values": ["dev"]}, {"Key": "tag:Role", "Values": ["web"]}],
    )
    assert list(command.invocations.values_list("node_id", flat=True)) == [node.pk]
    assert command.targets == [
        {"Key": "tag:Env", "Values": ["dev"]},
        {"Key": "tag:Role", "Values": ["web"]},
    ]


def test_a_resource_group_target_reaches_the_groups_nodes(admin, node):
    db_node = ManagedNodeFactory(tags={"Env": "dev", "Role": "db"})
    ManagedNodeFactory(tags={"Env": "prod", "Role": "db"})
    ResourceGroupFactory(name="dev-all")
    command = send(admin, targets=[{"Key": "resource-groups:Name", "Values": ["dev-all"]}])
    assert set(command.invocations.values_list("node_id", flat=True)) == {node.pk, db_node.pk}


def test_a_tag_scoped_sender_reaches_only_allowed_nodes(db, node):
    prod = ManagedNodeFactory(name="prod-1", tags={"Env": "prod", "Role": "web"})
    sender = Principal(user=user_with_policy("dana", DEV_SENDER_POLICY))
    by_tag = send(sender, targets=[{"Key": "tag:Role", "Values": ["web"]}])
    assert list(by_tag.invocations.values_list("node_id", flat=True)) == [node.pk]
    assert by_tag.left_out == {}
    named = send(sender, instance_ids=[node.pk, prod.pk])
    assert named.left_out == {"refused": [prod.pk]}
    assert named.target_count == 1
    assert list(named.invocations.values_list("node_id", flat=True)) == [node.pk]
    assert not Invocation.objects.filter(node=prod).exists()
    assert not NodeMessage.objects.filter(node=prod).exists()


def test_a_tag_scoped_sender_naming_only_refused_nodes_is_refused(db, node):
    prod = ManagedNodeFactory(tags={"Env": "prod"})
    sender = Principal(user=user_with_policy("dana", DEV_SENDER_POLICY))
    with pytest.raises(BosunError) as caught:
        send(sender, instance_ids=[prod.pk])
    assert caught.value.aws_code == "InvalidInstanceId"
    assert f"not allowed to send to: {prod.pk}" in caught.value.message
    assert rows() == (0, 0, 0)


def test_a_sender_without_send_command_on_the_document_is_denied(db, node, outsider_user):
    with pytest.raises(AccessDenied):
        send(Principal(user=outsider_user), instance_ids=[node.pk])
    assert rows() == (0, 0, 0)
    denial = AuditEvent.objects.get(action="ssm:SendCommand")
    assert denial.outcome == "denied"
    assert denial.resources == [document_arn("Bosun-RunShellScript")]


def test_sending_to_200_nodes_takes_a_bounded_number_of_queries(
    admin, django_assert_max_num_queries
):
    ManagedNodeFactory.create_batch(200, tags={"Env": "bulk"})
    with django_assert_max_num_queries(36):
        command = send(
            admin, targets=[{"Key": "tag:Env", "Values": ["bulk"]}], max_concurrency="100%"
        )
    assert command.invocations.count() == 200
    assert NodeMessage.objects.count() == 200
    assert sorted(command.invocations.values_list("sequence", flat=True)) == list(range(200))


def test_a_bulk_send_under_rate_control_sends_only_the_first_batch(admin):
    ManagedNodeFactory.create_batch(120, tags={"Env": "bulk"})
    command = send(admin, targets=[{"Key": "tag:Env", "Values": ["bulk"]}])
    assert command.invocations.count() == 120
    assert NodeMessage.objects.count() == 50
    sent = command.invocations.filter(dispatched_at__isnull=False)
    assert sorted(sent.values_list("sequence", flat=True)) == list(range(50))
    command.refresh_from_db()
    assert not command.dispatch_complete


# --- Refusals: nothing written --------------------------------------------------------------


def test_an_unknown_document_is_refused(admin, node):
    error = refused(admin, document_name="no-such-doc", instance_ids=[node.pk])
    assert error.aws_code == "InvalidDocument"


def test_an_unknown_document_version_is_refused(admin, node):
    for version in ("7", "no-such-name"):
        error = refused(admin, document_version=version, instance_ids=[node.pk])
        assert error.aws_code == "InvalidDocumentVersion"


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"mode": ["warp"], "hosts": ["a"]}, "parameters.mode"),
        ({"tag": ["latest"], "hosts": ["a"]}, "parameters.tag"),
        ({"count": ["many"], "hosts": ["a"]}, "parameters.count"),
        ({"dry": ["maybe"], "hosts": ["a"]}, "parameters.dry"),
        ({"env": ["[1]"], "hosts": ["a"]}, "parameters.env"),
        ({"items": ['[{"a": 1}, {"b": 2}, {"c": 3}]'], "hosts": ["a"]}, "parameters.items"),
        ({"hosts": []}, "parameters.hosts"),
        ({}, "parameters.hosts"),
        ({"hosts": ["a"], "speed": ["9"]}, "parameters.speed"),
        ({"hosts": ["a"], "mode": ["fast", "slow"]}, "parameters.mode"),
    ],
)
def test_invalid_parameters_are_refused_naming_the_parameter(
    admin, node, deploy, parameters, field
):
    error = refused(admin, document_name="deploy", parameters=parameters, instance_ids=[node.pk])
    assert error.aws_code == "InvalidParameters"
    assert error.field == field


@pytest.mark.parametrize("timeout", ["0", "172801", "soon"])
def test_an_execution_timeout_out_of_range_is_refused(admin, node, timeout):
    error = refused(
        admin,
        parameters={"commands": ["ls"], "executionTimeout": [timeout]},
        instance_ids=[node.pk],
    )
    assert error.aws_code == "InvalidParameters"


def test_commands_that_are_all_blank_are_refused(admin, node):
    error = refused(admin, parameters={"commands": ["", "  "]}, instance_ids=[node.pk])
    assert error.aws_code == "InvalidParameters"


def test_targets_that_match_nothing_are_refused(admin, node):
    error = refused(admin, targets=[{"Key": "tag:Env", "Values": ["nowhere"]}])
    assert error.aws_code == "InvalidInstanceId"
    error = refused(admin, instance_ids=[UNKNOWN_ID])
    assert f"not managed nodes: {UNKNOWN_ID}" in error.message


def test_more_than_50_instance_ids_are_refused(admin, node):
    ids = [node.pk] + [f"mi-{i:017x}" for i in range(1, 51)]
    error = refused(admin, instance_ids=ids)
    assert error.field == "targets" and "51 instance ids" in error.message


def test_targets_and_instance_ids_together_are_refused(admin, node):
    error = refused(admin, instance_ids=[node.pk], targets=[{"Key": "tag:Env", "Values": ["dev"]}])
    assert error.field == "targets"


def test_no_targets_at_all_are_refused(admin, node):
    assert refused(admin).field == "targets"


@pytest.mark.parametrize(
    "targets",
    [
        [{"Key": "tag:Env"}],
        [{"Key": "ParameterValues", "Values": ["x"]}],
        [{"Key": "resource-groups:Name", "Values": ["no-such-group"]}],
    ],
)
def test_malformed_targets_or_unknown_groups_are_refused(admin, node, targets):
    assert refused(admin, targets=targets).aws_code == "InvalidTarget"


@pytest.mark.parametrize("value", ["0", "101%", "0%", "abc", "", "12345678", "-1", "5.5", 5, None])
def test_a_bad_max_concurrency_is_refused(admin, node, value):
    error = refused(admin, instance_ids=[node.pk], max_concurrency=value)
    assert error.field == "max_concurrency"


@pytest.mark.parametrize("value", ["101%", "abc", "", "12345678", "-1", "01", 0, None])
def test_a_bad_max_errors_is_refused(admin, node, value):
    error = refused(admin, instance_ids=[node.pk], max_errors=value)
    assert error.field == "max_errors"


@pytest.mark.parametrize("timeout", [29, 2592001, -1, "abc", None, True])
def test_a_delivery_timeout_out_of_range_is_refused(admin, node, timeout):
    error = refused(admin, instance_ids=[node.pk], timeout_seconds=timeout)
    assert error.field == "timeout_seconds"


@pytest.mark.parametrize("timeout", [30, 2592000, "45"])
def test_a_delivery_timeout_within_range_is_accepted(admin, node, timeout):
    assert send(admin, instance_ids=[node.pk], timeout_seconds=timeout).timeout_seconds == int(
        timeout
    )


def test_a_comment_over_100_characters_is_refused(admin, node):
    assert refused(admin, instance_ids=[node.pk], comment="x" * 101).field == "comment"
    assert send(admin, instance_ids=[node.pk], comment="x" * 100).comment == "x" * 100


# --- Parameter Store references -------------------------------------------------------------


def test_an_ssm_reference_is_resolved_into_the_payload_and_kept_as_written(admin, node):
    parameter_put(principal=admin, name="/app/greeting", value="bonjour", parameter_type="String")
    command = send(
        admin, instance_ids=[node.pk], parameters={"commands": ["echo {{ssm:/app/greeting}}"]}
    )
    assert command.payload["steps"][0]["inputs"]["runCommand"] == ["echo bonjour"]
    assert command.parameters == {"commands": ["echo {{ssm:/app/greeting}}"]}
    assert command.payload["secure_parameters"] == []


def test_an_ssm_reference_in_the_document_itself_is_resolved(admin, node):
    parameter_put(principal=admin, name="/app/dir", value="/srv/app", parameter_type="String")
    body = {
        "schemaVersion": "2.2",
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "ls",
                "inputs": {"runCommand": ["ls"], "workingDirectory": "{{ ssm:/app/dir }}"},
            }
        ],
    }
    document_create(principal=admin, name="with-reference", content=json.dumps(body))
    command = send(admin, document_name="with-reference", instance_ids=[node.pk])
    assert command.payload["steps"][0]["inputs"]["workingDirectory"] == "/srv/app"


def test_a_missing_ssm_reference_is_refused(admin, node):
    error = refused(
        admin, instance_ids=[node.pk], parameters={"commands": ["echo {{ssm:/missing}}"]}
    )
    assert "/missing" in error.message


def test_a_missing_ssm_secure_reference_is_refused(admin, node):
    error = refused(
        admin, instance_ids=[node.pk], parameters={"commands": ["echo {{ssm-secure:/missing}}"]}
    )
    assert error.aws_code == "InvalidParameters"
    assert "/missing" in error.message


def test_an_ssm_reference_to_a_secure_string_is_refused(admin, node):
    parameter_put(principal=admin, name="/db/password", value="pw", parameter_type="SecureString")
    error = refused(
        admin, instance_ids=[node.pk], parameters={"commands": ["echo {{ssm:/db/password}}"]}
    )
    assert "{{ssm-secure:/db/password}}" in error.message


def test_a_sender_cannot_embed_a_parameter_they_may_not_read(db, node, admin):
    parameter_put(principal=admin, name="/ops/token", value="t", parameter_type="String")
    parameter_put(principal=admin, name="/dev/name", value="devname", parameter_type="String")
    sender = Principal(user=user_with_policy("dana", DEV_SENDER_POLICY))
    with pytest.raises(AccessDenied):
        send(sender, instance_ids=[node.pk], parameters={"commands": ["echo {{ssm:/ops/token}}"]})
    assert rows() == (0, 0, 0)
    command = send(
        sender, instance_ids=[node.pk], parameters={"commands": ["echo {{ssm:/dev/name}}"]}
    )
    assert command.payload["steps"][0]["inputs"]["runCommand"] == ["echo devname"]
