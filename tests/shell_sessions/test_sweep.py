"""The sweep ends sessions no live party will end, says why, and leaves live ones alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from fleet.models import NodeStatus
from sessions.models import Session, SessionStatus
from sessions.services.recording import recording_start
from sessions.services.sweep import (
    AGENT_LOST_AFTER,
    CONNECT_TIMEOUT,
    TERMINATE_TIMEOUT,
    sessions_sweep,
)
from sessions.tasks import sweep
from tests.factories import ManagedNodeFactory
from tests.shell_sessions.conftest import SessionFactory

pytestmark = pytest.mark.django_db


def waited(status: str, for_: timedelta, **fields) -> Session:
    """A session that has been in `status` for `for_`."""
    return SessionFactory(status=status, status_changed_at=timezone.now() - for_, **fields)


def ended(session: Session) -> Session:
    session.refresh_from_db()
    return session


def test_a_session_whose_agent_never_connected_fails_after_the_connect_timeout():
    stuck = waited(SessionStatus.CONNECTING, CONNECT_TIMEOUT + timedelta(seconds=1))
    young = waited(SessionStatus.CONNECTING, CONNECT_TIMEOUT - timedelta(seconds=5))

    assert sessions_sweep() == 1

    stuck = ended(stuck)
    assert stuck.status == SessionStatus.FAILED
    assert "did not open the session within 60 s" in stuck.end_reason
    assert stuck.ended_at is not None
    assert ended(young).status == SessionStatus.CONNECTING


def test_a_session_whose_agent_stayed_away_past_its_grace_fails_and_says_why():
    lost = waited(SessionStatus.DISCONNECTED, AGENT_LOST_AFTER + timedelta(seconds=1))
    within = waited(SessionStatus.DISCONNECTED, AGENT_LOST_AFTER - timedelta(seconds=5))

    assert sessions_sweep() == 1

    lost = ended(lost)
    assert lost.status == SessionStatus.FAILED
    assert "lost its connection for more than 30 s" in lost.end_reason
    assert ended(within).status == SessionStatus.DISCONNECTED


def test_a_connected_session_on_a_node_that_went_offline_ends_and_one_on_an_online_node_stays():
    offline = ManagedNodeFactory(status=NodeStatus.CONNECTION_LOST)
    gone = waited(SessionStatus.CONNECTED, AGENT_LOST_AFTER * 2, node=offline)
    alive = waited(SessionStatus.CONNECTED, timedelta(hours=3))  # a long, healthy session

    assert sessions_sweep() == 1

    assert ended(gone).status == SessionStatus.FAILED
    assert NodeStatus.CONNECTION_LOST in ended(gone).end_reason
    assert ended(alive).status == SessionStatus.CONNECTED


def test_a_termination_nobody_confirmed_ends_terminated():
    session = waited(SessionStatus.TERMINATING, TERMINATE_TIMEOUT + timedelta(seconds=1))

    assert sessions_sweep() == 1

    session = ended(session)
    assert session.status == SessionStatus.TERMINATED
    assert "did not confirm" in session.end_reason


def test_the_sweep_seals_the_recording_and_audits_the_ending_as_a_task():
    session = waited(SessionStatus.DISCONNECTED, AGENT_LOST_AFTER * 2)
    recording_start(session=session, width=80, height=24, term="xterm", login_shell="bash")

    sweep()

    session = ended(session)
    assert session.recording_sealed_at is not None
    event = AuditEvent.objects.filter(action="bosun:EndSession").latest("sequence")
    assert event.face == AuditEvent.Face.TASK
    assert event.params["SessionId"] == session.session_id


def test_ended_and_healthy_sessions_are_left_alone():
    finished = waited(SessionStatus.TERMINATED, timedelta(days=1), ended_at=timezone.now())
    connected = waited(SessionStatus.CONNECTED, timedelta(minutes=5))

    assert sessions_sweep() == 0

    assert ended(finished).end_reason == ""
    assert ended(connected).status == SessionStatus.CONNECTED
