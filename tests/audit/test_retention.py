import hashlib
import hmac
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from audit import append, chain, services
from audit.exceptions import AuditChainBroken, AuditTrailImmutable
from audit.models import CHAINED_COLUMNS, AuditEvent, Checkpoint
from audit.tasks import checkpoint_and_prune
from audit.verification import verify_chain
from tests.audit.conftest import execute

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    """Stands in for django.utils.timezone in the audit services: a day passes per reading."""

    def __init__(self) -> None:
        self.moment = START

    def now(self) -> datetime:
        self.moment += timedelta(days=1)
        return self.moment


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(services, "timezone", clock)
    monkeypatch.setattr(append, "timezone", clock)
    return clock


def day(n: int) -> datetime:
    """The time of the event appended on the nth tick of the clock."""
    return START + timedelta(days=n)


def test_pruning_signs_a_checkpoint_at_the_last_pruned_event_and_the_rest_still_verifies(
    trail, clock
):
    trail(10)
    result = services.audit_prune(before=day(6))
    assert result.deleted == 5
    assert result.checkpoint.sequence == 5
    assert list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)) == [
        *range(6, 12)
    ]
    pruned = AuditEvent.objects.get(sequence=11)
    assert (pruned.action, pruned.principal, pruned.params["deleted"]) == (
        "bosun:PruneAuditTrail",
        "system",
        5,
    )
    report = verify_chain()
    assert report.ok, report.describe()
    assert report.anchor == "the signed checkpoint at event 5"


def test_pruning_twice_keeps_the_trail_verifiable(trail, clock):
    trail(10)
    services.audit_prune(before=day(4))
    services.audit_prune(before=day(8))
    assert AuditEvent.objects.order_by("sequence").first().sequence == 8
    assert verify_chain().ok


def test_nothing_is_pruned_when_no_event_is_old_enough(trail, clock):
    trail(3)
    assert services.audit_prune(before=day(1)) == services.PruneResult(None, 0)
    assert AuditEvent.objects.count() == 3


def test_a_checkpoint_with_a_forged_signature_is_rejected(trail, clock):
    trail(10)
    services.audit_prune(before=day(6))
    execute("UPDATE audit_checkpoint SET signature = %s WHERE sequence = 5", ("0" * 64,))
    report = verify_chain()
    assert (report.problem.sequence, report.problem.kind) == (5, "checkpoint")
    assert "invalid signature" in report.describe()


def test_old_events_deleted_behind_a_checkpoint_signed_without_the_master_key_are_caught(
    trail, clock
):
    events = trail(10)
    execute("DELETE FROM audit_auditevent WHERE sequence <= 5")
    created = START
    forged = hmac.new(
        b"a guess at the key",
        f"bosun-audit-checkpoint:5:{events[4].hash}:{chain.format_time(created)}".encode(),
        hashlib.sha256,
    ).hexdigest()
    Checkpoint(sequence=5, hash=events[4].hash, created_at=created, signature=forged).save()
    report = verify_chain()
    assert (report.problem.sequence, report.problem.kind) == (5, "checkpoint")


def test_a_chain_recomputed_from_an_edit_onwards_is_caught_by_the_next_signed_checkpoint(
    trail, clock
):
    trail(8)
    services.audit_checkpoint()  # signs event 8
    trail(2)
    # The forger edits event 3 and recomputes every later hash and the chain head.
    execute("UPDATE audit_auditevent SET principal = 'eve' WHERE sequence = 3")
    rows = AuditEvent.objects.order_by("sequence").values_list(*CHAINED_COLUMNS)
    previous = None
    for row in rows:
        if row[0] >= 3:
            fields = (*row[:-2], previous)
            previous = chain.row_hash(fields)
            execute(
                "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE sequence = %s",
                (fields[-1], previous, row[0]),
            )
        else:
            previous = row[-1]
    execute("UPDATE audit_chainhead SET hash = %s", (previous,))
    report = verify_chain()
    assert (report.problem.sequence, report.problem.kind) == (8, "rewritten")


def test_pruning_refuses_to_launder_a_tampered_stretch(trail, clock):
    trail(10)
    execute("UPDATE audit_auditevent SET principal = 'eve' WHERE sequence = 2")
    with pytest.raises(AuditChainBroken, match="event 2"):
        services.audit_prune(before=day(6))
    assert AuditEvent.objects.count() == 10
    assert not Checkpoint.objects.exists()


def test_the_daily_task_prunes_past_the_retention_setting(trail, clock, settings):
    settings.BOSUN_AUDIT_RETENTION_DAYS = 30
    trail(10)  # days 1-10
    clock.moment = day(45)
    checkpoint_and_prune()  # now is day 46: events before day 16 go
    assert AuditEvent.objects.filter(action="ssm:PutParameter").count() == 0
    assert Checkpoint.objects.filter(sequence=10).exists()
    assert verify_chain().ok


def test_a_retention_of_zero_keeps_every_event_but_still_signs_a_checkpoint(trail, clock, settings):
    settings.BOSUN_AUDIT_RETENTION_DAYS = 0
    trail(3)
    clock.moment = day(900)
    assert services.audit_retention_apply().deleted == 0
    assert AuditEvent.objects.count() == 3
    assert Checkpoint.objects.get().sequence == 3


def test_the_prune_command_reports_what_it_deleted(trail, clock):
    trail(4)
    out = io.StringIO()
    call_command("audit", "prune", "--before", day(3).isoformat(), stdout=out)
    assert "Deleted 2 events up to event 2, behind a signed checkpoint." in out.getvalue()
    assert AuditEvent.objects.get(sequence=5).face == "cli"


def test_a_checkpoint_is_never_changed_or_deleted_through_the_orm(trail, clock):
    trail(2)
    checkpoint = services.audit_checkpoint()
    checkpoint.hash = "0" * 64
    with pytest.raises(AuditTrailImmutable):
        checkpoint.save()
    with pytest.raises(AuditTrailImmutable):
        Checkpoint.objects.all().delete()
