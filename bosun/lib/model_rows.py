"""Model instances from a hand-written SELECT, with the ORM's own value conversions.

For the few reads hot enough that compiling the ORM query costs more than running it (the
newest version of a parameter: ~0.6 ms of CPU to build and compile a two-table query that
PostgreSQL answers in a tenth of that). The SQL is written once; the columns are the model's
concrete fields in order, and each value goes through the converters the ORM's compiler would
apply (the backend's, e.g. SQLite's datetimes and booleans, then the field's, e.g. JSONField),
so the instance is the one `QuerySet` would have built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Model

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


def column_of(model: type[Model], field_name: str) -> str:
    """The database column of a concrete field (a field without one is a programming error)."""
    field = model._meta.get_field(field_name)
    column = getattr(field, "column", None)  # a reverse relation has none
    if not isinstance(column, str) or not column:
        raise ValueError(f"{model.__name__}.{field_name} has no column")
    return column


class ModelColumns(Generic[M]):
    """One model's concrete columns under a table alias in a SELECT."""

    def __init__(self, model: type[M], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self.columns = [column_of(model, field.name) for field in self.fields]
        # Per database alias: converters depend on the backend.
        self._converters: dict[str, list[tuple[int, list[Converter], Any]]] = {}

    @property
    def width(self) -> int:
        return len(self.fields)

    def table(self, using: str = "default") -> str:
        """`"table" alias`, for the FROM or JOIN clause."""
        quote = connections[using].ops.quote_name
        return f"{quote(self.model._meta.db_table)} {self.alias}"

    def select_list(self, using: str = "default") -> str:
        quote = connections[using].ops.quote_name
        return ", ".join(f"{self.alias}.{quote(column)}" for column in self.columns)

    def instance(self, values: Sequence[Any], using: str = "default") -> M:
        """The model instance of this model's columns (`values` in select_list's order)."""
        row = list(values)
        connection = connections[using]
        for index, converters, expression in self._converters_for(using):
            value = row[index]
            for converter in converters:
                value = converter(value, expression, connection)
            row[index] = value
        return self.model.from_db(using, self.attnames, row)

    def _converters_for(self, using: str) -> list[tuple[int, list[Converter], Any]]:
        known = self._converters.get(using)
        if known is None:
            connection = connections[using]
            known = []
            for index, field in enumerate(self.fields):
                expression = field.get_col(self.alias)
                converters = [
                    *connection.ops.get_db_converters(expression),
                    *field.get_db_converters(connection),
                ]
                if converters:
                    known.append((index, converters, expression))
            self._converters[using] = known
        return known
