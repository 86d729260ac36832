"""Run Command and Documents pages: every page for the admin, the history's filters, the send
flow through its forms with a protocol-level agent, errors beside their fields, live partials,
output and its download, documents written and versioned, and who is refused."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from bosun_agent import protocol
from django.urls import reverse
from django.utils import timezone

from access.authorization import Principal
from audit.models import AuditEvent
from commands.models import Command, Document, Invocation
from commands.output import INLINE_CHARS
from commands.services.documents import document_create, document_update
from commands.services.send import command_send
from tests.factories import ManagedNodeFactory, ResourceGroupFactory, user_with_policy

pytestmark = pytest.mark.django_db

SHELL = "Bosun-RunShellScript"
HX = {"HX-Request": "true"}
USER_DOCUMENT = """\
schemaVersion: "2.2"
description: Say something.
parameters:
  message:
    type: String
    default: hello
  level:
    type: String
    allowedValues: [info, warn]
    default: info
mainSteps:
  - action: aws:runShellScript
    name: say
    inputs:
      runCommand:
        - echo "{{ message }} {{ level }}"
"""
# Sends commands and follows them, on Env=dev nodes only (documents and commands are not
# tagged: the tag condition applies to the nodes).
DEV_SENDER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ssm:ListCommands", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": [
                "ssm:SendCommand",
                "ssm:GetDocument",
                "ssm:ListDocuments",
                "ssm:ListDocumentVersions",
                "ssm:CancelCommand",
                "ssm:ListCommandInvocations",
                "ssm:GetCommandInvocation",
            ],
            "Resource": ["arn:aws:ssm:*:*:document/*", "arn:aws:ssm:*:*:command/*"],
        },
        {
            "Effect": "Allow",
            "Action": [
                "ssm:SendCommand",
                "ssm:ListCommandInvocations",
                "ssm:GetCommandInvocation",
                "ssm:DescribeInstanceInformation",
            ],
            "Resource": "arn:aws:ssm:*:*:managed-instance/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        },
    ],
}


# Reads the history and the documents, and nothing else.
VIEWER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ssm:ListCommands",
                "ssm:ListCommandInvocations",
                "ssm:ListDocuments",
                "ssm:GetDocument",
                "ssm:ListDocumentVersions",
            ],
            "Resource": "*",
        }
    ],
}


@pytest.fixture
def viewer_client(client, db):
    client.force_login(user_with_policy("vera", VIEWER_POLICY))
    return client


@pytest.fixture
def sender_client(client, db):
    client.force_login(user_with_policy("sam", DEV_SENDER_POLICY))
    return client


@pytest.fixture
def dev_node(db):
    return ManagedNodeFactory(name="dev-web-1", tags={"Env": "dev"})


@pytest.fixture
def prod_node(db):
    return ManagedNodeFactory(name="prod-web-1", tags={"Env": "prod"})


def send_form(node_ids: list[str], **overrides) -> dict:
    """What the send form posts for Bosun-RunShellScript on these nodes."""
    data = {
        "document": SHELL,
        "document_version": "",
        "loaded_document": f"{SHELL}:",
        "param-commands": "echo hello",
        "param-workingDirectory": "",
        "param-executionTimeout": "3600",
        "target_mode": "instances",
        "instance_ids": node_ids,
        "target_tags": "",
        "resource_group": "",
        "max_concurrency": "50",
        "max_errors": "0",
        "timeout_seconds": "3600",
        "comment": "",
        "step": "review",
    }
    data.update(overrides)
    return data


def sent(user, node_ids: list[str], capture, **options) -> Command:
    with capture(execute=True):
        return command_send(
            principal=Principal(user=user),
            document_name=SHELL,
            parameters=options.pop("parameters", {"commands": ["echo hello"]}),
            instance_ids=node_ids,
            **options,
        )


def fetched(agent) -> dict:
    messages = agent.post(protocol.FETCH_PATH, {"max": 10}).json()["messages"]
    (message,) = [m for m in messages if m["kind"] == protocol.MESSAGE_RUN_COMMAND]
    ack = agent.post(protocol.ACK_PATH.format(message_id=message["message_id"]), {})
    assert ack.status_code == 200, ack.content
    return message


def reply(agent, message: dict, capture, *, stdout: str = "", dropped: int = 0, code: int = 0):
    outcome = "Success" if code == 0 else "Failed"
    result = {
        "command_id": message["payload"]["command_id"],
        "outcome": outcome,
        "response_code": code,
        "steps": [
            {
                "name": "runShellScript",
                "action": "aws:runShellScript",
                "status": outcome,
                "response_code": code,
                "started_at": 1_700_000_000.0,
                "finished_at": 1_700_000_002.5,
                "stdout": {"offset": 0, "data": stdout, "dropped_bytes": dropped},
                "stderr": {"offset": 0, "data": ""},
            }
        ],
    }
    path = protocol.REPLY_PATH.format(message_id=message["message_id"])
    with capture(execute=True):
        response = agent.post(path, {"status": outcome, "result": result})
    assert response.json()["accepted"], response.content


def command_row(user, **fields) -> Command:
    """A command as the history shows it, without sending anything."""
    now = timezone.now()
    values = {
        "command_id": str(uuid.uuid4()),
        "document_name": SHELL,
        "document_version": "1",
        "document_hash": "0" * 64,
        "max_concurrency": "50",
        "max_errors": "0",
        "concurrency_limit": 50,
        "error_limit": 0,
        "timeout_seconds": 3600,
        "execution_timeout": 3600,
        "expires_after": now + timedelta(hours=1),
        "requested_at": now,
        "requested_by": user,
        "requested_by_arn": f"arn:aws:iam::000000000000:user/{user.username}",
        "status": "Success",
        "status_details": "Success",
    }
    values.update(fields)
    return Command.objects.create(**values)


def fragment(response) -> str:
    """An htmx partial's HTML, without the whitespace around it."""
    return response.content.decode().strip()


