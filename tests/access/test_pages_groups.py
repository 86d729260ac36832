"""The group pages: create and delete, members, attached policies, who must use MFA."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from access import mfa
from access.models import AccessSettings, ManagedPolicy
from access.services import builtin_policies_sync
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def builtins(db):
    builtin_policies_sync()


@pytest.fixture
def ops(db):
    return Group.objects.create(name="ops")


def test_a_group_is_created_from_the_list_page(admin_client):
    response = admin_client.post(reverse("access:groups"), {"name": "db-admins"})
    group = Group.objects.get(name="db-admins")
    assert response["Location"] == reverse("access:group", args=[group.pk])


def test_a_bad_group_name_is_reported_on_the_form(admin_client, ops):
    spaced = admin_client.post(reverse("access:groups"), {"name": "two words"})
    assert spaced.status_code == 400 and b"no spaces" in spaced.content
    taken = admin_client.post(reverse("access:groups"), {"name": "OPS"})
    assert taken.status_code == 400 and b"already exists" in taken.content


def test_deleting_a_group_asks_first(admin_client, ops):
    url = reverse("access:group-delete", args=[ops.pk])
    assert b"Delete group ops?" in admin_client.get(url).content
    assert Group.objects.filter(pk=ops.pk).exists()
    admin_client.post(url)
    assert not Group.objects.filter(pk=ops.pk).exists()


def test_members_are_added_and_removed(admin_client, ops):
    sam = UserFactory(username="sam")
    admin_client.post(reverse("access:group-member", args=[ops.pk]), {"user": sam.pk})
    assert ops.user_set.filter(pk=sam.pk).exists()
    html = admin_client.get(reverse("access:group", args=[ops.pk])).content.decode()
    assert ">sam</a>" in html
    admin_client.post(
        reverse("access:group-member", args=[ops.pk]), {"user": sam.pk, "remove": "1"}
    )
    assert not ops.user_set.exists()


def test_policies_attach_to_and_detach_from_a_group(admin_client, ops):
    policy = ManagedPolicy.objects.get(name="AuditViewer")
    admin_client.post(reverse("access:group-policy", args=[ops.pk]), {"policy": policy.pk})
    assert policy.groups.filter(pk=ops.pk).exists()
    admin_client.post(
        reverse("access:group-policy", args=[ops.pk]), {"policy": policy.pk, "detach": "1"}
    )
    assert not policy.groups.exists()


def test_mfa_is_required_of_a_groups_members_and_then_of_everyone(admin_client, ops):
    member, other = UserFactory(username="sam"), UserFactory(username="tina")
    member.groups.add(ops)
    admin_client.post(reverse("access:group-mfa", args=[ops.pk]), {"required": "1"})
    assert mfa.mfa_required_for(member) and not mfa.mfa_required_for(other)
    admin_client.post(reverse("access:mfa-everyone"), {"required": "1"})
    assert mfa.mfa_required_for(other)
    admin_client.post(reverse("access:mfa-everyone"), {"required": "0"})
    admin_client.post(reverse("access:group-mfa", args=[ops.pk]), {"required": "0"})
    assert not AccessSettings.current().require_mfa_for_everyone
    assert not mfa.mfa_required_for(member)


def test_an_outsider_may_change_no_group(client, outsider_user, ops):
    client.force_login(outsider_user)
    posts = [
        (reverse("access:groups"), {"name": "mine"}),
        (reverse("access:group-delete", args=[ops.pk]), {}),
        (reverse("access:group-member", args=[ops.pk]), {"user": outsider_user.pk}),
        (reverse("access:group-mfa", args=[ops.pk]), {"required": "1"}),
        (reverse("access:mfa-everyone"), {"required": "1"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert list(Group.objects.values_list("name", flat=True)) == ["ops"]
    assert not ops.user_set.exists()
    assert not AccessSettings.current().require_mfa_for_everyone


def test_a_read_only_user_sees_groups_without_change_buttons(client, ops):
    reader = UserFactory(username="rita")
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(reader)
    client.force_login(reader)
    listing = client.get(reverse("access:groups"))
    assert listing.status_code == 200 and b"Create group" not in listing.content
    detail = client.get(reverse("access:group", args=[ops.pk]))
    assert detail.status_code == 200 and b"Delete group" not in detail.content
