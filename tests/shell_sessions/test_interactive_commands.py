"""Interactive command sessions: the documents AWS-StartInteractiveCommand and
Bosun-StartInteractiveCommand run one command instead of a shell, from the service and from
the start form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet.models import NodeMessage
from sessions.exceptions import InvalidDocument, SessionsValidationError
from sessions.models import Session
from sessions.services.preferences import preferences_update
from sessions.services.sessions import session_start
from tests.factories import ManagedNodeFactory
from tests.shell_sessions.people import allow, user_with_policy

pytestmark = pytest.mark.django_db

START = reverse("sessions:start")
NODES = "arn:aws:ssm:*:*:managed-instance/*"


def document(name: str) -> str:
    return f"arn:aws:ssm:*:*:document/{name}"


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.mark.parametrize("name", ["AWS-StartInteractiveCommand", "Bosun-StartInteractiveCommand"])
def test_an_interactive_command_goes_to_the_agent_as_the_payloads_command(admin, name):
    node = ManagedNodeFactory()
    session = session_start(
        principal=admin,
        node_id=node.pk,
        document_name=name,
        parameters={"command": ["journalctl -f -u nginx"]},
    )
    payload = NodeMessage.objects.get(node=node).payload
    assert payload["command"] == "journalctl -f -u nginx"
    session.refresh_from_db()
    assert session.document_name == name
    assert session.command == "journalctl -f -u nginx"
    (event,) = AuditEvent.objects.filter(action="ssm:StartSession")
    assert event.params["DocumentName"] == name
    assert event.params["Parameters"] == {"command": ["journalctl -f -u nginx"]}


def test_an_interactive_command_runs_without_the_shell_profile(admin):
    preferences_update(
        principal=admin,
        run_as="",
        shell_profile="cd /srv",
        idle_timeout_minutes=20,
        max_duration_minutes=0,
        reason_required=False,
        record_input=True,
    )
    node = ManagedNodeFactory()
    session_start(
        principal=admin,
        node_id=node.pk,
        document_name="AWS-StartInteractiveCommand",
        parameters={"command": ["top"]},
    )
    payload = NodeMessage.objects.get(node=node).payload
    assert payload["command"] == "top" and payload["profile"] == ""


@pytest.mark.parametrize("parameters", [None, {}, {"command": []}, {"command": ["  "]}])
def test_a_missing_or_blank_command_is_refused_naming_the_field(admin, parameters):
    with pytest.raises(SessionsValidationError) as refused:
        session_start(
            principal=admin,
            node_id=ManagedNodeFactory().pk,
            document_name="AWS-StartInteractiveCommand",
            parameters=parameters,
        )
    assert refused.value.field == "command"
    assert "command" in refused.value.message
    assert not Session.objects.exists() and not NodeMessage.objects.exists()


@pytest.mark.parametrize(
    "command", ["x" * 4097, "echo a\x00b", ["one", "two"], [42]], ids=["long", "nul", "two", "int"]
)
def test_a_command_that_is_too_long_holds_a_nul_or_is_not_one_string_is_refused(admin, command):
    with pytest.raises(SessionsValidationError) as refused:
        session_start(
            principal=admin,
            node_id=ManagedNodeFactory().pk,
            document_name="AWS-StartInteractiveCommand",
            parameters={"command": command},
        )
    assert refused.value.field == "command"


def test_a_command_of_4096_characters_is_accepted(admin):
    node = ManagedNodeFactory()
    session_start(
        principal=admin,
        node_id=node.pk,
        document_name="AWS-StartInteractiveCommand",
        parameters={"command": ["x" * 4096]},
    )
    assert len(NodeMessage.objects.get(node=node).payload["command"]) == 4096


def test_an_unknown_document_is_still_refused_as_invalid_document(admin):
    with pytest.raises(InvalidDocument):
        session_start(
            principal=admin,
            node_id=ManagedNodeFactory().pk,
            document_name="AWS-StartPortForwardingSession",
            parameters={"command": ["top"]},
        )


def test_a_parameter_the_document_does_not_have_is_refused(admin):
    with pytest.raises(SessionsValidationError) as refused:
        session_start(
            principal=admin,
            node_id=ManagedNodeFactory().pk,
            parameters={"command": ["top"]},
        )
    assert "no parameter command" in refused.value.message


def test_starting_an_interactive_command_needs_start_session_on_its_document():
    shell_only = user_with_policy(
        "sam",
        allow(["ssm:StartSession"], NODES),
        allow(["ssm:StartSession"], document("SSM-SessionManagerRunShell")),
    )
    with pytest.raises(AccessDenied):
        session_start(
            principal=Principal(user=shell_only),
            node_id=ManagedNodeFactory().pk,
            document_name="AWS-StartInteractiveCommand",
            parameters={"command": ["top"]},
        )
    (denied,) = AuditEvent.objects.filter(action="ssm:StartSession", outcome="denied")
    assert any("document/AWS-StartInteractiveCommand" in arn for arn in denied.resources)
    assert not Session.objects.exists()


# --- The start form -------------------------------------------------------------------------


def test_the_start_form_offers_a_shell_or_an_interactive_command(admin_client):
    body = admin_client.get(START).content.decode()
    assert 'name="session_type" value="shell"' in body
    assert 'name="session_type" value="command"' in body
    assert "Interactive command" in body
    assert 'name="command"' in body
    # A shell is what the form starts unless told otherwise.
    assert 'value="shell" class="form-check-input" id="id_session_type_0" checked' in body


def test_the_start_form_starts_an_interactive_command(admin_client):
    node = ManagedNodeFactory()
    response = admin_client.post(
        START, {"node_id": node.pk, "session_type": "command", "command": "htop -d 10"}
    )
    session = Session.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("sessions:terminal", args=[session.session_id])
    assert session.document_name == "AWS-StartInteractiveCommand"
    assert session.command == "htop -d 10"
    assert NodeMessage.objects.get(node=node).payload["command"] == "htop -d 10"


def test_the_start_form_asks_for_the_command_beside_its_field(admin_client):
    node = ManagedNodeFactory()
    response = admin_client.post(
        START, {"node_id": node.pk, "session_type": "command", "command": "   "}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-error-for="command"' in body
    assert "Give the command to run" in body
    assert not Session.objects.exists()


def test_the_start_form_ignores_a_command_typed_for_a_shell(admin_client):
    node = ManagedNodeFactory()
    admin_client.post(START, {"node_id": node.pk, "session_type": "shell", "command": "top"})
    session = Session.objects.get()
    assert session.document_name == "SSM-SessionManagerRunShell" and session.command == ""


def test_the_start_form_refuses_an_unknown_session_type(admin_client):
    node = ManagedNodeFactory()
    response = admin_client.post(START, {"node_id": node.pk, "session_type": "port"})
    assert response.status_code == 400
    assert 'data-error-for="session_type"' in response.content.decode()
    assert not Session.objects.exists()


def test_the_start_form_refuses_a_command_with_a_nul_beside_its_field(admin_client):
    node = ManagedNodeFactory()
    response = admin_client.post(
        START, {"node_id": node.pk, "session_type": "command", "command": "echo a\x00b"}
    )
    assert response.status_code == 400
    assert 'data-error-for="command"' in response.content.decode()


def test_the_session_page_shows_the_document_and_the_command(admin_client):
    node = ManagedNodeFactory()
    admin_client.post(START, {"node_id": node.pk, "session_type": "command", "command": "top"})
    session = Session.objects.get()
    body = admin_client.get(reverse("sessions:detail", args=[session.session_id])).content
    assert b'id="session-document">AWS-StartInteractiveCommand<' in body
    assert b'id="session-command">top<' in body


def test_a_shells_page_shows_its_document_and_no_command(admin_client):
    node = ManagedNodeFactory()
    admin_client.post(START, {"node_id": node.pk})
    session = Session.objects.get()
    body = admin_client.get(reverse("sessions:detail", args=[session.session_id])).content
    assert b'id="session-document">SSM-SessionManagerRunShell<' in body
    assert b'id="session-command"' not in body
