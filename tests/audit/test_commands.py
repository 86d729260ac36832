import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from audit import chain
from audit.models import AuditEvent
from tests.support.processes import bosun_env, manage

pytestmark = pytest.mark.django_db


def export(*args: str) -> list[dict]:
    out = io.StringIO()
    call_command("audit", "export", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_an_export_is_one_json_line_per_event_that_recomputes_to_the_same_chain(trail):
    trail(4, params={"Name": "/app/ünïcode", "Overwrite": True, "Size": 2.5})
    records = export()
    assert [record["sequence"] for record in records] == [1, 2, 3, 4]
    previous = chain.GENESIS
    for record in records:
        assert chain.exported_hash(record) == record["hash"]
        assert record["prev_hash"] == previous
        previous = record["hash"]
    stored = AuditEvent.objects.get(sequence=1)
    assert records[0]["params"] == stored.params
    assert records[0]["resources"] == stored.resources
    assert chain.parse_time(records[0]["time"]) == stored.time


def test_an_exported_event_that_was_edited_no_longer_recomputes(trail):
    trail(1)
    (record,) = export()
    record["principal"] = "eve"
    assert chain.exported_hash(record) != record["hash"]


def test_export_keeps_to_the_time_range(trail):
    events = trail(3)
    start = events[1].time
    assert [r["sequence"] for r in export("--since", start.isoformat())] == [2, 3]
    assert [r["sequence"] for r in export("--until", start.isoformat())] == [1]
    later = (events[-1].time + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert export("--since", later) == []


def test_export_writes_to_a_file_when_asked(trail, tmp_path):
    trail(2)
    target = tmp_path / "audit.jsonl"
    out = io.StringIO()
    call_command("audit", "export", "--since", "2020-01-01", "--output", str(target), stdout=out)
    assert len(target.read_text().splitlines()) == 2
    assert f"Exported 2 events to {target}" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: cannot read 'yesterday' as a date and time"),
        (["--until", "2026-13-01"], "--until: cannot read '2026-13-01'"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "--until must be later than"),
        (["--output", "/no/such/dir/out.jsonl"], "--output: cannot write /no/such/dir"),
    ],
)
def test_bad_export_input_is_one_clear_line(db, args, message):
    with pytest.raises(CommandError) as failure:
        call_command("audit", "export", *args, stdout=io.StringIO())
    assert message in str(failure.value)
    assert "\n" not in str(failure.value)
    assert failure.value.returncode == 2


def test_an_unreadable_date_on_the_command_line_is_one_line_without_a_traceback(tmp_path):
    env = bosun_env(BOSUN_DATA_DIR=str(tmp_path))
    done = manage("audit", "export", "--since", "the day before yesterday", env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "CommandError: --since: cannot read 'the day before yesterday' as a date and time; "
        "use ISO 8601 such as 2026-01-01T00:00:00Z or 2026-01-01"
    ]


def test_verify_on_a_database_that_was_never_migrated_says_so_in_one_line(tmp_path):
    done = manage("audit", "verify", env=bosun_env(BOSUN_DATA_DIR=str(tmp_path)))
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "CommandError: cannot read the audit trail (no such table: audit_chainhead); "
        "is the database migrated?"
    ]
