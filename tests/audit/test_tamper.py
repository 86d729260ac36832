"""Tampering with the stored trail in plain SQL, and `verify` naming the first broken event."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from audit import chain
from audit.models import AuditEvent
from audit.verification import verify_chain
from tests.audit.conftest import execute

pytestmark = pytest.mark.django_db


@pytest.fixture
def ten(trail):
    return trail(10)


def problem():
    report = verify_chain()
    assert not report.ok, "verify passed a tampered trail"
    return report.problem.sequence, report.problem.kind


def forge(sequence: int, prev_hash: str, **fields) -> AuditEvent:
    """A well-formed event with a correct hash, as a forger who read audit.chain would make."""
    event = AuditEvent(
        sequence=sequence,
        time=AuditEvent.objects.get(sequence=1).time + timedelta(seconds=1),
        principal="mallory",
        action="ssm:GetParameter",
        outcome="success",
        resources=[],
        params_json="{}",
        prev_hash=prev_hash,
        **fields,
    )
    event.hash = chain.event_hash(
        {
            **{name: getattr(event, name, "") for name in chain.HASHED_FIELDS if name != "params"},
            "time": chain.format_time(event.time),
            "params": event.params_json,
            "user_id": None,
        }
    )
    event.save()
    return event


def test_an_edited_field_is_named_as_an_edit_of_that_event(ten):
    execute("UPDATE audit_auditevent SET principal = 'eve' WHERE sequence = 5")
    assert problem() == (5, "edited")


def test_edited_parameters_are_caught_too(ten):
    execute("UPDATE audit_auditevent SET params_json = '{}' WHERE sequence = 7")
    assert problem() == (7, "edited")


def test_a_deleted_event_is_named_as_missing(ten):
    execute("DELETE FROM audit_auditevent WHERE sequence = 5")
    assert problem() == (5, "deleted")
    assert "event 5 is missing" in verify_chain().describe()


def test_deleting_the_oldest_events_without_a_checkpoint_is_caught(ten):
    execute("DELETE FROM audit_auditevent WHERE sequence <= 3")
    assert problem() == (1, "deleted")


def test_deleting_the_newest_events_is_caught_by_the_chain_head(ten):
    execute("DELETE FROM audit_auditevent WHERE sequence >= 9")
    assert problem() == (9, "deleted")


def test_an_event_inserted_in_the_middle_is_named_even_with_a_correct_hash(ten):
    # Make room at 5 by renumbering the later events, then forge a well-formed event there.
    execute("UPDATE audit_auditevent SET sequence = -sequence WHERE sequence >= 5")
    execute("UPDATE audit_auditevent SET sequence = 1 - sequence WHERE sequence < 0")
    forge(5, prev_hash=ten[3].hash)
    assert problem() == (5, "inserted")
    assert "so event 5 was inserted" in verify_chain().describe()


def test_an_event_appended_behind_the_chain_heads_back_is_named(ten):
    forge(11, prev_hash=ten[-1].hash)
    assert problem() == (11, "inserted")


def test_an_event_numbered_before_the_first_is_named(ten):
    forge(0, prev_hash=chain.GENESIS)
    assert problem() == (0, "inserted")


def test_two_swapped_events_are_named_as_reordered(ten):
    execute("UPDATE audit_auditevent SET sequence = -1 WHERE sequence = 5")
    execute("UPDATE audit_auditevent SET sequence = 5 WHERE sequence = 6")
    execute("UPDATE audit_auditevent SET sequence = 6 WHERE sequence = -1")
    assert problem() == (5, "reordered")


def test_an_edited_prev_hash_breaks_the_link(ten):
    execute("UPDATE audit_auditevent SET prev_hash = %s WHERE sequence = 4", ("f" * 64,))
    assert problem() == (4, "unlinked")


def test_an_event_replaced_by_one_with_a_correct_hash_is_caught_at_the_next_link(ten):
    execute("DELETE FROM audit_auditevent WHERE sequence = 5")
    forge(5, prev_hash=ten[3].hash)
    assert problem() == (6, "unlinked")


def test_a_head_rewritten_to_hide_deleted_events_still_disagrees_with_the_last_hash(ten):
    execute("UPDATE audit_chainhead SET sequence = 10, hash = %s", ("b" * 64,))
    assert problem() == (10, "rewritten")


def test_verify_command_names_the_broken_event_and_fails(ten):
    execute("UPDATE audit_auditevent SET action = 'ssm:DeleteParameter' WHERE sequence = 3")
    with pytest.raises(CommandError) as failure:
        call_command("audit", "verify")
    assert failure.value.returncode == 1
    assert str(failure.value).startswith("audit trail broken at event 3 (edited)")


def test_verify_command_reports_an_intact_trail(ten, capsys):
    call_command("audit", "verify")
    assert "Audit trail intact: 10 events verified, 1 to 10" in capsys.readouterr().out
