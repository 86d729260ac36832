"""The policy pages, and who may open each access page at all."""

import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from access.models import ManagedPolicy
from access.services import builtin_policies_sync
from audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GOOD_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadApp",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": "arn:aws:ssm:*:*:parameter/app/*",
            }
        ],
    }
)
# The second statement names an action that does not exist.
BAD_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"},
            {"Sid": "Typo", "Effect": "Allow", "Action": "ssm:GetParamter", "Resource": "*"},
        ],
    }
)


@pytest.fixture(autouse=True)
def builtins(db):
    builtin_policies_sync()


@pytest.fixture
def custom_policy(db):
    return ManagedPolicy.objects.create(name="AppReader", document=GOOD_DOCUMENT)


@pytest.fixture
def reader_client(client):
    reader = UserFactory(username="rita")
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(reader)
    client.force_login(reader)
    return client


@pytest.fixture
def outsider_client(client, outsider_user):
    client.force_login(outsider_user)
    return client


def page_urls(policy, user, group):
    return [
        reverse("access:users"),
        reverse("access:user-create"),
        reverse("access:user", args=[user.pk]),
        reverse("access:groups"),
        reverse("access:group", args=[group.pk]),
        reverse("access:policies"),
        reverse("access:policy-create"),
        reverse("access:policy", args=[policy.pk]),
        reverse("access:policy-edit", args=[policy.pk]),
        reverse("access:policy-delete", args=[policy.pk]),
        reverse("access:simulator"),
    ]


@pytest.fixture
def some_group(db):
    return Group.objects.create(name="ops")


def test_every_access_page_renders_for_the_admin(admin_client, custom_policy, some_group):
    someone = UserFactory(username="sam")
    for url in page_urls(custom_policy, someone, some_group):
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_the_admin_sees_the_access_section_in_the_menu(admin_client):
    html = admin_client.get(reverse("access:policies")).content.decode()
    assert "Access</div>" in html
    for label in ("Users", "Groups", "Policies", "Policy simulator"):
        assert label in html


def test_an_outsider_gets_403_on_every_access_page(outsider_client, custom_policy, some_group):
    someone = UserFactory(username="sam")
    for url in page_urls(custom_policy, someone, some_group):
        response = outsider_client.get(url)
        assert response.status_code == 403, url
        assert b"Access denied" in response.content


def test_an_outsider_sees_no_access_section_in_the_menu(outsider_client):
    html = outsider_client.get("/").content.decode()
    assert "Policy simulator" not in html
    assert reverse("access:users") not in html


def test_an_outsider_cannot_create_edit_or_delete_a_policy(outsider_client, custom_policy):
    creating = outsider_client.post(
        reverse("access:policy-create"), {"name": "Mine", "document": GOOD_DOCUMENT}
    )
    editing = outsider_client.post(
        reverse("access:policy-edit", args=[custom_policy.pk]),
        {"name": "AppReader", "document": BAD_DOCUMENT},
    )
    deleting = outsider_client.post(reverse("access:policy-delete", args=[custom_policy.pk]))
    assert [creating.status_code, editing.status_code, deleting.status_code] == [403] * 3
    assert not ManagedPolicy.objects.filter(name="Mine").exists()
    custom_policy.refresh_from_db()
    assert custom_policy.document == GOOD_DOCUMENT
    assert AuditEvent.objects.filter(outcome="denied").count() >= 3


def test_a_read_only_user_lists_users_and_policies_but_may_not_change_them(
    reader_client, custom_policy
):
    assert reader_client.get(reverse("access:users")).status_code == 200
    listing = reader_client.get(reverse("access:policies"))
    assert listing.status_code == 200 and b"AppReader" in listing.content
    assert b"Create policy" not in listing.content
    detail = reader_client.get(reverse("access:policy", args=[custom_policy.pk]))
    assert detail.status_code == 200 and b"Edit" not in detail.content
    assert reader_client.get(reverse("access:policy-create")).status_code == 403
    response = reader_client.post(
        reverse("access:policy-create"), {"name": "Mine", "document": GOOD_DOCUMENT}
    )
    assert response.status_code == 403
    assert reader_client.get(reverse("access:simulator")).status_code == 403


