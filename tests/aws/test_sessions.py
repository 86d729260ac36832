"""Session Manager over the AWS endpoint: StartSession, TerminateSession, DescribeSessions,
driven by boto3 and the aws CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from access.directory import user_arn
from sessions.models import Session, SessionStatus
from tests.aws.conftest import cli_json
from tests.factories import ManagedNodeFactory, UserFactory
from tests.shell_sessions.conftest import SessionFactory
from tests.shell_sessions.people import allow, user_with_policy


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def ids_of(answer: dict) -> list[str]:
    return [session["SessionId"] for session in answer["Sessions"]]


@pytest.fixture
def owner_arn(admin) -> str:
    return user_arn(admin)


# --- StartSession ---------------------------------------------------------------------------


def test_start_session_opens_a_session_and_points_at_its_websocket(ssm, owner_arn, live_server):
    node = ManagedNodeFactory()
    started = ssm.start_session(Target=node.pk, Reason="disk full")
    session_id = started["SessionId"]
    assert session_id.startswith("ada-")
    assert started["TokenValue"] == ""
    # On the origin the client used (the live server's host and port), ws: for http:.
    host = live_server.url.removeprefix("http://")
    assert started["StreamUrl"] == f"ws://{host}/ws/sessions/{session_id}/"

    [shown] = ssm.describe_sessions(State="Active")["Sessions"]
    assert shown["SessionId"] == session_id
    assert shown["Target"] == node.pk
    assert shown["Status"] == "Connecting"
    assert shown["Owner"] == owner_arn
    assert shown["DocumentName"] == "SSM-SessionManagerRunShell"
    assert shown["Reason"] == "disk full"
    assert isinstance(shown["StartDate"], datetime)
    assert "EndDate" not in shown
    assert ssm.describe_sessions(State="History")["Sessions"] == []


def test_start_session_runs_an_interactive_command_by_document_arn(ssm):
    node = ManagedNodeFactory()
    started = ssm.start_session(
        Target=node.pk,
        DocumentName="arn:aws:ssm:eu-west-1::document/AWS-StartInteractiveCommand",
        Parameters={"command": ["top"]},
    )
    session = Session.objects.get(session_id=started["SessionId"])
    assert session.document_name == "AWS-StartInteractiveCommand"
    assert session.command == "top"


def test_start_session_on_an_offline_node_is_refused(ssm):
    node = ManagedNodeFactory(status="ConnectionLost")
    with pytest.raises(ClientError) as raised:
        ssm.start_session(Target=node.pk)
    assert error_of(raised) == (
        "TargetNotConnected",
        f"{node.pk} is not connected: its agent is offline (ConnectionLost), so no shell can "
        "be opened there.",
    )


def test_start_session_with_an_unknown_document_is_refused(ssm):
    node = ManagedNodeFactory()
    with pytest.raises(ClientError) as raised:
        ssm.start_session(Target=node.pk, DocumentName="AWS-StartPortForwardingSession")
    assert error_of(raised) == (
        "InvalidDocument",
        "Document AWS-StartPortForwardingSession is not a session document this server runs; "
        "use SSM-SessionManagerRunShell or AWS-StartInteractiveCommand, "
        "Bosun-StartInteractiveCommand.",
    )


def test_start_session_on_an_unknown_node(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.start_session(Target="mi-0123456789abcdef0")
    assert error_of(raised) == (
        "InvalidInstanceId",
        "There is no managed node mi-0123456789abcdef0.",
    )


def test_a_user_without_a_policy_may_not_start_a_session(client_for):
    node = ManagedNodeFactory()
    nobody = client_for(UserFactory(username="nobody"))
    with pytest.raises(ClientError) as raised:
        nobody.start_session(Target=node.pk)
    code, message = error_of(raised)
    assert code == "AccessDeniedException"
    assert "nobody" in message and "ssm:StartSession" in message
    assert not Session.objects.exists()


# --- TerminateSession -----------------------------------------------------------------------


def test_terminate_session_ends_a_session_no_agent_picked_up(ssm):
    node = ManagedNodeFactory()
    session_id = ssm.start_session(Target=node.pk)["SessionId"]
    assert ssm.terminate_session(SessionId=session_id)["SessionId"] == session_id

    assert ssm.describe_sessions(State="Active")["Sessions"] == []
    [shown] = ssm.describe_sessions(State="History")["Sessions"]
    assert shown["SessionId"] == session_id
    assert shown["Status"] == "Terminated"
    assert isinstance(shown["EndDate"], datetime)
    assert shown["Details"] == "terminated by ada"
    # Terminating an ended session changes nothing and still answers its id.
    assert ssm.terminate_session(SessionId=session_id)["SessionId"] == session_id


def test_terminate_a_running_session_asks_its_relay(ssm):
    session = SessionFactory(status=SessionStatus.CONNECTED)
    ssm.terminate_session(SessionId=session.session_id)
    session.refresh_from_db()
    assert session.status == SessionStatus.TERMINATING


def test_terminate_an_unknown_session(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.terminate_session(SessionId="ada-0123456789abcdef0")
    assert error_of(raised) == (
        "DoesNotExistException",
        "There is no session ada-0123456789abcdef0.",
    )


def test_someone_else_may_not_terminate_a_session(client_for):
    session = SessionFactory(status=SessionStatus.CONNECTED)
    nobody = client_for(UserFactory(username="nobody"))
    with pytest.raises(ClientError) as raised:
        nobody.terminate_session(SessionId=session.session_id)
    code, message = error_of(raised)
    assert code == "AccessDeniedException"
    assert "ssm:TerminateSession" in message
    session.refresh_from_db()
    assert session.status == SessionStatus.CONNECTED


# --- DescribeSessions -----------------------------------------------------------------------


def test_describe_sessions_filters(ssm, owner_arn):
    now = timezone.now()
    web, db = ManagedNodeFactory(), ManagedNodeFactory()
    old = SessionFactory(node=web, started_at=now - timedelta(days=3))
    new = SessionFactory(node=db, status=SessionStatus.DISCONNECTED, started_at=now)
    ended = SessionFactory(
        node=web,
        status=SessionStatus.FAILED,
        ended_at=now,
        end_reason="failed on the node: no such user",
        max_duration_minutes=60,
    )

    def listed(state="Active", **filters):
        given = [{"key": key, "value": value} for key, value in filters.items()]
        answer = ssm.describe_sessions(State=state, **({"Filters": given} if given else {}))
        return set(ids_of(answer))

    assert listed() == {old.session_id, new.session_id}
    assert listed(Target=web.pk) == {old.session_id}
    assert listed(Status="Disconnected") == {new.session_id}
    assert listed(SessionId=old.session_id) == {old.session_id}
    assert listed(Owner=owner_arn) == {old.session_id, new.session_id}
    assert listed(Owner="ada") == {old.session_id, new.session_id}
    assert listed(Owner="arn:aws:iam::000000000000:user/someone") == set()
    day_ago = (now - timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert listed(InvokedAfter=day_ago) == {new.session_id}
    assert listed(InvokedBefore=day_ago) == {old.session_id}
    assert listed(AccessType="Standard") == {old.session_id, new.session_id}
    assert listed(AccessType="JustInTime") == set()

    [history] = ssm.describe_sessions(State="History")["Sessions"]
    assert history["SessionId"] == ended.session_id
    assert history["Status"] == "Failed"
    assert history["Details"] == "failed on the node: no such user"
    assert history["MaxSessionDuration"] == "60"


def test_describe_sessions_refuses_a_date_it_cannot_read(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_sessions(State="Active", Filters=[{"key": "InvokedAfter", "value": "soon"}])
    assert error_of(raised) == (
        "ValidationException",
        "The InvokedAfter filter's value 'soon' is not a date and time such as "
        "2018-08-29T00:00:00Z.",
    )


def test_describe_sessions_checks_the_model(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_sessions(State="Active", MaxResults=201)
    code, message = error_of(raised)
    assert code == "ValidationException"
    assert "at 'maxResults' failed to satisfy constraint" in message


def test_describe_sessions_paginates(ssm):
    node = ManagedNodeFactory()
    made = {SessionFactory(node=node).session_id for _ in range(7)}
    pages = list(
        ssm.get_paginator("describe_sessions").paginate(
            State="Active", PaginationConfig={"PageSize": 3}
        )
    )
    assert [len(page["Sessions"]) for page in pages] == [3, 3, 1]
    assert {session for page in pages for session in ids_of(page)} == made


def test_a_bad_next_token_is_invalid(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.describe_sessions(State="Active", NextToken="bm9wZQ")
    assert error_of(raised) == ("InvalidNextToken", "The specified token is not valid.")


def test_a_user_sees_their_own_sessions_and_those_policy_allows(client_for):
    dev, prod = ManagedNodeFactory(tags={"Env": "dev"}), ManagedNodeFactory(tags={"Env": "prod"})
    nobody = UserFactory(username="nobody")
    theirs = SessionFactory(node=prod, started_by=nobody)
    on_dev = SessionFactory(node=dev)
    SessionFactory(node=prod)
    auditor = user_with_policy(
        "audra",
        allow(
            ["ssm:DescribeSessions"],
            condition={"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        ),
    )
    assert ids_of(client_for(auditor).describe_sessions(State="Active")) == [on_dev.session_id]
    [own] = client_for(nobody).describe_sessions(State="Active")["Sessions"]
    assert own["SessionId"] == theirs.session_id
    assert own["Owner"] == user_arn(nobody)


# --- The aws CLI ----------------------------------------------------------------------------


def test_the_aws_cli_describes_and_terminates_sessions(aws_cli):
    session = SessionFactory(status=SessionStatus.CONNECTING)
    listed = cli_json(aws_cli("ssm", "describe-sessions", "--state", "Active"))
    assert ids_of(listed) == [session.session_id]
    done = cli_json(aws_cli("ssm", "terminate-session", "--session-id", session.session_id))
    assert done == {"SessionId": session.session_id}
    history = cli_json(aws_cli("ssm", "describe-sessions", "--state", "History"))
    assert history["Sessions"][0]["Status"] == "Terminated"
