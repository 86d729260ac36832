"""bulk_update_rows: one UPDATE … FROM VALUES gives many rows each their own values.

The same scenarios run on the embedded SQLite database (the default tier) and, in a Bosun
process of its own against a throwaway PostgreSQL database, on the integration tier: there
every VALUES column is cast to its field's type, which is what makes a column of NULLs or
JSON work.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from bosun.lib import bulk_update
from bosun.lib.bulk_update import bulk_update_rows
from fleet.models import ManagedNode, MessageState, NodeMessage
from tests.factories import ManagedNodeFactory
from tests.support.cluster import throwaway_database
from tests.support.processes import PYTHON, ROOT, bosun_env, manage

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def at(days: int) -> str:
    return (T0 + timedelta(days=days)).isoformat()


def _messages(node: ManagedNode, count: int) -> list[NodeMessage]:
    return [
        NodeMessage.objects.create(
            node=node,
            kind=f"kind-{index}",
            payload={"index": index},
            result={"old": index},
            state=MessageState.LEASED,
            delivery_count=index,
            acked_at=T0,
            lease_expires_at=T0,
        )
        for index in range(count)
    ]


def _row(message: NodeMessage) -> dict[str, Any]:
    row = NodeMessage.objects.get(pk=message.pk)
    return {
        "kind": row.kind,
        "payload": row.payload,
        "result": row.result,
        "state": row.state,
        "delivery_count": row.delivery_count,
        "acked_at": row.acked_at.isoformat() if row.acked_at else None,
        "lease_expires_at": row.lease_expires_at.isoformat() if row.lease_expires_at else None,
    }


def per_row_values() -> dict[str, Any]:
    node = ManagedNodeFactory()
    first, second, third, untouched = _messages(node, 4)
    first.payload = {"nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}}
    second.payload = ["a", "list", "at", "the", "top"]
    third.payload = "a JSON string"
    for message in (first, second, third):
        message.result = None  # a column of NULLs, in every row
        message.lease_expires_at = None
    # A NULL first: PostgreSQL would type an uncast VALUES column from its first row.
    first.acked_at, second.acked_at, third.acked_at = None, T0 + timedelta(days=1), T0
    third.acked_at += timedelta(days=2, microseconds=-1)
    first.delivery_count, second.delivery_count, third.delivery_count = 7, 0, 2**31 - 1
    first.kind, second.kind, third.kind = 'it\'s "quoted"; --', "ünïcødé ✓", ""
    first.state, second.state, third.state = "acked", "succeeded", "failed"
    untouched.kind = "changed in memory only"
    fields = ["payload", "result", "acked_at", "lease_expires_at", "delivery_count", "kind"]
    updated = bulk_update_rows([first, second, third], [*fields, "state"])
    return {
        "updated": updated,
        "rows": [_row(m) for m in (first, second, third, untouched)],
        "sql_nulls": NodeMessage.objects.filter(result__isnull=True).count(),
    }


def check_per_row_values(observed: dict[str, Any]) -> None:
    first, second, third, untouched = observed["rows"]
    assert first == {
        "kind": 'it\'s "quoted"; --',
        "payload": {"nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}},
        "result": None,
        "state": "acked",
        "delivery_count": 7,
        "acked_at": None,
        "lease_expires_at": None,
    }
    assert second == {
        "kind": "ünïcødé ✓",
        "payload": ["a", "list", "at", "the", "top"],
        "result": None,
        "state": "succeeded",
        "delivery_count": 0,
        "acked_at": at(1),
        "lease_expires_at": None,
    }
    assert third == {
        "kind": "",
        "payload": "a JSON string",
        "result": None,
        "state": "failed",
        "delivery_count": 2**31 - 1,
        "acked_at": (T0 + timedelta(days=2, microseconds=-1)).isoformat(),
        "lease_expires_at": None,
    }
    assert untouched == {
        "kind": "kind-3",
        "payload": {"index": 3},
        "result": {"old": 3},
        "state": "leased",
        "delivery_count": 3,
        "acked_at": T0.isoformat(),
        "lease_expires_at": T0.isoformat(),
    }
    assert observed["sql_nulls"] == 3  # SQL NULL, not JSON null


def chunks() -> dict[str, Any]:
    """Over MAX_ROWS objects: one statement per MAX_ROWS, every row still right."""
    node = ManagedNodeFactory()
    saved = bulk_update.MAX_ROWS
    messages = _messages(node, 7)
    for index, message in enumerate(messages):
        message.delivery_count = 100 + index
        message.payload = {"chunked": index}
    try:
        bulk_update.MAX_ROWS = 3
        with CaptureQueriesContext(connection) as queries:
            updated = bulk_update_rows(messages, ["delivery_count", "payload"])
    finally:
        bulk_update.MAX_ROWS = saved
    NodeMessage.objects.bulk_create(
        NodeMessage(node=node, kind="many", payload={}) for _ in range(2 * saved + 1)
    )
    many = list(NodeMessage.objects.filter(kind="many"))
    for index, message in enumerate(many):
        message.delivery_count = index
        message.acked_at = T0 + timedelta(seconds=index)
    with CaptureQueriesContext(connection) as many_queries:
        many_updated = bulk_update_rows(many, ["delivery_count", "acked_at"])
    stored = NodeMessage.objects.filter(kind="many").order_by("pk")
    return {
        "updated": updated + many_updated,
        "statements": sum(q["sql"].lstrip().startswith("WITH") for q in queries),
        "rows": [[r.delivery_count, r.payload] for r in NodeMessage.objects.exclude(kind="many")],
        "many_statements": len(many_queries),
        "many_right": all(
            r.delivery_count == i and r.acked_at == T0 + timedelta(seconds=i)
            for i, r in enumerate(stored)
        ),
        "max_rows": saved,
    }


def check_chunks(observed: dict[str, Any]) -> None:
    assert observed["statements"] == 3
    assert observed["rows"] == [[100 + index, {"chunked": index}] for index in range(7)]
    assert observed["many_statements"] == 3
    assert observed["many_right"]


def text_primary_keys() -> dict[str, Any]:
    """A model keyed by text (nodes: mi-…), with booleans, addresses and JSON lists."""
    first, second, third = ManagedNodeFactory(), ManagedNodeFactory(), ManagedNodeFactory()
    first.hostname, first.is_local, first.ip_address = "renamed", True, "192.0.2.7"
    first.ip_addresses, first.facts_updated_at = ["192.0.2.7", "2001:db8::1"], T0
    second.hostname, second.is_local, second.ip_address = "also", False, None
    second.ip_addresses, second.facts_updated_at = [], None
    third.hostname = "never written"
    fields = ["hostname", "is_local", "ip_address", "ip_addresses", "facts_updated_at"]
    updated = bulk_update_rows([first, second], fields)
    rows = {
        node.pk: list(ManagedNode.objects.filter(pk=node.pk).values_list(*fields).get())
        for node in (first, second, third)
    }
    return {
        "updated": updated,
        "rows": [
            [v.isoformat() if isinstance(v, datetime) else v for v in rows[node.pk]]
            for node in (first, second, third)
        ],
        "third_name": third.name,
    }


def check_text_primary_keys(observed: dict[str, Any]) -> None:
    first, second, third = observed["rows"]
    assert first == ["renamed", True, "192.0.2.7", ["192.0.2.7", "2001:db8::1"], T0.isoformat()]
    assert second == ["also", False, None, [], None]
    assert third[0] == observed["third_name"]  # the factory's hostname, untouched


def vanished_rows() -> dict[str, Any]:
    """An object whose row is gone updates nothing and is not counted; nothing to write
    is no statement at all."""
    node = ManagedNodeFactory()
    kept, gone = _messages(node, 2)
    NodeMessage.objects.filter(pk=gone.pk).delete()
    kept.kind = gone.kind = "written"
    updated = bulk_update_rows([kept, gone], ["kind"])
    with CaptureQueriesContext(connection) as queries:
        nothing = bulk_update_rows([], ["kind"])
    return {
        "updated": updated,
        "kinds": list(NodeMessage.objects.values_list("kind", flat=True)),
        "nothing": nothing,
        "statements": len(queries),
    }


def check_vanished_rows(observed: dict[str, Any]) -> None:
    assert (observed["kinds"], observed["nothing"], observed["statements"]) == (["written"], 0, 0)


def overlong_text() -> dict[str, Any]:
    """A string over its field's max_length, written by a save and by bulk_update_rows."""
    node = ManagedNodeFactory()
    outcome: dict[str, Any] = {}
    for how, message in zip(("save", "bulk"), _messages(node, 2), strict=True):
        message.kind = "x" * 100  # NodeMessage.kind: max_length=64
        try:
            with transaction.atomic():
                if how == "save":
                    message.save(update_fields=["kind"])
                else:
                    bulk_update_rows([message], ["kind"])
            outcome[how] = len(NodeMessage.objects.get(pk=message.pk).kind)
        except DatabaseError as error:
            outcome[how] = type(error).__name__
    return outcome


