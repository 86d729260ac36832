"""Each persona across each face built so far (issue 3, "Done when").

Allowed where policy allows; otherwise the face's refusal — 403 HTML for pages and htmx,
403 `{detail, code}` for the REST API, close code 4403 for websockets, AccessDenied for tasks —
and every denial audited, with nothing changed.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from access import services
from access.adapters import (
    CLOSE_FORBIDDEN,
    PolicyPermission,
    authorize_scope,
    principal_for_task,
    principal_from_scope,
)
from access.authorization import authorize
from access.management.commands.createaccesskey import operator_principal
from audit.models import AuditEvent
from audit.services import audit_record
from bosun.lib.errors import AccessDenied
from tests.web.test_events_socket import communicator, session_cookie
from web import tasks
from web.consumers import EventsConsumer
from web.models import SystemCheck

pytestmark = pytest.mark.django_db

PERSONAS = ["admin", "operator", "auditor", "outsider"]
MAY_RUN_CHECKS = {"admin": True, "operator": True, "auditor": False, "outsider": False}
MAY_READ_AUDIT = {"admin": True, "operator": False, "auditor": True, "outsider": False}


@pytest.fixture
def persona(request, admin_user, operator_user, auditor_user, outsider_user) -> User:
    return {
        "admin": admin_user,
        "operator": operator_user,
        "auditor": auditor_user,
        "outsider": outsider_user,
    }[request.param]


def denials(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, outcome="denied"))


# --- HTML and htmx --------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_every_signed_in_persona_opens_the_dashboard(client, persona):
    client.force_login(persona)
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("worker-card")).status_code == 200


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
@pytest.mark.parametrize("htmx", [False, True])
def test_a_system_check_is_run_only_by_those_policy_allows(client, persona, htmx):
    client.force_login(persona)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(reverse("system-check-create"), **headers)

    if MAY_RUN_CHECKS[_name(persona)]:
        assert response.status_code == 201
        assert SystemCheck.objects.filter(requested_by=persona).count() == 1
        assert denials("bosun:RunSystemCheck") == []
    else:
        assert response.status_code == 403
        assert "You do not have permission" in response.content.decode()
        assert not SystemCheck.objects.exists()
        [denial] = denials("bosun:RunSystemCheck")
        assert (denial.principal, denial.face, denial.error_code) == (
            persona.username,
            "web",
            "AccessDeniedException",
        )
        assert not AuditEvent.objects.exclude(action="bosun:SignIn").filter(outcome="success")


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_the_audit_trail_opens_only_to_readers_who_see_every_event(client, persona):
    for _ in range(3):
        audit_record(principal="someone-else", action="ssm:PutParameter", outcome="success")
    client.force_login(persona)
    events_page = client.get(reverse("audit:events"))
    detail_page = client.get(reverse("audit:event", args=[1]))

    if MAY_READ_AUDIT[_name(persona)]:
        assert events_page.status_code == detail_page.status_code == 200
        assert events_page.content.decode().count("someone-else") >= 3
        assert "Audit trail" in client.get("/").content.decode()
    else:
        assert events_page.status_code == detail_page.status_code == 403
        assert [d.face for d in denials("bosun:ReadAuditTrail")] == ["web", "web"]
        assert "Audit trail" not in client.get("/").content.decode()


def test_a_signed_out_visitor_is_sent_to_sign_in_before_any_policy_is_asked(client, db):
    response = client.post(reverse("system-check-create"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert not AuditEvent.objects.exists()


# --- REST API -------------------------------------------------------------------------------


class RunCheckProbe(APIView):
    """A stand-in API view guarded like the API's write endpoints will be."""

    permission_classes = [PolicyPermission]
    policy_action = "bosun:RunSystemCheck"

    def policy_resource(self, request) -> str:
        return "arn:aws:ssm:*:*:document/AWS-RunSystemCheck"

    def post(self, request) -> Response:
        return Response({"ok": True})


def bearer(user: User) -> str:
    key, secret = services.access_key_create(principal=operator_principal(), user=user)
    return f"Bearer {key.access_key_id}:{secret}"


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_me_answers_every_persona_by_session_and_by_access_key(persona):
    by_session = APIClient()
    by_session.force_login(persona)
    by_key = APIClient(HTTP_AUTHORIZATION=bearer(persona))
    for api in (by_session, by_key):
        response = api.get(reverse("api-me"))
        assert response.status_code == 200
        assert response.json()["username"] == persona.username


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_a_policy_guarded_api_view_allows_or_answers_403_access_denied(persona):
    request = APIRequestFactory().post(
        "/api/v1/probe", HTTP_AUTHORIZATION=bearer(persona), REMOTE_ADDR="10.1.2.3"
    )
    response = RunCheckProbe.as_view()(request)

    if MAY_RUN_CHECKS[_name(persona)]:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response.data["code"] == "access_denied"
        assert "bosun:RunSystemCheck" in response.data["detail"]
        [denial] = denials("bosun:RunSystemCheck")
        assert denial.face == "api" and denial.source_ip == "10.1.2.3"
        assert denial.principal.startswith(f"{persona.username} (access-key:BKIA")
        assert denial.resources == ["arn:aws:ssm:*:*:document/AWS-RunSystemCheck"]


