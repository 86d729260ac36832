"""session_start and session_terminate: authorization, audit, the agent's StartSession message."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet.exceptions import InvalidInstanceId
from fleet.models import NodeMessage, NodeStatus
from sessions.codes import session_arn
from sessions.exceptions import (
    DoesNotExistException,
    InvalidDocument,
    SessionsValidationError,
    TargetNotConnected,
)
from sessions.models import Session, SessionStatus
from sessions.selectors import sessions_visible
from sessions.services.recording import recording_verify
from sessions.services.sessions import session_start, session_terminate, sessions_replied
from tests.factories import ManagedNodeFactory
from tests.shell_sessions.people import allow, user_with_policy

pytestmark = pytest.mark.django_db


def audited(action: str, outcome: str = "success") -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, outcome=outcome))


def test_an_allowed_start_creates_the_session_queues_the_message_and_audits(admin_user):
    node = ManagedNodeFactory()
    session = session_start(
        principal=Principal(user=admin_user), node_id=node.pk, reason="disk full", cols=120, rows=40
    )
    assert session.status == SessionStatus.CONNECTING
    assert session.principal_name == "ada" and session.reason == "disk full"
    assert session.session_id.startswith("ada-")
    assert session.idle_timeout_minutes == 20 and session.max_duration_minutes is None
    assert session.recording_required and session.input_recorded
    # The recording's header is written at the start: a mandatory recording that cannot be
    # written refuses the session before the agent hears of it.
    assert session.recording_header_data["width"] == 120
    message = NodeMessage.objects.get(node=node)
    assert message.kind == "StartSession"
    assert message.payload == {
        "session_id": session.session_id,
        "run_as": "",
        "allow_root": False,
        "command": "",
        "profile": "",
        "cols": 120,
        "rows": 40,
        "idle_timeout_seconds": 1200,
        "max_duration_seconds": 0,
    }
    (event,) = audited("ssm:StartSession")
    assert session_arn(session.session_id) in event.resources
    assert event.params["Reason"] == "disk full"


@override_settings(
    BOSUN_SESSION_RUN_AS="ops",
    BOSUN_SESSION_ALLOW_ROOT=True,
    BOSUN_SESSION_IDLE_TIMEOUT_MINUTES=5,
    BOSUN_SESSION_MAX_DURATION_MINUTES=90,
    BOSUN_SESSION_RECORD_INPUT=False,
)
def test_the_settings_shape_the_payload(admin_user):
    node = ManagedNodeFactory()
    session = session_start(principal=Principal(user=admin_user), node_id=node.pk)
    payload = NodeMessage.objects.get(node=node).payload
    assert payload["run_as"] == "ops" and payload["allow_root"] is True
    assert payload["idle_timeout_seconds"] == 300
    assert payload["max_duration_seconds"] == 5400
    assert session.run_as == "ops" and not session.input_recorded


def test_a_user_allowed_on_dev_nodes_starts_there_and_is_denied_elsewhere_with_an_audit():
    user = user_with_policy(
        "devon",
        allow(
            ["ssm:StartSession"],
            "arn:aws:ssm:*:*:managed-instance/*",
            {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        ),
        allow(["ssm:StartSession"], "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell"),
    )
    dev = ManagedNodeFactory(tags={"Env": "dev"})
    prod = ManagedNodeFactory(tags={"Env": "prod"})
    session_start(principal=Principal(user=user), node_id=dev.pk)
    with pytest.raises(AccessDenied):
        session_start(principal=Principal(user=user), node_id=prod.pk)
    (denied,) = audited("ssm:StartSession", "denied")
    assert denied.resources == [f"arn:aws:ssm:us-east-1:000000000000:managed-instance/{prod.pk}"]
    assert Session.objects.count() == 1
    assert not NodeMessage.objects.filter(node=prod).exists()


def test_the_session_document_must_be_allowed_too():
    user = user_with_policy(
        "nodoc", allow(["ssm:StartSession"], "arn:aws:ssm:*:*:managed-instance/*")
    )
    node = ManagedNodeFactory()
    with pytest.raises(AccessDenied, match="document/SSM-SessionManagerRunShell"):
        session_start(principal=Principal(user=user), node_id=node.pk)
    assert not Session.objects.exists()


def test_an_outsider_is_denied(outsider_user):
    node = ManagedNodeFactory()
    with pytest.raises(AccessDenied):
        session_start(principal=Principal(user=outsider_user), node_id=node.pk)
    assert audited("ssm:StartSession", "denied")


def test_an_offline_node_is_refused_as_target_not_connected(admin_user):
    node = ManagedNodeFactory(status=NodeStatus.CONNECTION_LOST)
    with pytest.raises(TargetNotConnected, match="offline") as refused:
        session_start(principal=Principal(user=admin_user), node_id=node.pk)
    assert refused.value.aws_code == "TargetNotConnected"
    assert not Session.objects.exists() and not NodeMessage.objects.exists()


def test_an_unknown_node_is_refused(admin_user):
    with pytest.raises(InvalidInstanceId):
        session_start(principal=Principal(user=admin_user), node_id="mi-0123456789abcdef0")


def test_another_document_is_refused(admin_user):
    node = ManagedNodeFactory()
    with pytest.raises(InvalidDocument):
        session_start(principal=Principal(user=admin_user), node_id=node.pk, document_name="X")


def test_a_reason_is_required_when_the_setting_says_so(admin_user, settings):
    settings.BOSUN_SESSION_REASON_REQUIRED = True
    node = ManagedNodeFactory()
    with pytest.raises(SessionsValidationError, match="reason") as refused:
        session_start(principal=Principal(user=admin_user), node_id=node.pk, reason="  ")
    assert refused.value.field == "reason"
    assert session_start(principal=Principal(user=admin_user), node_id=node.pk, reason="INC-42")


@pytest.mark.parametrize("cols", [0, 1001, "80", True])
def test_a_terminal_size_out_of_range_is_refused(admin_user, cols):
    node = ManagedNodeFactory()
    with pytest.raises(SessionsValidationError):
        session_start(principal=Principal(user=admin_user), node_id=node.pk, cols=cols)


def test_a_session_no_agent_picked_up_is_ended_by_its_owners_terminate(admin_user):
    node = ManagedNodeFactory()
    session = session_start(principal=Principal(user=admin_user), node_id=node.pk)
    ended = session_terminate(principal=Principal(user=admin_user), session_id=session.session_id)
    assert ended.status == SessionStatus.TERMINATED
    assert ended.end_reason == "terminated by ada"
    assert ended.is_sealed and recording_verify(session=ended).ok
    assert audited("ssm:TerminateSession") and audited("bosun:EndSession")
    # Terminating again changes nothing.
    again = session_terminate(principal=Principal(user=admin_user), session_id=session.session_id)
    assert again.ended_at == ended.ended_at


def test_a_running_session_is_marked_terminating_for_its_relay(admin_user):
    node = ManagedNodeFactory()
    session = session_start(principal=Principal(user=admin_user), node_id=node.pk)
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CONNECTED)
    result = session_terminate(principal=Principal(user=admin_user), session_id=session.session_id)
    assert result.status == SessionStatus.TERMINATING


def test_another_user_needs_terminate_session_on_it(admin_user, outsider_user):
    node = ManagedNodeFactory()
    session = session_start(principal=Principal(user=admin_user), node_id=node.pk)
    with pytest.raises(AccessDenied):
        session_terminate(principal=Principal(user=outsider_user), session_id=session.session_id)
    (denied,) = audited("ssm:TerminateSession", "denied")
    assert denied.resources == [session_arn(session.session_id)]
    assert Session.objects.get(pk=session.pk).status == SessionStatus.CONNECTING
    terminator = user_with_policy("terry", allow(["ssm:TerminateSession"]))
    ended = session_terminate(principal=Principal(user=terminator), session_id=session.session_id)
    assert ended.status == SessionStatus.TERMINATED


def test_terminating_an_unknown_session_says_so(admin_user):
    with pytest.raises(DoesNotExistException):
        session_terminate(principal=Principal(user=admin_user), session_id="ada-0123456789abcdef0")


def test_a_user_sees_their_own_sessions_and_those_on_nodes_they_may_describe(
    admin_user, outsider_user
):
    dev = ManagedNodeFactory(tags={"Env": "dev"})
    prod = ManagedNodeFactory(tags={"Env": "prod"})
    on_dev = session_start(principal=Principal(user=admin_user), node_id=dev.pk)
    session_start(principal=Principal(user=admin_user), node_id=prod.pk)
    viewer = user_with_policy(
        "vera",
        allow(
            ["ssm:DescribeSessions"],
            "*",
            {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        ),
    )
    assert list(sessions_visible(principal=Principal(user=viewer))) == [on_dev]
    assert sessions_visible(principal=Principal(user=admin_user)).count() == 2
    assert not sessions_visible(principal=Principal(user=outsider_user)).exists()


def test_the_agents_reply_ends_a_session_its_relay_did_not(admin_user):
    node = ManagedNodeFactory()
    lost = session_start(principal=Principal(user=admin_user), node_id=node.pk)
    refused = session_start(principal=Principal(user=admin_user), node_id=node.pk)
    replies = list(NodeMessage.objects.filter(node=node).order_by("id"))
    replies[0].state, replies[0].result = (
        "succeeded",
        {
            "exit_status": -1,
            "end_reason": "agent lost the server",
            "bytes_in": 3,
            "bytes_out": 99,
        },
    )
    replies[1].state, replies[1].result = "failed", {"error": "no user bob"}
    with transaction.atomic():
        sessions_replied(replies)
    lost, refused = Session.objects.get(pk=lost.pk), Session.objects.get(pk=refused.pk)
    assert (lost.status, lost.end_reason, lost.bytes_out) == (
        SessionStatus.TERMINATED,
        "agent lost the server",
        99,
    )
    assert refused.status == SessionStatus.FAILED and "no user bob" in refused.end_reason
    assert lost.is_sealed and refused.is_sealed
