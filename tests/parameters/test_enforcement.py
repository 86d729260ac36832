"""The policy task with a fixed `now`: notices once, expiry deletes, no-change re-arms."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from parameters import selectors
from parameters.enforcement import policies_enforce
from parameters.models import Parameter, ParameterNotice, ParameterVersion
from tests.parameters.conftest import delivered

pytestmark = pytest.mark.django_db

ARN = "arn:aws:ssm:us-east-1:000000000000:parameter"


def policy_text(*items: dict) -> str:
    return json.dumps(list(items))


def expiration(at) -> dict:
    return {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": at.isoformat()}}


def notify_before(days: int) -> dict:
    return {
        "Type": "ExpirationNotification",
        "Version": "1.0",
        "Attributes": {"Before": days, "Unit": "Days"},
    }


def no_change_after(days: int) -> dict:
    return {
        "Type": "NoChangeNotification",
        "Version": "1.0",
        "Attributes": {"After": days, "Unit": "Days"},
    }


def notices(kind: str | None = None) -> list[ParameterNotice]:
    rows = ParameterNotice.objects.order_by("created_at", "id")
    return list(rows.filter(kind=kind) if kind else rows)


@pytest.fixture
def start():
    return timezone.now()


@pytest.fixture
def expiring(put, hook, start):
    """/exp/db expires in 10 days and asks to be told 2 days before."""
    expires = start + timedelta(days=10)
    put(
        "/exp/db",
        "v",
        tier="Advanced",
        policies=policy_text(expiration(expires), notify_before(2)),
    )
    return expires


def test_nothing_happens_before_a_policy_is_due(expiring, start):
    assert policies_enforce(now=start + timedelta(days=7)) == 0
    assert notices() == []
    assert delivered("parameter.policy.expiration_notification") == []


def test_an_expiration_notification_is_sent_once(expiring, start):
    assert policies_enforce(now=start + timedelta(days=8, minutes=1)) == 1
    [notice] = notices()
    assert (notice.parameter_name, notice.kind, notice.version) == (
        "/exp/db",
        "ExpirationNotification",
        1,
    )
    assert notice.message == (
        f"/exp/db expires at {expiring.isoformat()} and will then be deleted."
    )
    [event] = AuditEvent.objects.filter(action="bosun:ParameterPolicyExpirationNotification")
    assert (event.principal, event.face, event.resources) == ("system", "task", [f"{ARN}/exp/db"])
    [body] = delivered("parameter.policy.expiration_notification")
    assert body["data"]["name"] == "/exp/db"
    assert body["data"]["expires_at"] == expiring.isoformat()

    assert policies_enforce(now=start + timedelta(days=9)) == 0
    assert len(notices()) == 1
    [policy] = [p for p in Parameter.objects.get().policies if p["PolicyType"] != "Expiration"]
    assert policy["PolicyStatus"] == "Finished"
    assert Parameter.objects.get().next_policy_at == expiring


def test_expiration_deletes_the_parameter_and_leaves_a_notice_an_audit_event_and_a_webhook(
    expiring, start, admin
):
    policies_enforce(now=start + timedelta(days=8, minutes=1))
    assert policies_enforce(now=expiring + timedelta(seconds=1)) == 1
    assert not Parameter.objects.exists()
    assert not ParameterVersion.objects.exists()
    [notice] = notices("Expiration")
    assert notice.parameter_name == "/exp/db"
    assert notice.message.startswith("/exp/db expired at ")
    [deleted] = AuditEvent.objects.filter(action="ssm:DeleteParameter")
    assert (deleted.principal, deleted.outcome, deleted.face) == ("system", "success", "task")
    assert deleted.params == {"name": "/exp/db", "reason": "Expiration policy"}
    [expired_body] = delivered("parameter.policy.expired")
    assert expired_body["data"]["name"] == "/exp/db"
    [deleted_body] = delivered("parameter.deleted")
    assert (deleted_body["data"]["name"], deleted_body["data"]["actor"]) == ("/exp/db", "system")
    assert [n.parameter_name for n in selectors.parameter_notices(principal=admin)] == [
        "/exp/db",
        "/exp/db",
    ]


def test_an_overdue_parameter_expires_without_a_late_notification(expiring, start):
    policies_enforce(now=expiring + timedelta(days=1))
    assert [notice.kind for notice in notices()] == ["Expiration"]
    assert not Parameter.objects.exists()


def test_no_change_notification_is_sent_once_per_unchanged_stretch(put, hook, start):
    put("/nc/key", "v1", tier="Advanced", policies=policy_text(no_change_after(30)))
    assert policies_enforce(now=start + timedelta(days=29)) == 0
    assert policies_enforce(now=start + timedelta(days=31)) == 1
    [notice] = notices("NoChangeNotification")
    assert notice.message.startswith("/nc/key has not changed since ")
    assert len(delivered("parameter.policy.no_change_notification")) == 1
    assert policies_enforce(now=start + timedelta(days=60)) == 0
    assert len(notices("NoChangeNotification")) == 1
    assert Parameter.objects.get().next_policy_at is None


def test_a_write_between_no_change_notifications_re_arms_the_policy(put, hook, start):
    put("/nc/key", "v1", tier="Advanced", policies=policy_text(no_change_after(30)))
    policies_enforce(now=start + timedelta(days=31))
    written = put("/nc/key", "v2", None, overwrite=True)
    assert written.version == 2
    parameter = Parameter.objects.get()
    assert parameter.policies[0]["PolicyStatus"] == "Pending"
    assert parameter.next_policy_at == parameter.last_modified_at + timedelta(days=30)
    rewritten_at = parameter.last_modified_at
    assert policies_enforce(now=rewritten_at + timedelta(days=29)) == 0
    assert policies_enforce(now=rewritten_at + timedelta(days=30, seconds=1)) == 1
    assert len(notices("NoChangeNotification")) == 2
    assert [n.version for n in notices("NoChangeNotification")] == [1, 2]


def test_a_write_before_the_no_change_time_pushes_it_back(put, start):
    put("/nc/busy", "v1", tier="Advanced", policies=policy_text(no_change_after(30)))
    twenty_days_ago = start - timedelta(days=20)
    Parameter.objects.update(
        last_modified_at=twenty_days_ago, next_policy_at=twenty_days_ago + timedelta(days=30)
    )
    put("/nc/busy", "v2", None, overwrite=True)
    written_at = Parameter.objects.get().last_modified_at
    assert policies_enforce(now=start + timedelta(days=11)) == 0
    assert notices() == []
    assert Parameter.objects.get().next_policy_at == written_at + timedelta(days=30)


def test_new_policies_on_an_overwrite_replace_the_schedule(put, start):
    put("/nc/swap", "v", tier="Advanced", policies=policy_text(no_change_after(30)))
    later = start + timedelta(days=90)
    put("/nc/swap", "w", None, overwrite=True, policies=policy_text(expiration(later)))
    parameter = Parameter.objects.get()
    assert parameter.next_policy_at == later
    assert policies_enforce(now=start + timedelta(days=31)) == 0


def test_the_task_only_looks_at_parameters_that_are_due(put, start):
    put("/nc/plain", "v")
    put("/nc/due", "v", tier="Advanced", policies=policy_text(no_change_after(1)))
    put("/nc/later", "v", tier="Advanced", policies=policy_text(no_change_after(5)))
    assert policies_enforce(now=start + timedelta(days=2)) == 1
    assert [n.parameter_name for n in notices()] == ["/nc/due"]