def check_overlong_text(observed: dict[str, Any]) -> None:
    # SQLite stores both whole; PostgreSQL refuses the save, and must refuse the bulk write
    # too rather than store a cut value.
    assert observed["bulk"] == observed["save"]


SCENARIOS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], None]]] = {
    "per-row values": (per_row_values, check_per_row_values),
    "chunks": (chunks, check_chunks),
    "text primary keys": (text_primary_keys, check_text_primary_keys),
    "vanished rows": (vanished_rows, check_vanished_rows),
    "over-long text": (overlong_text, check_overlong_text),
}
# What bulk_update_rows returned in each: the rows it updated (a vanished row is not one).
UPDATED = {
    "per-row values": 3,
    "chunks": 7 + 2 * bulk_update.MAX_ROWS + 1,
    "text primary keys": 2,
    "vanished rows": 1,
}


# --- The embedded database (default tier) ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", SCENARIOS)
def test_on_sqlite(name):
    assert connection.vendor == "sqlite"
    run, check = SCENARIOS[name]
    check(run())


@pytest.mark.django_db
@pytest.mark.parametrize("name", UPDATED)
def test_on_sqlite_the_rows_updated_are_counted(name):
    run, _ = SCENARIOS[name]
    assert run()["updated"] == UPDATED[name]


