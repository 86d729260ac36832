import pytest
from django.db import connection
from django.urls import reverse

from audit.models import AuditEvent
from audit.selectors import events_visible_to
from audit.verification import verify_chain
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64)", "REMOTE_ADDR": "198.51.100.4"}


def sign_ins() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="bosun:SignIn").order_by("sequence"))


def test_a_successful_sign_in_is_recorded_with_its_address_and_browser(client):
    user = UserFactory(username="ada")
    client.post(reverse("login"), {"username": "ada", "password": PASSWORD}, **BROWSER)
    (event,) = sign_ins()
    assert (event.principal, event.user_id, event.outcome) == ("ada", user.pk, "success")
    assert (event.source_ip, event.user_agent, event.face) == (
        "198.51.100.4",
        BROWSER["HTTP_USER_AGENT"],
        "web",
    )


def test_a_failed_sign_in_is_recorded_as_denied_under_the_attempted_name_without_the_password(
    client,
):
    owner = UserFactory(username="ada")
    wrong = "not-the-password-8d2e"
    client.post(reverse("login"), {"username": "ada", "password": wrong}, **BROWSER)
    client.post(reverse("login"), {"username": "nobody", "password": wrong}, **BROWSER)
    first, second = sign_ins()
    assert (first.principal, first.outcome, first.user_id) == ("ada", "denied", owner.pk)
    assert first.error_code == "InvalidCredentials"
    assert (second.principal, second.user_id) == ("nobody", None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditevent")
        assert wrong not in repr(cursor.fetchall())


def test_signing_out_is_recorded(client):
    user = UserFactory(username="ada")
    client.force_login(user)
    client.post(reverse("logout"), **BROWSER)
    event = AuditEvent.objects.get(action="bosun:SignOut")
    assert (event.principal, event.user_id, event.source_ip) == ("ada", user.pk, "198.51.100.4")
    assert verify_chain().ok


def test_a_user_sees_attempts_on_their_own_account_among_their_events(client):
    owner = UserFactory(username="ada")
    other = UserFactory(username="otto")
    client.post(reverse("login"), {"username": "ada", "password": "wrong"})
    client.post(reverse("login"), {"username": "otto", "password": "wrong"})
    assert [e.principal for e in events_visible_to(owner)] == ["ada"]
    assert [e.principal for e in events_visible_to(other)] == ["otto"]