def test_a_malformed_policy_names_the_statement_and_field_and_saves_nothing(admin_client):
    response = admin_client.post(
        reverse("access:policy-create"), {"name": "Broken", "document": BAD_DOCUMENT}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "The policy was not saved." in html
    assert "Statement 1" in html and "Typo" in html and "Action" in html
    assert "GetParamter" in html
    assert not ManagedPolicy.objects.filter(name="Broken").exists()
    # What was typed stays in the editor, to be fixed.
    assert "ssm:GetParamter" in html.split("<textarea", 1)[1]


def test_text_that_is_not_json_is_refused_inline(admin_client):
    response = admin_client.post(
        reverse("access:policy-create"), {"name": "Broken", "document": '{"Version": '}
    )
    assert response.status_code == 400
    assert b"The policy was not saved." in response.content
    assert not ManagedPolicy.objects.filter(name="Broken").exists()


def test_a_valid_policy_is_created_audited_and_shown_pretty_printed(admin_client):
    response = admin_client.post(
        reverse("access:policy-create"),
        {"name": "AppReader2", "description": "reads app", "document": GOOD_DOCUMENT},
        follow=True,
    )
    policy = ManagedPolicy.objects.get(name="AppReader2")
    assert response.redirect_chain[-1][0] == reverse("access:policy", args=[policy.pk])
    assert "  &quot;Version&quot;: &quot;2012-10-17&quot;" in response.content.decode()
    assert AuditEvent.objects.filter(action="bosun:CreatePolicy").exists()


def test_editing_a_policy_saves_the_new_document(admin_client, custom_policy):
    document = GOOD_DOCUMENT.replace("app/*", "other/*")
    admin_client.post(
        reverse("access:policy-edit", args=[custom_policy.pk]),
        {"name": "Ignored", "description": "", "document": document},
    )
    custom_policy.refresh_from_db()
    assert custom_policy.document == document and custom_policy.name == "AppReader"


def test_a_built_in_policy_offers_a_copy_but_no_edit_or_delete(admin_client):
    builtin = ManagedPolicy.objects.get(name="ReadOnlyAccess")
    html = admin_client.get(reverse("access:policy", args=[builtin.pk])).content.decode()
    assert "Copy as new policy" in html
    assert reverse("access:policy-edit", args=[builtin.pk]) not in html
    assert reverse("access:policy-delete", args=[builtin.pk]) not in html
    copy = admin_client.get(reverse("access:policy-create") + f"?copy={builtin.pk}")
    assert b'value="ReadOnlyAccessCopy"' in copy.content
    assert b"bosun:List*" in copy.content


def test_a_built_in_policy_cannot_be_edited_or_deleted(admin_client):
    builtin = ManagedPolicy.objects.get(name="ReadOnlyAccess")
    before = builtin.document
    opening = admin_client.get(reverse("access:policy-edit", args=[builtin.pk]))
    assert opening.status_code == 302
    saving = admin_client.post(
        reverse("access:policy-edit", args=[builtin.pk]),
        {"name": "ReadOnlyAccess", "document": GOOD_DOCUMENT},
    )
    assert saving.status_code == 400 and b"is built in" in saving.content
    admin_client.post(reverse("access:policy-delete", args=[builtin.pk]))
    builtin.refresh_from_db()
    assert builtin.document == before


def test_deleting_a_policy_asks_first_then_deletes(admin_client, custom_policy):
    url = reverse("access:policy-delete", args=[custom_policy.pk])
    question = admin_client.get(url)
    assert b"Delete policy AppReader?" in question.content
    assert ManagedPolicy.objects.filter(pk=custom_policy.pk).exists()
    admin_client.post(url)
    assert not ManagedPolicy.objects.filter(pk=custom_policy.pk).exists()


def test_the_policy_list_searches_by_name(admin_client, custom_policy):
    html = admin_client.get(reverse("access:policies"), {"q": "appread"}).content.decode()
    assert "AppReader" in html and "AdministratorAccess" not in html
