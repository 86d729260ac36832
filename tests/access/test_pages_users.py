"""The user pages: the list, creating users, groups, policies, MFA reset and access keys."""

import json

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from access.models import AccessKey, ManagedPolicy
from access.services import access_key_secret, builtin_policies_sync
from audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OWN_KEYS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "bosun:ManageOwnAccessKeys",
                "Resource": "arn:aws:iam::*:user/${aws:username}",
            }
        ],
    }
)


@pytest.fixture(autouse=True)
def builtins(db):
    builtin_policies_sync()


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", email="sam@example.com")


def test_the_user_list_shows_groups_policies_mfa_and_keys(admin_client, sam):
    sam.groups.add(Group.objects.create(name="ops"))
    ManagedPolicy.objects.get(name="AuditViewer").users.add(sam)
    TOTPDevice.objects.create(user=sam, name="app", confirmed=True)
    html = admin_client.get(reverse("access:users")).content.decode()
    row = html.split(">sam</a>", 1)[1].split("</tr>", 1)[0]
    assert "ops" in row and "AuditViewer" in row and ">On<" in row and "Active" in row


def test_the_user_list_searches_and_filters_by_group(admin_client, sam):
    ops = Group.objects.create(name="ops")
    UserFactory(username="tina").groups.add(ops)
    by_name = admin_client.get(reverse("access:users"), {"q": "example.com"}).content.decode()
    assert ">sam</a>" in by_name and ">tina</a>" not in by_name
    by_group = admin_client.get(reverse("access:users"), {"group": ops.pk}).content.decode()
    assert ">tina</a>" in by_group and ">sam</a>" not in by_group


def test_creating_a_user_checks_the_password_with_djangos_validators(admin_client):
    response = admin_client.post(
        reverse("access:user-create"), {"username": "newbie", "password": "123"}
    )
    assert response.status_code == 400
    assert b"is-invalid" in response.content and b"too short" in response.content
    assert not User.objects.filter(username="newbie").exists()


def test_creating_a_user_puts_them_in_the_chosen_groups(admin_client):
    ops = Group.objects.create(name="ops")
    response = admin_client.post(
        reverse("access:user-create"),
        {"username": "newbie", "password": "a long enough passphrase", "groups": [ops.pk]},
    )
    newbie = User.objects.get(username="newbie")
    assert response["Location"] == reverse("access:user", args=[newbie.pk])
    assert list(newbie.groups.all()) == [ops] and newbie.check_password("a long enough passphrase")
    assert AuditEvent.objects.filter(action="bosun:CreateUser").exists()


def test_a_duplicate_user_name_is_reported_on_the_form(admin_client, sam):
    response = admin_client.post(
        reverse("access:user-create"), {"username": "SAM", "password": "a long enough passphrase"}
    )
    assert response.status_code == 400 and b"already exists" in response.content


def test_policies_attach_to_and_detach_from_a_user(admin_client, sam):
    policy = ManagedPolicy.objects.get(name="AuditViewer")
    admin_client.post(reverse("access:user-policy-attach", args=[sam.pk]), {"policy": policy.pk})
    assert policy.users.filter(pk=sam.pk).exists()
    admin_client.post(reverse("access:user-policy-detach", args=[sam.pk, policy.pk]))
    assert not policy.users.filter(pk=sam.pk).exists()


def test_a_users_groups_are_saved_from_their_page(admin_client, sam):
    ops = Group.objects.create(name="ops")
    admin_client.post(reverse("access:user-groups", args=[sam.pk]), {"groups": [ops.pk]})
    assert list(sam.groups.all()) == [ops]


def test_deactivating_a_user_asks_first(admin_client, sam):
    url = reverse("access:user-active", args=[sam.pk])
    assert b"Deactivate sam?" in admin_client.get(url).content
    sam.refresh_from_db()
    assert sam.is_active
    admin_client.post(url)
    sam.refresh_from_db()
    assert not sam.is_active


