"""One UPDATE that gives many rows each their own values, cheaply.

Django's `bulk_update` builds a `CASE WHEN pk = … THEN …` expression per field with one
branch per row, and resolving those expressions costs more CPU than the database spends on
the statement (about 0.4 ms per row and field in the agent-answer batches). This writes
`WITH v(pk, f1, f2, …) AS (VALUES (…), (…)) UPDATE t SET f1 = v.f1, … FROM v WHERE t.pk = v.pk`
instead, which PostgreSQL and SQLite (3.33+) both take, with each value prepared by its
field exactly as a save would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

# Keeps a statement's parameters well below SQLite's default limit of 32,766.
MAX_ROWS = 500


def bulk_update_rows(objs: Sequence[Model], fields: Sequence[str]) -> int:
    """Write `fields` of every object in `objs` (one model) by primary key; rows updated."""
    if not objs:
        return 0
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    columns = _concrete_fields(model, ["pk", *fields])
    quote = connection.ops.quote_name
    typed = connection.vendor == "postgresql"
    # PostgreSQL types VALUES columns from their first row, and a NULL there would be text:
    # every placeholder carries its column's type. SQLite takes the values as they come.
    placeholder = (
        "("
        + ", ".join(f"CAST(%s AS {_value_type(f, connection)})" if typed else "%s" for f in columns)
        + ")"
    )
    names = ", ".join(quote(f"c{index}") for index in range(len(columns)))
    table = quote(meta.db_table or "")
    assignments = ", ".join(
        f"{quote(field.column or '')} = v.{quote(f'c{index}')}"
        for index, field in enumerate(columns)
        if index > 0
    )
    updated = 0
    with connection.cursor() as cursor:
        for start in range(0, len(objs), MAX_ROWS):
            chunk = objs[start : start + MAX_ROWS]
            params: list[Any] = []
            for obj in chunk:
                for field in columns:
                    params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
            # Only quoted names from the model's meta and placeholders go into the text.
            rows = ", ".join([placeholder] * len(chunk))
            sql = (
                f"WITH v ({names}) AS (VALUES {rows}) "  # noqa: S608
                f"UPDATE {table} SET {assignments} FROM v "
                f"WHERE {table}.{quote(columns[0].column or '')} = v.{quote('c0')}"
            )
            if connection.vendor == "sqlite":
                # Python's sqlite3 leaves rowcount at -1 for a statement that starts with WITH.
                raw = connection.connection
                before = raw.total_changes
                cursor.execute(sql, params)
                updated += raw.total_changes - before
            else:
                cursor.execute(sql, params)
                updated += cursor.rowcount
    return updated


def _concrete_fields(model: type[Model], names: Sequence[str]) -> list[Field[Any, Any]]:
    """The model's fields by name ("pk" for the primary key): columns of its own table."""
    fields: list[Field[Any, Any]] = []
    for name in names:
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete or field.many_to_many:
            raise ValueError(f"{model.__name__}.{name} is not a column of its table")
        fields.append(field)
    return fields


def _value_type(field: Field[Any, Any], connection: BaseDatabaseWrapper) -> str:
    """The type a value is cast to: its column's, but a string's unbounded, because an explicit
    cast to varchar(n) cuts silently where the assignment to the column refuses a long value
    (as a save does)."""
    db_type = field.db_type(connection) or "text"
    return "text" if db_type.startswith("varchar") else db_type