def test_a_policy_guarded_api_view_asks_an_anonymous_caller_to_authenticate(db):
    response = RunCheckProbe.as_view()(APIRequestFactory().post("/api/v1/probe"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not AuditEvent.objects.exists()


# --- Websockets -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_every_signed_in_persona_joins_the_event_feed(persona):
    cookie = session_cookie(persona)

    async def scenario():
        socket = communicator(cookie=cookie)
        connected, _ = await socket.connect()
        hello = await socket.receive_json_from(timeout=2)
        await socket.disconnect()
        return connected, hello

    assert async_to_sync(scenario)() == (True, {"event": "hello", "data": {}})


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_user_is_refused_the_event_feed(operator_user):
    cookie = session_cookie(operator_user)
    User.objects.filter(pk=operator_user.pk).update(is_active=False)

    async def scenario():
        socket = communicator(cookie=cookie)
        await socket.connect()
        closed = await socket.receive_output(timeout=2)
        return closed

    closed = async_to_sync(scenario)()
    # The auth backend no longer resolves the session to an inactive user: "signed out".
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)


@pytest.mark.django_db(transaction=True)
def test_the_feed_closes_with_4403_on_an_inactive_user_however_the_scope_got_one(operator_user):
    operator_user.is_active = False

    async def scenario():
        socket = WebsocketCommunicator(EventsConsumer.as_asgi(), "/ws/events/")
        socket.scope["user"] = operator_user
        await socket.connect()
        return await socket.receive_output(timeout=2)

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


def scope_of(user: User, **extra) -> dict:
    return {
        "type": "websocket",
        "user": user,
        "client": ["10.9.8.7", 50000],
        "headers": [(b"user-agent", b"pytest-ws")],
        "session": {},
        **extra,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_a_consumer_authorizes_its_scope_or_gets_access_denied_audited(persona):
    scope = scope_of(persona)
    if MAY_RUN_CHECKS[_name(persona)]:
        principal = async_to_sync(authorize_scope)(scope, "bosun:RunSystemCheck")
        assert (principal.user, principal.face, principal.source_ip) == (persona, "ws", "10.9.8.7")
        assert denials("bosun:RunSystemCheck") == []
    else:
        with pytest.raises(AccessDenied):
            async_to_sync(authorize_scope)(scope, "bosun:RunSystemCheck")
        [denial] = denials("bosun:RunSystemCheck")
        assert (denial.face, denial.source_ip, denial.user_agent) == ("ws", "10.9.8.7", "pytest-ws")


def test_a_scope_counts_as_mfa_verified_only_with_a_confirmed_device_of_its_own_user(
    operator_user, outsider_user
):
    mine = TOTPDevice.objects.create(user=operator_user, name="phone", confirmed=True)
    theirs = TOTPDevice.objects.create(user=outsider_user, name="phone", confirmed=True)
    pending = TOTPDevice.objects.create(user=operator_user, name="new", confirmed=False)

    def mfa(session: dict) -> bool:
        return principal_from_scope(scope_of(operator_user, session=session)).mfa

    assert mfa({"otp_device_id": mine.persistent_id}) is True
    assert mfa({"otp_device_id": theirs.persistent_id}) is False
    assert mfa({"otp_device_id": pending.persistent_id}) is False
    assert mfa({"otp_device_id": "otp_totp.totpdevice/999999"}) is False
    assert mfa({"otp_device_id": "garbage"}) is False
    assert mfa({}) is False


# --- Celery tasks ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_a_task_acts_for_the_user_it_carries(persona):
    principal = principal_for_task(persona.pk)
    assert (principal.user, principal.face) == (persona, "task")
    if MAY_RUN_CHECKS[_name(persona)]:
        authorize(principal, "bosun:RunSystemCheck")
    else:
        with pytest.raises(AccessDenied):
            authorize(principal, "bosun:RunSystemCheck")
        [denial] = denials("bosun:RunSystemCheck")
        assert (denial.principal, denial.face) == (persona.username, "task")


def test_a_task_for_a_user_deleted_since_it_was_enqueued_is_refused(outsider_user):
    gone = outsider_user.pk
    outsider_user.delete()
    with pytest.raises(AccessDenied, match="no longer exists"):
        principal_for_task(gone)


def test_a_deactivated_user_s_task_is_denied(operator_user):
    User.objects.filter(pk=operator_user.pk).update(is_active=False)
    with pytest.raises(AccessDenied):
        authorize(principal_for_task(operator_user.pk), "bosun:RunSystemCheck")


def test_the_system_check_task_runs_eagerly_with_the_actor_it_carries(
    operator_client, operator_user
):
    operator_client.post(reverse("system-check-create"))
    check = SystemCheck.objects.get()
    tasks.run_system_check.apply(kwargs={"check_id": check.pk, "actor_id": operator_user.pk}).get()
    check.refresh_from_db()
    assert check.status in (SystemCheck.Status.PASSED, SystemCheck.Status.FAILED)


def _name(user: User) -> str:
    return {"ada": "admin", "otto": "operator", "audrey": "auditor", "oscar": "outsider"}[
        user.username
    ]