def test_an_admin_resets_a_users_mfa(admin_client, sam):
    TOTPDevice.objects.create(user=sam, name="app", confirmed=True)
    admin_client.post(reverse("access:user-mfa-reset", args=[sam.pk]))
    assert not TOTPDevice.objects.filter(user=sam).exists()
    assert AuditEvent.objects.filter(action="bosun:ResetMfa").exists()


def test_the_access_key_secret_appears_once_on_the_creation_response_only(admin_client, sam):
    created = admin_client.post(reverse("access:key-create", args=[sam.pk]))
    assert created.status_code == 201
    assert "no-store" in created["Cache-Control"]
    key = AccessKey.objects.get(user=sam)
    secret = access_key_secret(key)
    assert created.content.decode().count(secret) == 1
    assert b"Copy the secret access key now." in created.content
    for url in (reverse("access:user", args=[sam.pk]), reverse("access:users")):
        later = admin_client.get(url).content.decode()
        assert secret not in later
    assert (
        key.access_key_id
        in admin_client.get(reverse("access:user", args=[sam.pk])).content.decode()
    )


def test_an_access_key_is_deactivated_and_deleted_after_a_question(admin_client, sam):
    admin_client.post(reverse("access:key-create", args=[sam.pk]))
    key = AccessKey.objects.get(user=sam)
    admin_client.post(reverse("access:key-status", args=[sam.pk, key.pk]), {"active": "0"})
    key.refresh_from_db()
    assert key.status == AccessKey.Status.INACTIVE
    url = reverse("access:key-delete", args=[sam.pk, key.pk])
    assert b"Delete access key" in admin_client.get(url).content
    admin_client.post(url)
    assert not AccessKey.objects.filter(pk=key.pk).exists()


def test_a_user_may_open_their_own_page_to_manage_their_keys(client, sam):
    ManagedPolicy.objects.create(name="OwnKeys", document=OWN_KEYS).users.add(sam)
    other = UserFactory(username="tina")
    client.force_login(sam)
    page = client.get(reverse("access:user", args=[sam.pk]))
    assert page.status_code == 200 and b"Create access key" in page.content
    assert b"Attach policy" not in page.content
    assert client.post(reverse("access:key-create", args=[sam.pk])).status_code == 201
    assert client.get(reverse("access:user", args=[other.pk])).status_code == 403
    assert client.post(reverse("access:key-create", args=[other.pk])).status_code == 403
    assert client.get(reverse("access:users")).status_code == 403


def test_an_outsider_may_change_nothing_about_users(client, outsider_user, sam):
    client.force_login(outsider_user)
    policy = ManagedPolicy.objects.get(name="AdministratorAccess")
    posts = [
        (reverse("access:user-create"), {"username": "x", "password": "a long passphrase"}),
        (reverse("access:user-groups", args=[sam.pk]), {}),
        (reverse("access:user-policy-attach", args=[sam.pk]), {"policy": policy.pk}),
        (reverse("access:user-active", args=[sam.pk]), {}),
        (reverse("access:user-mfa-reset", args=[sam.pk]), {}),
        (reverse("access:key-create", args=[sam.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert not policy.users.filter(pk=sam.pk).exists()
    assert not AccessKey.objects.exists() and not User.objects.filter(username="x").exists()


def test_a_read_only_user_sees_users_but_no_change_buttons(client, sam):
    reader = UserFactory(username="rita")
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(reader)
    client.force_login(reader)
    listing = client.get(reverse("access:users"))
    assert listing.status_code == 200 and b"Create user" not in listing.content
    detail = client.get(reverse("access:user", args=[sam.pk]))
    assert detail.status_code == 200
    assert b"Save groups" not in detail.content and b"Attach policy" not in detail.content
    assert client.post(reverse("access:user-groups", args=[sam.pk]), {}).status_code == 403