def main(response) -> str:
    html = response.content.decode()
    return html[html.find("<main") :]


# --- Every page, and who is refused ----------------------------------------------------------


def page_urls(command: Command, node_id: str, document: str) -> list[str]:
    return [
        reverse("commands:list"),
        reverse("commands:send"),
        reverse("commands:send") + f"?document={SHELL}",
        reverse("commands:send") + f"?rerun={command.command_id}",
        reverse("commands:detail", args=[command.command_id]),
        reverse("commands:cancel", args=[command.command_id]),
        reverse("commands:invocation", args=[command.command_id, node_id]),
        reverse("commands:output", args=[command.command_id, node_id, 0, "stdout"]),
        reverse("commands:documents"),
        reverse("commands:document", args=[SHELL]),
        reverse("commands:document", args=[document]) + "?format=JSON",
        reverse("commands:document-create"),
        reverse("commands:document-edit", args=[document]),
        reverse("commands:document-delete", args=[document]),
        reverse("commands:document-diff", args=[document]),
    ]


@pytest.fixture
def user_document(admin_user):
    version = document_create(
        principal=Principal(user=admin_user),
        name="say-hello",
        content=USER_DOCUMENT,
        content_format="YAML",
    )
    return version.document


def test_every_page_renders_for_the_admin(
    admin_client, admin_user, agent, user_document, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    for url in page_urls(command, agent.node_id, user_document.name):
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_the_outsider_is_refused_every_page(
    outsider_client, admin_user, agent, user_document, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    for url in page_urls(command, agent.node_id, user_document.name):
        assert outsider_client.get(url).status_code == 403, url
    refused = outsider_client.post(reverse("commands:send"), send_form([agent.node_id]))
    assert refused.status_code == 403
    assert AuditEvent.objects.filter(outcome="denied").exists()
    assert not Command.objects.exclude(pk=command.pk).exists()


def test_a_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("commands:list"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_menu_offers_run_command_and_documents_to_the_admin(admin_client):
    html = admin_client.get("/").content.decode()
    assert f'href="{reverse("commands:list")}"' in html
    assert f'href="{reverse("commands:documents")}"' in html


def test_the_menu_offers_the_outsider_neither(outsider_client):
    html = outsider_client.get("/").content.decode()
    assert f'href="{reverse("commands:list")}"' not in html


def test_unknown_commands_invocations_and_documents_are_404(admin_client, agent):
    missing = str(uuid.uuid4())
    assert admin_client.get(reverse("commands:detail", args=[missing])).status_code == 404
    url = reverse("commands:invocation", args=[missing, agent.node_id])
    assert admin_client.get(url).status_code == 404
    assert admin_client.get(reverse("commands:document", args=["nope-doc"])).status_code == 404
    assert admin_client.get("/commands/not-a-uuid/").status_code == 404


# --- The history -----------------------------------------------------------------------------


def test_a_viewer_is_offered_nothing_it_may_not_do(
    viewer_client, admin_user, agent, user_document, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    history = main(viewer_client.get(reverse("commands:list")))
    assert command.command_id in history and "Run a command" not in history
    detail = main(viewer_client.get(reverse("commands:detail", args=[command.command_id])))
    assert agent.node_id in detail
    assert "Cancel command" not in detail and "Run again" not in detail
    document = main(viewer_client.get(reverse("commands:document", args=[user_document.name])))
    assert "Edit (new version)" not in document and "Delete" not in document
    assert "Run this document" not in document and "Create document" not in main(
        viewer_client.get(reverse("commands:documents"))
    )
    assert viewer_client.get(reverse("commands:send")).status_code == 403
    assert (
        viewer_client.get(reverse("commands:cancel", args=[command.command_id])).status_code == 403
    )
    edit = reverse("commands:document-edit", args=[user_document.name])
    assert viewer_client.get(edit).status_code == 403


def test_the_history_lists_newest_first_with_a_run_button(admin_client, admin_user):
    older = command_row(admin_user, comment="older", requested_at=timezone.now() - timedelta(1))
    newer = command_row(admin_user, comment="newer")
    html = main(admin_client.get(reverse("commands:list")))
    assert html.index(newer.command_id) < html.index(older.command_id)
    assert 'id="run-command"' in html


def test_the_history_filters_by_status_document_node_user_and_search(
    admin_client, admin_user, dev_node, outsider_user
):
    failed = command_row(admin_user, status="Failed", status_details="Failed", comment="patch db")
    other_doc = command_row(admin_user, document_name="Bosun-RefreshHostFacts")
    by_oscar = command_row(outsider_user, comment="oscar's")
    on_node = command_row(admin_user, comment="on the node")
    Invocation.objects.create(command=on_node, node=dev_node, node_name="dev-web-1", sequence=0)
    url = reverse("commands:list")

    def ids(**query):
        html = main(admin_client.get(url, query))
        return {
            c.command_id for c in (failed, other_doc, by_oscar, on_node) if c.command_id in html
        }

    assert ids(status="Failed") == {failed.command_id}
    assert ids(document="Bosun-RefreshHostFacts") == {other_doc.command_id}
    assert ids(requested_by="oscar") == {by_oscar.command_id}
    assert ids(node=dev_node.pk) == {on_node.command_id}
    assert ids(q="patch") == {failed.command_id}
    assert ids(q=on_node.command_id[:8]) == {on_node.command_id}
    assert "No command matches" in main(admin_client.get(url, {"q": "nothing-like-it"}))


def test_the_history_is_paginated_by_fifty(admin_client, admin_user):
    for _ in range(51):
        command_row(admin_user)
    first = main(admin_client.get(reverse("commands:list")))
    assert "1\u201350 of 51 commands" in first and "Page 1 of 2" in first
    second = main(admin_client.get(reverse("commands:list"), {"page": 2}))
    assert "51\u201351 of 51 commands" in second


def test_the_history_partial_refreshes_itself_while_a_command_runs(admin_client, admin_user):
    command_row(admin_user, status="InProgress", status_details="InProgress")
    html = fragment(admin_client.get(reverse("commands:list"), headers=HX))
    assert html.startswith('<div id="command-results"') and "<main" not in html
    assert 'hx-trigger="every 2s"' in html
    Command.objects.update(status="Success", status_details="Success")
    assert "every 2s" not in admin_client.get(reverse("commands:list"), headers=HX).content.decode()


# --- Sending, through the forms --------------------------------------------------------------


def test_a_command_is_sent_through_the_form_review_and_confirm(
    admin_client, agent, django_capture_on_commit_callbacks
):
    page = admin_client.get(reverse("commands:send") + f"?document={SHELL}").content.decode()
    assert 'name="param-commands"' in page and agent.node_id in page

    data = send_form([agent.node_id], **{"param-commands": "echo one\necho two", "comment": "hi"})
    review = admin_client.post(reverse("commands:send"), data)
    assert review.status_code == 200
    html = main(review)
    assert 'Run <span class="font-monospace">Bosun-RunShellScript</span> on 1 node?' in html
    assert "(1 online, 0 offline)" in html and "at most 50 nodes at once" in html
    assert not Command.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("commands:send"), {**data, "step": "send"})
    command = Command.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("commands:detail", args=[command.command_id])
    assert command.parameters == {
        "commands": ["echo one", "echo two"],
        "executionTimeout": ["3600"],
    }
    assert command.comment == "hi" and command.targets == [
        {"Key": "InstanceIds", "Values": [agent.node_id]}
    ]
    payload = fetched(agent)["payload"]
    assert payload["steps"][0]["inputs"]["runCommand"] == ["echo one", "echo two"]


def test_the_review_goes_back_to_the_form_with_everything_kept(admin_client, agent):
    data = send_form([agent.node_id], **{"param-commands": "uptime", "comment": "keep me"})
    html = main(admin_client.post(reverse("commands:send"), {**data, "step": "edit"}))
    assert "uptime</textarea>" in html and 'value="keep me"' in html
    assert f'value="{agent.node_id}" id="node-{agent.node_id}" checked' in html
    assert "is-invalid" not in html


def test_targets_by_tag_and_by_resource_group_reach_their_nodes(
    admin_client, dev_node, prod_node, django_capture_on_commit_callbacks
):
    by_tag = send_form([], target_mode="tags", target_tags="Env=dev")
    html = main(admin_client.post(reverse("commands:send"), by_tag))
    assert "dev-web-1" in html and "prod-web-1" not in html
    ResourceGroupFactory(
        name="prod-group", query={"TagFilters": [{"Key": "Env", "Values": ["prod"]}]}
    )
    by_group = send_form([], target_mode="group", resource_group="prod-group", step="send")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("commands:send"), by_group)
    assert response.status_code == 302
    command = Command.objects.get()
    assert command.targets == [{"Key": "resource-groups:Name", "Values": ["prod-group"]}]
    assert list(command.invocations.values_list("node_id", flat=True)) == [prod_node.pk]


@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        ({"document": "No-Such-Document"}, "id_document", "Select a valid choice"),
        ({"param-commands": ""}, "id_param-commands", "Required: this parameter has no default."),
        (
            {"max_concurrency": "0"},
            "id_max_concurrency",
            "MaxConcurrency &#x27;0&#x27; is not valid",
        ),
        ({"max_errors": "lots"}, "id_max_errors", "MaxErrors &#x27;lots&#x27; is not valid"),
        ({"timeout_seconds": "5"}, "id_timeout_seconds", "between 30 and 2592000"),
        ({"timeout_seconds": "soon"}, "id_timeout_seconds", "Enter a whole number"),
        ({"param-executionTimeout": "0"}, "id_param-executionTimeout", "allowed pattern"),
        ({"comment": "x" * 101}, "id_comment", "at most 100 characters"),
        ({"target_mode": "tags", "target_tags": "Env=nowhere"}, "id_target_tags", "no managed"),
        ({"target_mode": "tags", "target_tags": "bad key!=x"}, "id_target_tags", "Target 1"),
        ({"target_mode": "group", "resource_group": "ghost"}, "id_resource_group", "no resource"),
        ({"instance_ids": []}, "node-search", "Choose at least one node."),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_sent(
    admin_client, agent, changes, field_id, message, django_capture_on_commit_callbacks
):
    for step in ("review", "send"):
        data = send_form([agent.node_id], **{"comment": "typed", **changes, "step": step})
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(reverse("commands:send"), data)
        html = main(response)
        assert response.status_code == 400, (step, html[:2000])
        assert "The command was not sent." in html
        assert message in html, (step, html)
        # The error sits right after its field (within the field's block).
        field_at = html.index(f'id="{field_id}"')
        assert field_at < html.index(message) < field_at + 6000
        if "comment" not in changes:
            assert 'value="typed"' in html
    assert not Command.objects.exists()


def test_more_than_fifty_nodes_are_refused_beside_the_node_picker(admin_client):
    ids = [f"mi-{n:017x}" for n in range(51)]
    response = admin_client.post(reverse("commands:send"), send_form(ids))
    html = main(response)
    assert response.status_code == 400
    assert "51 nodes chosen; at most 50" in html
    assert ids[50] in html  # still ticked, nothing lost


@pytest.mark.parametrize(
    "changes",
    [
        {"document_version": "99"},
        {"document_version": "$LATEST", "loaded_document": f"{SHELL}:$LATEST"},
        {"instance_ids": ["not-a-node"]},
        {"target_mode": "everything"},
        {"target_tags": "=\n=,=", "target_mode": "tags"},
        {"param-commands": "\x00", "param-unknown": "x"},
        {"step": "launch"},
        {"loaded_document": ""},
        {"max_concurrency": "1000000000"},
    ],
)
def test_odd_posts_never_break_the_form(admin_client, agent, changes):
    data = send_form([agent.node_id], **changes)
    response = admin_client.post(reverse("commands:send"), data)
    assert response.status_code in (200, 400)
    assert not Command.objects.exists()


def test_odd_links_to_the_form_are_answered(admin_client):
    send = reverse("commands:send")
    assert admin_client.get(send, {"rerun": "garbage"}).status_code == 404
    unknown = main(admin_client.get(send, {"document": "Nope"}))
    assert "The document Nope does not exist." in unknown
    assert "has no version 7" in main(
        admin_client.get(send, {"document": SHELL, "document_version": "7"})
    )
    assert (
        admin_client.get(reverse("commands:send-preview"), {"target_mode": "x"}).status_code == 200
    )


def test_a_refusal_at_the_send_itself_is_shown_inline(
    admin_client, agent, django_capture_on_commit_callbacks
):
    """A problem only the service finds (a {{ssm-secure:…}} that does not exist) comes back
    on the form, with the values kept."""
    data = send_form(
        [agent.node_id], step="send", **{"param-commands": "echo {{ssm-secure:/no/such}}"}
    )
    response = admin_client.post(reverse("commands:send"), data)
    html = main(response)
    assert response.status_code == 400
    assert "parameter /no/such does not exist" in html
    assert "echo {{ssm-secure:/no/such}}</textarea>" in html
    assert not Command.objects.exists()


def test_a_scoped_sender_sees_and_reaches_only_the_nodes_policy_allows(
    sender_client, dev_node, prod_node
):
    page = main(sender_client.get(reverse("commands:send")))
    assert dev_node.pk in page and prod_node.pk not in page
    response = sender_client.post(reverse("commands:send"), send_form([prod_node.pk]))
    html = main(response)
    assert response.status_code == 400
    assert f"not allowed to send to: {prod_node.pk}" in html
    both = main(
        sender_client.post(reverse("commands:send"), send_form([dev_node.pk, prod_node.pk]))
    )
    assert "Not sent, refused by policy" in both and prod_node.pk in both
    assert "<strong>1 node</strong>" in both


def test_a_group_the_sender_may_not_read_is_refused_beside_the_group(sender_client, dev_node):
    ResourceGroupFactory(name="dev-group")
    data = send_form([], target_mode="group", resource_group="dev-group")
    response = sender_client.post(reverse("commands:send"), data)
    html = main(response)
    assert response.status_code == 400
    field_at = html.index('id="id_resource_group"')
    refusal = html.index("not authorized to perform resource-groups:GetGroup")
    assert field_at < refusal < field_at + 3000
    assert AuditEvent.objects.filter(action="resource-groups:GetGroup", outcome="denied").exists()


def test_choosing_another_document_shows_its_parameters_without_errors(admin_client, user_document):
    html = fragment(
        admin_client.get(reverse("commands:send"), {"document": user_document.name}, headers=HX)
    )
    assert html.startswith('<div id="document-part">')
    assert 'name="param-message"' in html and 'value="hello"' in html
    assert '<option value="warn">warn</option>' in html  # allowedValues become a select
    # Without JavaScript, the same happens through a post of the form (nothing checked yet).
    data = send_form([], document=user_document.name, step="review")
    html = main(admin_client.post(reverse("commands:send"), data))
    assert 'name="param-message"' in html and "is-invalid" not in html


def test_a_rerun_starts_from_everything_the_earlier_command_had(
    admin_client, admin_user, agent, django_capture_on_commit_callbacks
):
    command = sent(
        admin_user,
        [agent.node_id],
        django_capture_on_commit_callbacks,
        parameters={"commands": ["df -h", "uptime"]},
        max_concurrency="10%",
        max_errors="2",
        timeout_seconds=600,
        comment="disk check",
    )
    html = main(admin_client.get(reverse("commands:send"), {"rerun": command.command_id}))
    assert f'<option value="{SHELL}" selected>' in html
    assert "df -h\nuptime</textarea>" in html
    assert f'value="{agent.node_id}" id="node-{agent.node_id}" checked' in html
    assert 'value="10%"' in html and 'value="2"' in html and 'value="600"' in html
    assert 'value="disk check"' in html
    assert 'id="preview-total">1<' in html


def test_a_rerun_by_tags_fills_in_the_tags(admin_client, admin_user, dev_node):
    command = command_row(
        admin_user,
        targets=[
            {"Key": "tag:Env", "Values": ["dev", "test"]},
            {"Key": "tag-key", "Values": ["Role"]},
        ],
    )
    html = main(admin_client.get(reverse("commands:send"), {"rerun": command.command_id}))
    assert 'id="mode-tags" value="tags" autocomplete="off" checked' in html
    assert "Env=dev,test\nRole</textarea>" in html


# --- The target preview and the node picker --------------------------------------------------


def test_the_preview_counts_online_and_offline_and_names_what_is_left_out(
    admin_client, dev_node, prod_node
):
    prod_node.status = "ConnectionLost"
    prod_node.save()
    unknown = "mi-00000000000000001"
    query = {"target_mode": "instances", "instance_ids": [dev_node.pk, prod_node.pk, unknown]}
    html = fragment(admin_client.get(reverse("commands:send-preview"), query, headers=HX))
    assert html.startswith('<div class="card mb-3" id="target-preview"')
    assert 'id="preview-total">2<' in html
    assert "1 online" in html and "1 offline" in html
    assert f'Unknown: <span class="font-monospace">{unknown}' in html


def test_the_preview_shows_the_first_ten_nodes_and_how_many_more(admin_client):
    for n in range(12):
        ManagedNodeFactory(name=f"web-{n:02}", tags={"Role": "web"})
    query = {"target_mode": "tags", "target_tags": "Role"}
    html = admin_client.get(reverse("commands:send-preview"), query).content.decode()
    assert 'id="preview-total">12<' in html and "and 2 more" in html
    assert "web-09" in html and "web-10" not in html


def test_the_preview_says_what_is_wrong_with_the_targets(admin_client):
    query = {"target_mode": "tags", "target_tags": "a=b\nc=d\ne=f\ng=h\ni=j\nk=l"}
    html = admin_client.get(reverse("commands:send-preview"), query).content.decode()
    assert 'id="preview-error"' in html and "at most 5" in html
    empty = admin_client.get(reverse("commands:send-preview"), {"target_mode": "tags"})
    assert "Choose nodes, tags or a group" in empty.content.decode()


def test_the_node_picker_filters_and_keeps_the_ticked_nodes(admin_client, dev_node, prod_node):
    query = {"node_q": "prod", "instance_ids": [dev_node.pk]}
    html = fragment(admin_client.get(reverse("commands:send-nodes"), query, headers=HX))
    assert html.startswith('<div id="node-picker"')
    assert f'value="{dev_node.pk}" id="node-{dev_node.pk}" checked' in html
    assert prod_node.pk in html


# --- A command's page ------------------------------------------------------------------------


def test_the_command_page_follows_progress_live_until_it_ends(
    admin_client, admin_user, agent, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    url = reverse("commands:detail", args=[command.command_id])
    page = main(admin_client.get(url))
    assert 'hx-trigger="every 1s"' in page and 'id="cancel-command"' in page
    assert "Pending: 1" in page and "0 of 1 node done" in page

    message = fetched(agent)
    partial = fragment(admin_client.get(url, headers=HX))
    assert partial.startswith('<div id="command-live"') and "InProgress: 1" in partial

    reply(agent, message, django_capture_on_commit_callbacks, stdout="done\n")
    html = fragment(admin_client.get(url, headers=HX))
    assert "every 1s" not in html and "cancel-command" not in html
    assert "Success: 1" in html and "1 of 1 node done" in html and "bg-success" in html


def test_the_command_page_reports_ids_that_were_not_sent(
    admin_client, admin_user, agent, django_capture_on_commit_callbacks
):
    unknown = "mi-0000000000000abcd"
    command = sent(admin_user, [agent.node_id, unknown], django_capture_on_commit_callbacks)
    html = main(admin_client.get(reverse("commands:detail", args=[command.command_id])))
    assert f'Not sent: unknown: <span class="font-monospace">{unknown}' in html


def test_the_command_page_filters_its_invocations_by_status(
    admin_client, admin_user, dev_node, prod_node, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [dev_node.pk, prod_node.pk], django_capture_on_commit_callbacks)
    Invocation.objects.filter(node=prod_node).update(status="Failed", status_details="Failed")
    url = reverse("commands:detail", args=[command.command_id])
    html = main(admin_client.get(url, {"status": "Failed"}))
    assert f'data-node="{prod_node.pk}"' in html and f'data-node="{dev_node.pk}"' not in html


def test_cancelling_asks_first_then_cancels(
    admin_client, admin_user, agent, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    url = reverse("commands:cancel", args=[command.command_id])
    assert "Cancel this command?" in admin_client.get(url).content.decode()
    assert Command.objects.get().status == "Pending"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url)
    assert response["Location"] == reverse("commands:detail", args=[command.command_id])
    assert Command.objects.get().status == "Cancelled"
    again = admin_client.post(url, follow=True)
    assert "already ended" in again.content.decode()


def test_a_scoped_sender_sees_only_the_invocations_on_nodes_it_may_see(
    sender_client, admin_user, dev_node, prod_node, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [dev_node.pk, prod_node.pk], django_capture_on_commit_callbacks)
    html = main(sender_client.get(reverse("commands:detail", args=[command.command_id])))
    assert f'data-node="{dev_node.pk}"' in html and f'data-node="{prod_node.pk}"' not in html
    assert "1 more node run this command that you may not see" in html
    url = reverse("commands:invocation", args=[command.command_id, prod_node.pk])
    assert sender_client.get(url).status_code == 404


# --- One node's output -----------------------------------------------------------------------


def test_the_output_streams_while_running_and_stays_when_done(
    admin_client, admin_user, agent, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    url = reverse("commands:invocation", args=[command.command_id, agent.node_id])
    assert "Waiting for the node to start it." in main(admin_client.get(url))
    message = fetched(agent)
    chunk = {"step": 0, "stream": "stdout", "offset": 0, "data": "first line\n"}
    output_path = protocol.OUTPUT_PATH.format(message_id=message["message_id"])
    agent.post(output_path, {"chunks": [chunk]})
    live = fragment(admin_client.get(url, headers=HX))
    assert live.startswith('<div id="invocation-live"') and 'hx-trigger="every 1s"' in live
    assert "first line" in live

    reply(agent, message, django_capture_on_commit_callbacks, stdout="first line\nsecond\n")
    html = main(admin_client.get(url))
    assert "every 1s" not in html
    assert re.search(r'id="output-0-stdout" data-follow>first line\nsecond\n</pre>', html)
    assert 'code <span class="font-monospace">0</span>' in html
    download = admin_client.get(
        reverse("commands:output", args=[command.command_id, agent.node_id, 0, "stdout"])
    )
    assert download["Content-Type"] == "text/plain; charset=utf-8"
    assert download["Content-Disposition"].startswith("attachment;")
    assert download.content == b"first line\nsecond\n"


def test_long_output_is_cut_on_the_page_and_downloaded_whole(
    admin_client, admin_user, agent, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    message = fetched(agent)
    text = "".join(f"line {n:06}\n" for n in range(3000))  # 36,000 characters
    reply(agent, message, django_capture_on_commit_callbacks, stdout=text, dropped=4096)
    url = reverse("commands:invocation", args=[command.command_id, agent.node_id])
    html = main(admin_client.get(url))
    assert f"Showing the first 24,000 of {len(text):,} characters" in html
    assert "download the full output" in html
    assert "The agent dropped 4,096 bytes over the 8 MiB limit" in html
    assert text[INLINE_CHARS:] not in html
    download = admin_client.get(
        reverse("commands:output", args=[command.command_id, agent.node_id, 0, "stdout"])
    )
    assert download["Content-Disposition"].startswith("attachment;")
    assert b"".join(download.streaming_content).decode() == text


def test_an_output_download_of_a_missing_step_or_stream_is_404(
    admin_client, admin_user, agent, django_capture_on_commit_callbacks
):
    command = sent(admin_user, [agent.node_id], django_capture_on_commit_callbacks)
    for step, stream in ((5, "stdout"), (0, "journal")):
        url = reverse("commands:output", args=[command.command_id, agent.node_id, step, stream])
        assert admin_client.get(url).status_code == 404


# --- Documents -------------------------------------------------------------------------------


def test_the_document_list_filters_by_name_and_owner(admin_client, user_document):
    url = reverse("commands:documents")
    everything = main(admin_client.get(url))
    assert SHELL in everything and "say-hello" in everything and "Create document" in everything
    own = main(admin_client.get(url, {"owner": "Self"}))
    assert "say-hello" in own and SHELL not in own
    builtin = main(admin_client.get(url, {"owner": "Bosun"}))
    assert SHELL in builtin and "say-hello" not in builtin
    assert "say-hello" not in main(admin_client.get(url, {"q": "Shell"}))
    partial = fragment(admin_client.get(url, {"q": "say"}, headers=HX))
    assert partial.startswith('<div id="document-results">') and "say-hello" in partial


def test_a_builtin_document_is_shown_read_only(admin_client):
    html = main(admin_client.get(reverse("commands:document", args=[SHELL])))
    assert "ships with Bosun and is read-only" in html
    assert "Run this document" in html
    assert "Edit (new version)" not in html and ">Delete<" not in html
    edit = admin_client.get(reverse("commands:document-edit", args=[SHELL]), follow=True)
    assert "is read-only" in edit.content.decode()


def test_a_document_page_shows_parameters_steps_hash_and_both_formats(admin_client, user_document):
    url = reverse("commands:document", args=[user_document.name])
    html = main(admin_client.get(url))
    version = user_document.versions.get()
    assert version.content_hash in html
    assert "say</span>" in html and "aws:runShellScript" in html
    assert 'data-format="YAML"' in html and "schemaVersion: &quot;2.2&quot;" in html
    as_json = fragment(admin_client.get(url, {"format": "JSON"}, headers=HX))
    assert as_json.startswith('<div class="card mb-3" id="document-content">')
    assert "&quot;schemaVersion&quot;: &quot;2.2&quot;" in as_json


def test_a_document_is_created_with_its_errors_on_their_line(admin_client):
    url = reverse("commands:document-create")
    broken = USER_DOCUMENT.replace("name: say", "name: say\n    bogus: 1")
    response = admin_client.post(
        url, {"name": "my-doc", "content_format": "YAML", "content": broken}
    )
    html = main(response)
    assert response.status_code == 400
    assert "unknown key in a step" in html and "(line 14)" in html
    assert 'data-error-line="14"' in html
    assert '<span class="line-no">14</span>    bogus: 1' in html
    assert not Document.objects.filter(name="my-doc").exists()

    taken = admin_client.post(
        url, {"name": "AWS-Mine", "content_format": "YAML", "content": USER_DOCUMENT}
    )
    assert "reserved" in main(taken)

    created = admin_client.post(
        url, {"name": "my-doc", "content_format": "YAML", "content": USER_DOCUMENT}
    )
    assert created["Location"] == reverse("commands:document", args=["my-doc"])
    assert Document.objects.get(name="my-doc").created_by.username == "ada"


def test_editing_writes_a_new_version_that_can_be_made_default_compared_and_deleted(
    admin_client, user_document
):
    edit_url = reverse("commands:document-edit", args=[user_document.name])
    form = main(admin_client.get(edit_url))
    assert 'name="base_version" value="1"' in form
    changed = USER_DOCUMENT.replace("default: hello", "default: bonjour")
    unchanged = admin_client.post(
        edit_url, {"content_format": "YAML", "content": USER_DOCUMENT, "base_version": "1"}
    )
    assert unchanged.status_code == 400 and "matches another document" in main(unchanged)
    response = admin_client.post(
        edit_url,
        {"content_format": "YAML", "content": changed, "base_version": "1", "version_name": "fr"},
    )
    assert response["Location"].endswith("?version=2")
    stale = admin_client.post(
        edit_url, {"content_format": "YAML", "content": changed + "#", "base_version": "1"}
    )
    assert "not the latest version" in main(stale)

    page = main(admin_client.get(reverse("commands:document", args=[user_document.name])))
    assert "Set as default" in page and "Compare versions" in page

    diff = main(admin_client.get(reverse("commands:document-diff", args=[user_document.name])))
    assert 'data-kind="removed">-    default: hello' in diff
    assert 'data-kind="added">+    default: bonjour' in diff

    admin_client.post(
        reverse("commands:document-default", args=[user_document.name]), {"version": "2"}
    )
    user_document.refresh_from_db()
    assert user_document.default_version == 2

    delete_url = reverse("commands:document-delete", args=[user_document.name])
    assert (
        "Delete version 1 of say-hello?"
        in admin_client.get(delete_url, {"version": "1"}).content.decode()
    )
    admin_client.post(delete_url, {"version": "1"})
    assert list(user_document.versions.values_list("version", flat=True)) == [2]
    assert "Delete document say-hello?" in admin_client.get(delete_url).content.decode()
    response = admin_client.post(delete_url)
    assert response["Location"] == reverse("commands:documents")
    assert not Document.objects.filter(name="say-hello").exists()


def test_a_user_document_runs_with_its_generated_fields(
    admin_client, admin_user, agent, user_document, django_capture_on_commit_callbacks
):
    document_update(
        principal=Principal(user=admin_user),
        name=user_document.name,
        content=USER_DOCUMENT.replace("hello", "hi"),
        content_format="YAML",
    )
    data = {
        **send_form([agent.node_id], document="say-hello", step="send"),
        "loaded_document": "say-hello:2",
        "document_version": "2",
        "param-message": "howdy",
        "param-level": "warn",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("commands:send"), data)
    assert response.status_code == 302, main(response)[:3000]
    command = Command.objects.get()
    assert command.document_version == "2"
    assert command.parameters == {"message": ["howdy"], "level": ["warn"]}
    assert fetched(agent)["payload"]["steps"][0]["inputs"]["runCommand"] == ['echo "howdy warn"']
