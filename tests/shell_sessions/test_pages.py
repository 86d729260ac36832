"""Session Manager's pages: the list and its filters, a session's details with its recording
verified, the .cast download, the player's page, starting a session with errors beside the
form, the terminal page, terminating, and who is refused what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from access.directory import user_arn
from bosun.lib.navigation import menu_for
from fleet.models import NodeMessage, NodeStatus
from sessions.models import RecordingChunk, Session, SessionStatus
from sessions.navigation import may_see_sessions, register_pages
from sessions.services.recording import recordings_expire
from sessions.views import session as session_views
from tests.factories import ManagedNodeFactory, UserFactory, user_with_policy
from tests.shell_sessions.conftest import SessionFactory, execute

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
LIST = reverse("sessions:list")
START = reverse("sessions:start")

# Sees and starts sessions on Env=dev nodes only; terminates nobody else's.
DEV_SHELL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:StartSession", "ssm:DescribeSessions"],
            "Resource": "arn:aws:ssm:*:*:managed-instance/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        },
        {
            "Effect": "Allow",
            "Action": "ssm:StartSession",
            "Resource": "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell",
        },
    ],
}


def session_of(user, **fields) -> Session:
    """A session started by `user` (their ARN as the services write it)."""
    return SessionFactory(
        started_by=user,
        principal_arn=user_arn(user),
        principal_name=user.get_username(),
        **fields,
    )


def ended(session: Session, reason: str = "exited") -> Session:
    session.status = SessionStatus.TERMINATED
    session.ended_at = session.started_at + timedelta(seconds=42)
    session.end_reason = reason
    session.save(update_fields=["status", "ended_at", "end_reason"])
    return session


def listed(response) -> list[str]:
    return [session.session_id for session in response.context["page"]]


# --- The list -----------------------------------------------------------------------------


def test_the_list_shows_sessions_newest_first_with_their_state(admin_client, admin_user):
    older = session_of(admin_user, started_at=timezone.now() - timedelta(hours=2))
    newer = session_of(admin_user, reason="rotate the logs")
    response = admin_client.get(LIST)
    assert response.status_code == 200
    assert listed(response) == [newer.session_id, older.session_id]
    body = response.content.decode()
    assert "rotate the logs" in body
    assert 'id="start-session"' in body
    # An active session on the page: the results refresh themselves.
    assert 'hx-trigger="every 3s"' in body


def test_the_list_filters_by_user_node_state_and_time(admin_client, admin_user):
    otto = UserFactory(username="otto")
    web = ManagedNodeFactory(name="web-01")
    db = ManagedNodeFactory(name="db-01")
    mine = ended(session_of(admin_user, node=web))
    theirs = session_of(otto, node=db)
    last_week = session_of(otto, node=web, started_at=timezone.now() - timedelta(days=7))

    assert listed(admin_client.get(LIST, {"user": "ott"})) == [
        theirs.session_id,
        last_week.session_id,
    ]
    assert listed(admin_client.get(LIST, {"node": db.pk})) == [theirs.session_id]
    assert set(listed(admin_client.get(LIST, {"node": "web-"}))) == {
        mine.session_id,
        last_week.session_id,
    }
    assert listed(admin_client.get(LIST, {"state": "ended"})) == [mine.session_id]
    assert set(listed(admin_client.get(LIST, {"state": "active"}))) == {
        theirs.session_id,
        last_week.session_id,
    }
    assert listed(admin_client.get(LIST, {"state": "Terminated"})) == [mine.session_id]
    today = timezone.now().date()
    assert set(listed(admin_client.get(LIST, {"started_after": today.isoformat()}))) == {
        mine.session_id,
        theirs.session_id,
    }
    week_ago = (today - timedelta(days=7)).isoformat()
    assert listed(
        admin_client.get(LIST, {"started_after": week_ago, "started_before": week_ago})
    ) == [last_week.session_id]


def test_a_backwards_time_range_is_shown_beside_the_filter_and_filters_nothing_by_it(
    admin_client, admin_user
):
    session = session_of(admin_user)
    today = timezone.now().date()
    response = admin_client.get(
        LIST,
        {
            "started_after": today.isoformat(),
            "started_before": (today - timedelta(days=3)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert "The end of the range is before its start." in response.content.decode()
    assert session.session_id in listed(response)


def test_the_list_is_paginated_and_htmx_gets_only_the_results(
    admin_client, admin_user, monkeypatch
):
    monkeypatch.setattr("sessions.views.history.PAGE_SIZE", 2)
    for _ in range(5):
        ended(session_of(admin_user))
    first = admin_client.get(LIST)
    assert len(listed(first)) == 2
    assert "Page 1 of 3" in first.content.decode()
    last = admin_client.get(LIST, {"page": 3}, headers=HX)
    assert len(listed(last)) == 1
    body = last.content.decode()
    assert body.lstrip().startswith('<div id="session-results"')
    assert "<html" not in body
    # Nothing active on the page: no polling.
    assert "every 3s" not in body


def test_a_person_without_policy_sees_only_their_own_sessions(client, admin_user):
    oscar = UserFactory(username="oscar")
    own = session_of(oscar)
    session_of(admin_user)
    client.force_login(oscar)
    response = client.get(LIST)
    assert listed(response) == [own.session_id]
    assert 'id="start-session"' not in response.content.decode()


def test_describe_sessions_on_tagged_nodes_shows_those_nodes_sessions(client, admin_user):
    dev = ManagedNodeFactory(tags={"Env": "dev"})
    prod = ManagedNodeFactory(tags={"Env": "prod"})
    on_dev = session_of(admin_user, node=dev)
    session_of(admin_user, node=prod)
    client.force_login(user_with_policy("devon", DEV_SHELL_POLICY))
    assert listed(client.get(LIST)) == [on_dev.session_id]


# --- Details ------------------------------------------------------------------------------


def test_the_details_say_who_where_as_whom_why_how_long_and_that_the_recording_verifies(
    admin_client, admin_user, recorded
):
    session = recorded(3, started_by=admin_user, principal_arn=user_arn(admin_user))
    session.reason = "INC-42: disk full"
    session.end_reason = "exited"
    session.ended_at = session.started_at + timedelta(minutes=3, seconds=5)
    session.bytes_in, session.bytes_out = 120, 34567
    session.save()
    response = admin_client.get(reverse("sessions:detail", args=[session.session_id]))
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "ada",
        session.node.name,
        session.node_id,
        "ssm-user",
        "INC-42: disk full",
        "3 min 5 s",
        "exited",
        "120 in",
        "34,567 out",
        'data-recording-state="verified"',
        session.recording_final_hash,
        reverse("sessions:playback", args=[session.session_id]),
        reverse("sessions:recording", args=[session.session_id]),
    ):
        assert text in body, text
    assert response.context["recording"].ok
    # Ended: nothing to terminate, no terminal, no polling.
    assert 'id="terminate-session"' not in body
    assert 'id="open-terminal"' not in body
    assert "every 3s" not in body


def test_the_details_say_so_when_a_recording_was_tampered_with(admin_client, recorded):
    session = recorded(3)
    chunk = RecordingChunk.objects.get(session=session, sequence=1)
    execute(
        "UPDATE shell_sessions_recordingchunk SET data = %s WHERE id = %s",
        (b'[1.000000, "o", "rm -rf /\\r\\n"]\n', chunk.pk),
    )
    response = admin_client.get(reverse("sessions:detail", args=[session.session_id]))
    body = response.content.decode()
    assert 'data-recording-state="broken"' in body
    assert "Verification failed" in body
    assert "Chunk 1 (edited)" in body


def test_a_running_sessions_details_refresh_and_offer_the_owner_terminal_and_terminate(
    admin_client, admin_user
):
    session = session_of(admin_user)
    body = admin_client.get(reverse("sessions:detail", args=[session.session_id])).content
    body = body.decode()
    assert 'id="open-terminal"' in body
    assert 'id="terminate-session"' in body
    assert 'hx-trigger="every 3s"' in body
    partial = admin_client.get(
        reverse("sessions:detail", args=[session.session_id]), headers=HX
    ).content.decode()
    assert partial.lstrip().startswith('<div id="session-live"')


def test_someone_elses_session_is_not_found_for_a_person_who_may_not_see_it(
    client, admin_user, recorded
):
    session = recorded(1, started_by=admin_user, principal_arn=user_arn(admin_user))
    client.force_login(UserFactory(username="oscar"))
    for name in ("detail", "terminal", "playback", "recording", "terminate"):
        response = client.get(reverse(f"sessions:{name}", args=[session.session_id]))
        assert response.status_code == 404, name


def test_an_unknown_session_is_not_found(admin_client):
    response = admin_client.get(reverse("sessions:detail", args=["ada-0123456789abcdef0"]))
    assert response.status_code == 404


# --- The recording ------------------------------------------------------------------------


def test_the_recording_downloads_as_an_asciicast_file(admin_client, recorded):
    session = recorded(3)
    response = admin_client.get(reverse("sessions:recording", args=[session.session_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-asciicast"
    assert response["Content-Disposition"] == f'attachment; filename="{session.session_id}.cast"'
    body = b"".join(response.streaming_content)
    lines = body.decode().splitlines()
    assert lines[0] == session.recording_header
    assert lines[1:] == [f'[{n:.6f}, "o", "chunk {n}\\r\\n"]' for n in range(3)]


def test_an_expired_recording_is_gone_and_a_missing_one_is_a_conflict(
    admin_client, recorded, settings
):
    settings.BOSUN_SESSION_RECORDING_RETENTION_DAYS = 1
    old = recorded(2)
    old.ended_at = timezone.now() - timedelta(days=3)
    old.save(update_fields=["ended_at"])
    recordings_expire()
    expired = admin_client.get(reverse("sessions:recording", args=[old.session_id]))
    assert expired.status_code == 410
    assert "retention" in expired.content.decode()
    never = SessionFactory()
    missing = admin_client.get(reverse("sessions:recording", args=[never.session_id]))
    assert missing.status_code == 409
    page = admin_client.get(reverse("sessions:playback", args=[old.session_id]))
    assert 'id="player-unavailable"' in page.content.decode()
    assert 'id="player"' not in page.content.decode()


def test_the_playback_page_holds_the_player_for_the_cast(admin_client, recorded):
    session = recorded(2)
    response = admin_client.get(reverse("sessions:playback", args=[session.session_id]))
    assert response.status_code == 200
    body = response.content.decode()
    cast = reverse("sessions:recording", args=[session.session_id])
    assert f'data-cast-url="{cast}"' in body
    assert 'data-width="80" data-height="24"' in body
    assert "sessions/player.js" in body
    assert "vendor/xterm/lib/xterm.js" in body
    for speed in ("0.5", "1", "2", "4", "8"):
        assert f'<option value="{speed}"' in body


def test_a_session_without_a_recording_says_so_on_the_playback_page(admin_client):
    session = SessionFactory()
    body = admin_client.get(reverse("sessions:playback", args=[session.session_id])).content
    assert b"This session has no recording" in body


# --- Starting -----------------------------------------------------------------------------


def test_the_start_form_comes_with_the_node_from_the_node_page(admin_client):
    node = ManagedNodeFactory(name="web-01")
    node_page = admin_client.get(reverse("fleet:node", args=[node.pk])).content.decode()
    start_link = f"{START}?node={node.pk}"
    assert start_link in node_page
    response = admin_client.get(start_link)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'value="{node.pk}"' in body
    assert f'<option value="{node.pk}">web-01</option>' in body


def test_the_start_form_says_what_is_recorded(admin_client, settings):
    assert "and typed into it" in admin_client.get(START).content.decode()
    settings.BOSUN_SESSION_RECORD_INPUT = False
    assert "and typed into it" not in admin_client.get(START).content.decode()


def test_starting_a_session_opens_its_terminal(admin_client, admin_user):
    node = ManagedNodeFactory()
    response = admin_client.post(START, {"node_id": node.pk, "reason": "check the disk"})
    session = Session.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("sessions:terminal", args=[session.session_id])
    assert session.node == node
    assert session.reason == "check the disk"
    assert session.principal_arn == user_arn(admin_user)
    assert NodeMessage.objects.filter(node=node, kind="StartSession").exists()

    terminal = admin_client.get(response["Location"])
    assert terminal.status_code == 200
    body = terminal.content.decode()
    assert f'data-socket="/ws/sessions/{session.session_id}/"' in body
    assert "sessions/terminal.js" in body
    assert "vendor/xterm-addon-fit/addon-fit.js" in body
    assert 'id="terminate"' in body


@pytest.mark.parametrize(
    ("node_status", "node_id", "error"),
    [
        (None, "", "This field is required."),
        (None, "mi-0123456789abcdef0", "There is no managed node mi-0123456789abcdef0."),
        (NodeStatus.CONNECTION_LOST, None, "its agent is offline"),
    ],
    ids=["no node", "unknown node", "offline node"],
)
def test_a_session_that_cannot_start_says_why_beside_the_form(
    admin_client, node_status, node_id, error
):
    if node_id is None:
        node_id = ManagedNodeFactory(status=node_status).pk
    response = admin_client.post(START, {"node_id": node_id, "reason": "why not"})
    assert response.status_code == 400
    body = response.content.decode()
    assert error in body
    assert 'data-error-for="node_id"' in body
    assert 'value="why not"' in body  # what was typed stays
    assert not Session.objects.exists()


def test_a_required_reason_is_asked_for_beside_its_field(admin_client, settings):
    settings.BOSUN_SESSION_REASON_REQUIRED = True
    node = ManagedNodeFactory()
    form = admin_client.get(START).content.decode()
    assert "Reason (required)" in form
    response = admin_client.post(START, {"node_id": node.pk, "reason": "  "})
    assert response.status_code == 400
    assert 'data-error-for="reason"' in response.content.decode()
    assert not Session.objects.exists()


def test_starting_on_a_node_the_policy_does_not_allow_is_refused_beside_the_form(client):
    prod = ManagedNodeFactory(tags={"Env": "prod"})
    dev = ManagedNodeFactory(tags={"Env": "dev"})
    client.force_login(user_with_policy("devon", DEV_SHELL_POLICY))
    form = client.get(START).content.decode()
    assert f'<option value="{dev.pk}">' in form
    assert prod.pk not in form
    response = client.post(START, {"node_id": prod.pk})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-error-for="node_id"' in body
    assert "not authorized" in body.lower() or "denied" in body.lower()
    assert not Session.objects.exists()
    assert client.post(START, {"node_id": dev.pk}).status_code == 302


# --- The terminal and terminating ---------------------------------------------------------


def test_only_the_owner_gets_the_terminal_page(client, admin_user):
    session = session_of(UserFactory(username="otto"))
    client.force_login(admin_user)  # sees every session, attaches to none but their own
    assert client.get(reverse("sessions:terminal", args=[session.session_id])).status_code == 403


def test_an_ended_sessions_terminal_leads_to_its_details(admin_client, admin_user):
    session = ended(session_of(admin_user), reason="idle timeout")
    response = admin_client.get(reverse("sessions:terminal", args=[session.session_id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("sessions:detail", args=[session.session_id])
    details = admin_client.get(response["Location"]).content.decode()
    assert "The session has ended (Terminated: idle timeout)." in details


def test_terminating_asks_first_then_ends_the_session(admin_client, admin_user):
    session = session_of(admin_user, status=SessionStatus.CONNECTING)
    url = reverse("sessions:terminate", args=[session.session_id])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert "Terminate this session?" in confirm.content.decode()
    session.refresh_from_db()
    assert session.status == SessionStatus.CONNECTING
    response = admin_client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("sessions:detail", args=[session.session_id])
    session.refresh_from_db()
    assert session.status == SessionStatus.TERMINATED
    assert session.end_reason == "terminated by ada"


def test_a_viewer_without_terminate_session_gets_no_button_and_a_refusal(client, admin_user):
    dev = ManagedNodeFactory(tags={"Env": "dev"})
    session = session_of(admin_user, node=dev)
    client.force_login(user_with_policy("devon", DEV_SHELL_POLICY))
    details = client.get(reverse("sessions:detail", args=[session.session_id]))
    assert details.status_code == 200
    assert 'id="terminate-session"' not in details.content.decode()
    url = reverse("sessions:terminate", args=[session.session_id])
    assert client.get(url).status_code == 403
    response = client.post(url)
    assert response.status_code == 403
    session.refresh_from_db()
    assert session.status == SessionStatus.CONNECTED


# --- The menu -----------------------------------------------------------------------------


def test_the_menu_offers_session_manager_to_whom_may_list_or_start_sessions(admin_user):
    assert may_see_sessions(admin_user)
    assert may_see_sessions(user_with_policy("devon", DEV_SHELL_POLICY))
    assert not may_see_sessions(UserFactory(username="oscar"))
    register_pages()
    menu = dict(menu_for(admin_user, "sessions:list"))
    entry = next(e for e in menu["Node management"] if e.label == "Session Manager")
    assert entry.url == LIST
    assert entry.active


def test_a_large_recording_is_verified_when_asked_not_on_every_view(
    admin_client, recorded, monkeypatch
):
    session = recorded(3)
    monkeypatch.setattr(session_views, "AUTO_VERIFY_MAX_BYTES", 0)
    verified = []
    real = session_views.recording_verify
    monkeypatch.setattr(
        session_views, "recording_verify", lambda **kw: verified.append(1) or real(**kw)
    )
    page = reverse("sessions:detail", args=[session.session_id])

    body = admin_client.get(page).content.decode()
    assert 'data-recording-state="unverified"' in body
    assert 'id="verify-recording"' in body
    assert verified == []

    body = admin_client.get(page + "?verify=1").content.decode()
    assert 'data-recording-state="verified"' in body
    assert verified == [1]
