"""Session Manager → Preferences: the form with its errors inline, the settings as defaults
until saved, the run-as rules added and removed, and who sees and may change any of it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditEvent
from bosun.lib.navigation import menu_for
from sessions.models import RunAsRule, SessionPreferences
from sessions.navigation import may_edit_preferences, register_pages
from sessions.services.preferences import run_as_for
from tests.factories import UserFactory
from tests.shell_sessions.people import allow, user_with_policy

pytestmark = pytest.mark.django_db

PREFERENCES = reverse("sessions:preferences")
ADD_RULE = reverse("sessions:run-as-add")
DOCUMENT_ARN = "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell"
FORM = {
    "run_as": "ssm-user",
    "shell_profile": "cd /srv",
    "idle_timeout_minutes": "15",
    "max_duration_minutes": "120",
    "reason_required": "on",
}


def test_before_anything_is_saved_the_page_shows_the_settings_and_says_so(admin_client, settings):
    settings.BOSUN_SESSION_IDLE_TIMEOUT_MINUTES = 9
    settings.BOSUN_SESSION_RUN_AS = "envuser"
    response = admin_client.get(PREFERENCES)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nobody has saved preferences yet" in body
    assert 'name="idle_timeout_minutes" value="9"' in body
    assert 'name="idle_counts_output"' in body and "tail -f" in body
    assert "envuser" in body
    assert 'id="run-as-form"' in body and 'id="no-run-as-rules"' in body


def test_saving_the_form_stores_the_preferences_and_audits_them(admin_client):
    response = admin_client.post(PREFERENCES, FORM)
    assert response.status_code == 302 and response["Location"] == PREFERENCES
    row = SessionPreferences.objects.get()
    assert (row.run_as, row.shell_profile, row.idle_timeout_minutes) == ("ssm-user", "cd /srv", 15)
    assert row.max_duration_minutes == 120 and row.reason_required and not row.record_input
    assert not row.idle_counts_output  # an unticked box: only typing counts
    assert AuditEvent.objects.filter(action="ssm:UpdateDocument", outcome="success").count() == 1
    body = admin_client.get(PREFERENCES).content.decode()
    assert "Saved by ada" in body and "Nobody has saved" not in body
    assert "Session preferences saved." in body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"run_as": "Not A User"}, "run_as"),
        ({"idle_timeout_minutes": "61"}, "idle_timeout_minutes"),
        ({"idle_timeout_minutes": "0"}, "idle_timeout_minutes"),
        ({"max_duration_minutes": "1441"}, "max_duration_minutes"),
        ({"idle_timeout_minutes": "soon"}, "idle_timeout_minutes"),
    ],
)
def test_errors_show_beside_their_field_and_nothing_is_saved(admin_client, changes, field):
    response = admin_client.post(PREFERENCES, FORM | changes)
    assert response.status_code == 400
    body = response.content.decode()
    assert f'data-error-for="{field}"' in body
    assert 'class="form-control is-invalid"' in body
    assert not SessionPreferences.objects.exists()
    assert not AuditEvent.objects.filter(action="ssm:UpdateDocument").exists()


def test_a_rule_is_added_for_a_user_and_for_a_group_and_listed(admin_client):
    bob = UserFactory(username="bob")
    dbas = Group.objects.create(name="dbas")
    response = admin_client.post(
        ADD_RULE, {"rule-kind": "user", "rule-name": "bob", "rule-run_as": "bob-ops"}
    )
    assert response.status_code == 302
    admin_client.post(ADD_RULE, {"rule-kind": "group", "rule-name": "dbas", "rule-run_as": "pg"})
    assert RunAsRule.objects.get(user=bob).run_as == "bob-ops"
    assert RunAsRule.objects.get(group=dbas).run_as == "pg"
    body = admin_client.get(PREFERENCES).content.decode()
    assert 'id="run-as-table"' in body
    assert body.index("bob-ops") < body.index(">pg<")  # users' rules first, then groups'


def test_a_rule_for_nobody_known_or_a_bad_name_is_refused_beside_its_field(admin_client):
    UserFactory(username="bob")
    response = admin_client.post(
        ADD_RULE, {"rule-kind": "user", "rule-name": "nobody", "rule-run_as": "ops"}
    )
    assert response.status_code == 400
    assert 'data-error-for="name"' in response.content.decode()
    response = admin_client.post(
        ADD_RULE, {"rule-kind": "user", "rule-name": "bob", "rule-run_as": "Bad Name"}
    )
    assert response.status_code == 400
    assert 'data-error-for="rule_run_as"' in response.content.decode()
    assert not RunAsRule.objects.exists()


def test_a_rule_is_removed_after_confirming(admin_client):
    bob = UserFactory(username="bob")
    rule = RunAsRule.objects.create(user=bob, run_as="bob-ops")
    remove = reverse("sessions:run-as-remove", args=[rule.pk])
    assert remove in admin_client.get(PREFERENCES).content.decode()
    confirm = admin_client.get(remove)
    assert confirm.status_code == 200 and b"Remove this run-as rule?" in confirm.content
    assert RunAsRule.objects.exists()
    assert admin_client.post(remove).status_code == 302
    assert not RunAsRule.objects.exists()
    assert run_as_for(bob) == ""
    assert admin_client.post(remove).status_code == 404


def test_a_reader_sees_the_preferences_but_may_change_nothing(client):
    client.force_login(user_with_policy("rita", allow(["ssm:GetDocument"], DOCUMENT_ARN)))
    response = client.get(PREFERENCES)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<fieldset disabled>" in body
    assert "Save preferences" not in body and 'id="run-as-form"' not in body
    assert client.post(PREFERENCES, FORM).status_code == 403
    bob = UserFactory(username="bob")
    rule_post = {"rule-kind": "user", "rule-name": "bob", "rule-run_as": "root"}
    assert client.post(ADD_RULE, rule_post).status_code == 403
    rule = RunAsRule.objects.create(user=bob, run_as="bob-ops")
    remove = reverse("sessions:run-as-remove", args=[rule.pk])
    assert client.get(remove).status_code == 403
    assert client.post(remove).status_code == 403
    assert not SessionPreferences.objects.exists()
    assert list(RunAsRule.objects.values_list("run_as", flat=True)) == ["bob-ops"]
    denied = AuditEvent.objects.filter(action="ssm:UpdateDocument", outcome="denied")
    assert denied.count() == 4


def test_someone_without_access_to_the_document_gets_403_audited(client):
    client.force_login(UserFactory(username="oscar"))
    assert client.get(PREFERENCES).status_code == 403
    assert AuditEvent.objects.filter(action="ssm:GetDocument", outcome="denied").exists()


def test_the_menu_and_the_list_offer_preferences_only_to_whom_may_change_them(admin_user, client):
    reader = user_with_policy(
        "rita",
        allow(["ssm:GetDocument"], DOCUMENT_ARN),
        allow(["ssm:DescribeSessions"]),
    )
    editor = user_with_policy("eve", allow(["ssm:UpdateDocument"], DOCUMENT_ARN))
    assert may_edit_preferences(admin_user) and may_edit_preferences(editor)
    assert not may_edit_preferences(reader)
    assert not may_edit_preferences(UserFactory(username="oscar"))
    register_pages()
    menu = dict(menu_for(admin_user, "sessions:preferences"))
    entry = next(e for e in menu["Node management"] if e.label == "Session preferences")
    assert entry.url == PREFERENCES and entry.active
    reader_menu = dict(menu_for(reader, "sessions:list"))
    assert "Session preferences" not in [e.label for e in reader_menu["Node management"]]
    client.force_login(reader)
    # The list links to the page for whoever may read it.
    assert 'id="session-preferences-link"' in client.get(reverse("sessions:list")).content.decode()
