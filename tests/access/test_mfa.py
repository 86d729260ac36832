"""The TOTP second factor: enrolment, the sign-in step, requirements."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.models import AccessSettings
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def code_for(device: TOTPDevice, *, offset: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + offset * device.step
    return f"{totp.token():06d}"


def sign_in(username: str) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def enrol(client: Client) -> TOTPDevice:
    client.post("/account/mfa/", {"action": "start"})
    device = TOTPDevice.objects.get(confirmed=False)
    response = client.post(
        "/account/mfa/", {"action": "confirm", "device": device.pk, "token": code_for(device)}
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_a_user_without_a_second_factor_signs_in_with_the_password_alone():
    UserFactory(username="ada")
    client = sign_in("ada")
    assert client.get("/").status_code == 200


def test_enrolment_shows_a_qr_code_and_turns_on_with_a_valid_code():
    UserFactory(username="ada")
    client = sign_in("ada")
    page = client.post("/account/mfa/", {"action": "start"})
    assert b"<svg" in page.content
    device = enrol(client)
    assert client.get("/account/mfa/").content.count(b"is <strong>on</strong>") == 1
    assert TOTPDevice.objects.filter(user=device.user, confirmed=True).count() == 1


def test_a_wrong_enrolment_code_is_refused_inline_and_nothing_is_turned_on():
    UserFactory(username="ada")
    client = sign_in("ada")
    client.post("/account/mfa/", {"action": "start"})
    device = TOTPDevice.objects.get()
    response = client.post(
        "/account/mfa/", {"action": "confirm", "device": device.pk, "token": "000000"}
    )
    assert response.status_code == 400
    assert b"That code is not right" in response.content
    assert not TOTPDevice.objects.filter(confirmed=True).exists()


def test_after_enrolment_sign_in_stops_at_the_code_until_it_is_right():
    user = UserFactory(username="ada")
    device = enrol(sign_in("ada"))
    client = sign_in("ada")
    held = client.get("/")
    assert held.status_code == 302
    assert held["Location"].startswith("/login/mfa/?next=/")
    assert client.get("/api/v1/me").json()["code"] == "mfa_required"

    wrong = client.post("/login/mfa/", {"token": "123456", "next": "/"})
    assert wrong.status_code == 400
    assert b"That code is not right" in wrong.content
    assert client.get("/").status_code == 302

    device.refresh_from_db()
    too_soon = client.post("/login/mfa/", {"token": code_for(device), "next": "/"})
    assert b"Too many wrong codes" in too_soon.content
    device.throttle_reset()  # as if the user waited the few seconds
    right = client.post("/login/mfa/", {"token": code_for(device, offset=1), "next": "/"})
    assert right.status_code == 302 and right["Location"] == "/"
    assert client.get("/").status_code == 200
    assert user.pk


def test_a_required_second_factor_sends_a_user_without_one_to_enrolment():
    UserFactory(username="ada")
    rules = AccessSettings.current()
    rules.require_mfa_for_everyone = True
    rules.save()
    client = sign_in("ada")
    response = client.get("/")
    assert response["Location"].startswith("/account/mfa/?next=/")
    assert b"requires a second factor" in client.get(response["Location"]).content


def test_a_requirement_for_a_group_applies_only_to_its_members():
    ops = Group.objects.create(name="ops")
    member = UserFactory(username="mia")
    member.groups.add(ops)
    UserFactory(username="nils")
    AccessSettings.current().mfa_required_groups.add(ops)
    assert sign_in("mia").get("/").status_code == 302
    assert sign_in("nils").get("/").status_code == 200


def test_the_next_parameter_cannot_send_the_user_to_another_site():
    UserFactory(username="ada")
    device = enrol(sign_in("ada"))
    client = sign_in("ada")
    device.refresh_from_db()
    response = client.post(
        "/login/mfa/", {"token": code_for(device, offset=1), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
