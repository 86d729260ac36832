"""Session preferences and run-as rules: who a session runs as, what the saved preferences
change in the agent's StartSession payload, what is refused, and the audit of every change."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet.models import NodeMessage
from sessions.exceptions import SessionsValidationError
from sessions.models import RunAsRule, SessionPreferences
from sessions.services.preferences import (
    preferences_effective,
    preferences_update,
    run_as_for,
    run_as_rule_delete,
    run_as_rule_put,
)
from sessions.services.sessions import session_start
from tests.factories import ManagedNodeFactory, UserFactory
from tests.shell_sessions.people import allow, user_with_policy

pytestmark = pytest.mark.django_db

DOCUMENT_ARN = "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell"
SAVED = {
    "run_as": "",
    "shell_profile": "",
    "idle_timeout_minutes": 20,
    "max_duration_minutes": 0,
    "reason_required": False,
    "record_input": True,
    "idle_counts_output": True,
}


def saved(principal: Principal, **changes) -> None:
    preferences_update(principal=principal, **(SAVED | changes))


def in_group(user, name: str) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    group.user_set.add(user)
    return group


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


# --- Who a session runs as ------------------------------------------------------------------


@override_settings(BOSUN_SESSION_RUN_AS="envuser")
def test_the_users_own_rule_comes_first(admin):
    bob = UserFactory(username="bob")
    run_as_rule_put(principal=admin, user=bob, run_as="bob-ops")
    run_as_rule_put(principal=admin, group=in_group(bob, "dbas"), run_as="postgres")
    saved(admin, run_as="ssm-user")
    assert run_as_for(bob) == "bob-ops"


@override_settings(BOSUN_SESSION_RUN_AS="envuser")
def test_a_groups_rule_comes_before_the_default(admin):
    bob = UserFactory(username="bob")
    run_as_rule_put(principal=admin, group=in_group(bob, "dbas"), run_as="postgres")
    saved(admin, run_as="ssm-user")
    assert run_as_for(bob) == "postgres"


def test_of_several_groups_with_rules_the_first_by_name_wins(admin):
    bob = UserFactory(username="bob")
    # Created out of order, so the rule's age or id cannot be what decides.
    run_as_rule_put(principal=admin, group=in_group(bob, "web"), run_as="www-data")
    run_as_rule_put(principal=admin, group=in_group(bob, "dbas"), run_as="postgres")
    run_as_rule_put(principal=admin, group=in_group(bob, "monitoring"), run_as="nagios")
    in_group(bob, "analysts")  # a group without a rule changes nothing
    assert run_as_for(bob) == "postgres"


def test_another_groups_rule_does_not_apply(admin):
    bob, carol = UserFactory(username="bob"), UserFactory(username="carol")
    run_as_rule_put(principal=admin, group=in_group(carol, "dbas"), run_as="postgres")
    run_as_rule_put(principal=admin, user=carol, run_as="carol")
    assert run_as_for(bob) == ""


@override_settings(BOSUN_SESSION_RUN_AS="envuser")
def test_without_rules_the_saved_default_overrides_the_setting(admin):
    bob = UserFactory(username="bob")
    assert run_as_for(bob) == "envuser"
    saved(admin, run_as="ssm-user")
    assert run_as_for(bob) == "ssm-user"


@override_settings(BOSUN_SESSION_RUN_AS="envuser")
def test_saved_preferences_without_a_default_leave_the_setting(admin):
    saved(admin, run_as="")
    assert run_as_for(UserFactory(username="bob")) == "envuser"


@override_settings(BOSUN_SESSION_RUN_AS="")
def test_with_nothing_set_the_session_runs_as_the_agents_own_user(admin):
    assert run_as_for(UserFactory(username="bob")) == ""


def test_a_second_rule_for_the_same_user_replaces_the_first(admin):
    bob = UserFactory(username="bob")
    run_as_rule_put(principal=admin, user=bob, run_as="one")
    run_as_rule_put(principal=admin, user=bob, run_as="two")
    assert list(RunAsRule.objects.values_list("run_as", flat=True)) == ["two"]
    assert run_as_for(bob) == "two"


def test_removing_a_rule_falls_back_to_the_next(admin):
    bob = UserFactory(username="bob")
    rule = run_as_rule_put(principal=admin, user=bob, run_as="bob-ops")
    run_as_rule_put(principal=admin, group=in_group(bob, "dbas"), run_as="postgres")
    run_as_rule_delete(principal=admin, rule_id=rule.pk)
    assert run_as_for(bob) == "postgres"


# --- What the preferences change ------------------------------------------------------------


@override_settings(
    BOSUN_SESSION_IDLE_TIMEOUT_MINUTES=7,
    BOSUN_SESSION_MAX_DURATION_MINUTES=30,
    BOSUN_SESSION_REASON_REQUIRED=True,
    BOSUN_SESSION_RECORD_INPUT=False,
)
def test_until_saved_the_settings_are_the_preferences():
    preferences = preferences_effective()
    assert not preferences.saved
    assert preferences.values() == {
        "run_as": "",
        "shell_profile": "",
        "idle_timeout_minutes": 7,
        "max_duration_minutes": 30,
        "reason_required": True,
        "record_input": False,
        "idle_counts_output": True,
    }
    assert not SessionPreferences.objects.exists()


@override_settings(BOSUN_SESSION_RUN_AS="envuser", BOSUN_SESSION_IDLE_TIMEOUT_MINUTES=20)
def test_saved_preferences_shape_the_start_session_payload(admin, admin_user):
    saved(
        admin,
        run_as="ssm-user",
        shell_profile="cd /srv\nexport PS1='ops$ '",
        idle_timeout_minutes=5,
        max_duration_minutes=90,
        record_input=False,
        idle_counts_output=False,
    )
    node = ManagedNodeFactory()
    session = session_start(principal=admin, node_id=node.pk)
    payload = NodeMessage.objects.get(node=node).payload
    assert payload["run_as"] == "ssm-user"
    assert payload["profile"] == "cd /srv\nexport PS1='ops$ '"
    assert payload["idle_timeout_seconds"] == 300
    assert payload["max_duration_seconds"] == 5400
    assert payload["command"] == ""
    assert session.run_as == "ssm-user" and not session.input_recorded
    assert session.idle_timeout_minutes == 5 and session.max_duration_minutes == 90
    assert not session.idle_counts_output
    (event,) = AuditEvent.objects.filter(action="ssm:StartSession")
    assert event.params["RunAs"] == "ssm-user"


def test_a_run_as_rule_reaches_the_payload(admin, admin_user):
    run_as_rule_put(principal=admin, group=in_group(admin_user, "dbas"), run_as="postgres")
    node = ManagedNodeFactory()
    session_start(principal=admin, node_id=node.pk)
    assert NodeMessage.objects.get(node=node).payload["run_as"] == "postgres"


@override_settings(BOSUN_SESSION_REASON_REQUIRED=False)
def test_a_saved_reason_requirement_refuses_a_start_without_one(admin):
    saved(admin, reason_required=True)
    with pytest.raises(SessionsValidationError) as refused:
        session_start(principal=admin, node_id=ManagedNodeFactory().pk)
    assert refused.value.field == "reason"


@override_settings(BOSUN_SESSION_REASON_REQUIRED=True)
def test_saved_preferences_may_drop_the_settings_reason_requirement(admin):
    saved(admin, reason_required=False)
    session = session_start(principal=admin, node_id=ManagedNodeFactory().pk)
    assert session.reason == ""


# --- What is refused ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Root", "9lives", "a b", "x" * 33, "ops;rm", "-dash"])
def test_a_run_as_that_is_not_a_posix_user_name_is_refused(admin, name):
    with pytest.raises(SessionsValidationError) as refused:
        saved(admin, run_as=name)
    assert refused.value.field == "run_as"
    with pytest.raises(SessionsValidationError):
        run_as_rule_put(principal=admin, user=UserFactory(username="bob"), run_as=name)
    assert not SessionPreferences.objects.exists() and not RunAsRule.objects.exists()


@pytest.mark.parametrize("name", ["ssm-user", "_svc", "www-data", "a.b", "machine$"])
def test_posix_user_names_are_accepted(admin, name):
    saved(admin, run_as=name)
    assert preferences_effective().run_as == name


def test_a_rule_needs_a_run_as_user(admin):
    with pytest.raises(SessionsValidationError) as refused:
        run_as_rule_put(principal=admin, user=UserFactory(username="bob"), run_as=" ")
    assert refused.value.field == "run_as"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("idle_timeout_minutes", 0),
        ("idle_timeout_minutes", 61),
        ("max_duration_minutes", -1),
        ("max_duration_minutes", 1441),
    ],
)
def test_limits_out_of_range_are_refused_naming_the_field(admin, field, value):
    with pytest.raises(SessionsValidationError) as refused:
        saved(admin, **{field: value})
    assert refused.value.field == field
    assert not SessionPreferences.objects.exists()


def test_a_shell_profile_with_a_nul_is_refused(admin):
    with pytest.raises(SessionsValidationError) as refused:
        saved(admin, shell_profile="echo \x00")
    assert refused.value.field == "shell_profile"


def test_editing_without_update_document_is_refused_and_audited():
    starter = user_with_policy("sam", allow(["ssm:StartSession", "ssm:GetDocument"], DOCUMENT_ARN))
    sam = Principal(user=starter)
    with pytest.raises(AccessDenied):
        saved(sam, run_as="ssm-user")
    with pytest.raises(AccessDenied):
        run_as_rule_put(principal=sam, user=starter, run_as="root")
    rule = RunAsRule.objects.create(user=UserFactory(username="bob"), run_as="bob")
    with pytest.raises(AccessDenied):
        run_as_rule_delete(principal=sam, rule_id=rule.pk)
    denied = AuditEvent.objects.filter(action="ssm:UpdateDocument", outcome="denied")
    assert denied.count() == 3
    assert all(event.principal == "sam" for event in denied)
    assert not SessionPreferences.objects.exists()
    assert list(RunAsRule.objects.values_list("run_as", flat=True)) == ["bob"]


def test_update_document_on_the_preferences_document_is_enough_to_edit():
    editor = Principal(user=user_with_policy("eve", allow(["ssm:UpdateDocument"], DOCUMENT_ARN)))
    saved(editor, idle_timeout_minutes=10)
    assert preferences_effective().idle_timeout_minutes == 10


def test_update_document_on_another_document_is_not():
    other = "arn:aws:ssm:*:*:document/AWS-RunShellScript"
    editor = Principal(user=user_with_policy("eve", allow(["ssm:UpdateDocument"], other)))
    with pytest.raises(AccessDenied):
        saved(editor, idle_timeout_minutes=10)


# --- The audit of changes -------------------------------------------------------------------


@override_settings(BOSUN_SESSION_IDLE_TIMEOUT_MINUTES=20, BOSUN_SESSION_RUN_AS="")
def test_every_preferences_change_is_audited_with_before_and_after(admin):
    saved(admin, run_as="ssm-user", idle_timeout_minutes=15)
    saved(admin, run_as="ops", idle_timeout_minutes=15, shell_profile="cd /")
    first, second = AuditEvent.objects.filter(action="ssm:UpdateDocument").order_by("sequence")
    assert first.outcome == "success" and first.principal == "ada"
    assert any("document/SSM-SessionManagerRunShell" in arn for arn in first.resources)
    assert first.params["Change"] == "preferences"
    assert first.params["Before"]["saved"] is False
    assert first.params["Before"]["idle_timeout_minutes"] == 20
    assert first.params["Before"]["run_as"] == ""
    assert first.params["After"]["run_as"] == "ssm-user"
    assert first.params["After"]["idle_timeout_minutes"] == 15
    assert second.params["Before"]["saved"] is True
    assert second.params["Before"]["run_as"] == "ssm-user"
    assert second.params["After"]["run_as"] == "ops"
    assert second.params["After"]["shell_profile"] == "cd /"
    row = SessionPreferences.objects.get()
    assert row.updated_by == "ada"


def test_every_rule_change_is_audited_with_before_and_after(admin):
    bob = UserFactory(username="bob")
    dbas = in_group(bob, "dbas")
    run_as_rule_put(principal=admin, user=bob, run_as="one")
    rule = run_as_rule_put(principal=admin, user=bob, run_as="two")
    run_as_rule_put(principal=admin, group=dbas, run_as="postgres")
    run_as_rule_delete(principal=admin, rule_id=rule.pk)
    events = AuditEvent.objects.filter(action="ssm:UpdateDocument").order_by("sequence")
    assert [
        (e.params.get("User"), e.params.get("Group"), e.params["Before"], e.params["After"])
        for e in events
    ] == [
        ("bob", None, None, "one"),
        ("bob", None, "one", "two"),
        (None, "dbas", None, "postgres"),
        ("bob", None, "two", None),
    ]
    assert all(e.params["Change"] == "run-as rule" for e in events)


def test_group_names_are_compared_ignoring_case(admin):
    bob = UserFactory(username="bob")
    run_as_rule_put(principal=admin, group=in_group(bob, "Web"), run_as="www-data")
    run_as_rule_put(principal=admin, group=in_group(bob, "apps"), run_as="app")
    run_as_rule_put(principal=admin, group=in_group(bob, "DBAs"), run_as="postgres")
    assert run_as_for(bob) == "app"
