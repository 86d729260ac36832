import itertools

import pytest
from django.db import transaction

from audit import chain
from audit.exceptions import AuditTrailImmutable
from audit.models import AuditEvent, ChainHead
from audit.services import audit_record
from audit.verification import verify_chain

pytestmark = pytest.mark.django_db


def test_appended_events_are_numbered_from_one_and_each_points_at_the_one_before(trail):
    events = trail(5)
    assert [event.sequence for event in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == chain.GENESIS
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    head = ChainHead.objects.get()
    assert (head.sequence, head.hash) == (5, events[-1].hash)


def test_an_intact_trail_verifies(trail):
    trail(12)
    report = verify_chain()
    assert report.ok, report.describe()
    assert (report.checked, report.first_sequence, report.last_sequence) == (12, 1, 12)
    assert "12 events verified" in report.describe()


def test_an_empty_trail_verifies(db):
    assert verify_chain().ok


def test_the_stored_hash_is_sha256_over_every_field_read_back_from_the_database(trail):
    trail(1, user_id=7, source_ip="10.0.0.9", user_agent="aws-cli/2", request_id="req-1")
    stored = AuditEvent.objects.get()
    document = {
        "sequence": 1,
        "time": chain.format_time(stored.time),
        "principal": "ada",
        "user_id": 7,
        "source_ip": "10.0.0.9",
        "user_agent": "aws-cli/2",
        "action": "ssm:PutParameter",
        "resources": stored.resources,
        "params": stored.params_json,
        "outcome": "success",
        "error_code": "",
        "request_id": "req-1",
        "face": "web",
        "prev_hash": chain.GENESIS,
    }
    assert chain.event_hash(document) == stored.hash
    assert chain.event_hash({**document, "user_id": 8}) != stored.hash


def test_numbers_that_postgres_would_rewrite_still_hash_the_same_after_a_round_trip(trail):
    trail(1, params={"big": 1e16, "tiny": 1.5e-7, "nan": float("nan"), "set": {3, 1}})
    assert AuditEvent.objects.get().params == {
        "big": 1e16,
        "tiny": 1.5e-7,
        "nan": "nan",
        "set": [1, 3],
    }
    assert verify_chain().ok


def test_an_event_rolled_back_with_its_transaction_leaves_no_gap(trail):
    trail(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(principal="ada", action="ssm:DeleteParameter", outcome="success")
        raise RuntimeError("the action failed after its event was written")
    assert trail(1)[0].sequence == 3
    assert verify_chain().ok


def test_a_recorded_event_refuses_to_be_changed_or_deleted_through_the_orm(trail):
    (event,) = trail(1)
    event.action = "ssm:GetParameter"
    with pytest.raises(AuditTrailImmutable):
        event.save()
    with pytest.raises(AuditTrailImmutable):
        event.delete()
    with pytest.raises(AuditTrailImmutable):
        AuditEvent.objects.filter(sequence=1).update(action="ssm:GetParameter")
    with pytest.raises(AuditTrailImmutable):
        AuditEvent.objects.all().delete()
    with pytest.raises(AuditTrailImmutable):
        AuditEvent.objects.bulk_create([AuditEvent(sequence=2)])
    assert AuditEvent.objects.get().action == "ssm:PutParameter"


def test_an_unknown_outcome_or_face_is_a_programming_error(db):
    with pytest.raises(ValueError, match="outcome"):
        audit_record(principal="ada", action="ssm:GetParameter", outcome="maybe")
    with pytest.raises(ValueError, match="face"):
        audit_record(principal="ada", action="ssm:GetParameter", outcome="success", face="fax")


def test_long_user_agents_are_truncated_rather_than_refused(trail):
    (event,) = trail(1, user_agent="x" * 5000)
    assert len(AuditEvent.objects.get(pk=event.pk).user_agent) == 512
    assert verify_chain().ok


def test_the_chain_resumes_from_its_events_when_the_head_row_is_gone(trail):
    trail(3)
    ChainHead.objects.all().delete()
    assert trail(1)[0].sequence == 4
    assert verify_chain().ok