# --- PostgreSQL (integration tier) ----------------------------------------------------------

# Runs each scenario in its own transaction (rolled back), in a Bosun process of its own.
RUNNER = """
import json, sys
import django
django.setup()
from django.db import connection, transaction
from tests.lib.test_bulk_update import SCENARIOS
assert connection.vendor == "postgresql", connection.vendor
observed = {}
for name, (run, _) in SCENARIOS.items():
    with transaction.atomic():
        observed[name] = run()
        transaction.set_rollback(True)
print(json.dumps(observed))
"""


@pytest.fixture(scope="module")
def postgresql_observed(tmp_path_factory) -> dict[str, Any]:
    with throwaway_database(os.environ["BOSUN_TEST_DATABASE_URL"]) as database_url:
        env = bosun_env(
            BOSUN_DATA_DIR=str(tmp_path_factory.mktemp("bosun")), DATABASE_URL=database_url
        )
        migrated = manage("migrate", "-v", "0", env=env)
        assert migrated.returncode == 0, migrated.stderr
        ran = subprocess.run(
            [PYTHON, "-c", RUNNER],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        return json.loads(ran.stdout.strip().splitlines()[-1])


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [name for name in SCENARIOS],
)
def test_on_postgresql(name, postgresql_observed):
    _, check = SCENARIOS[name]
    check(postgresql_observed[name])
    if name in UPDATED:
        assert postgresql_observed[name]["updated"] == UPDATED[name]
