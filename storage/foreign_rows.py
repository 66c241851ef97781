"""Rows of tables the store does not own, written on the store's connection.

Optuna's own tables share the database; the service mirrors its trials into them in
the same transaction as its own rows (`service/run/optuna_mirror.py`). The tables are
SQLAlchemy `Table`s that their owner defines: callers pass them, with plain dicts of
column values, and never need SQLAlchemy themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update


def insert_row(connection: Connection, table: Table, values: Mapping[str, Any]) -> Any:
    """Insert one row; its primary key."""
    key = connection.execute(insert(table).values(dict(values))).inserted_primary_key
    assert key is not None
    return key[0]


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        connection.execute(insert(table), [dict(row) for row in rows])


def update_rows(
    connection: Connection, table: Table, where: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """Set `values` on the rows whose columns equal `where`."""
    connection.execute(update(table).where(*_equal(table, where)).values(dict(values)))


def find_value(
    connection: Connection, table: Table, column: str, where: Mapping[str, Any]
) -> Any | None:
    """`column` of the first row whose columns equal `where`, or None."""
    return connection.scalar(select(table.c[column]).where(*_equal(table, where)))


def _equal(table: Table, where: Mapping[str, Any]) -> list[Any]:
    return [table.c[name] == value for name, value in where.items()]


def rows_of_children(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    parent: Table,
    key: str,
    where: Mapping[str, Any],
) -> Sequence[tuple[Any, ...]]:
    """`columns` of every row of `table` whose `key` is that of a `parent` row matching
    `where`, as tuples, in one query (a study's trial params, say, not a query per trial)."""
    keys = select(parent.c[key]).where(*_equal(parent, where))
    query = select(*(table.c[c] for c in columns)).where(table.c[key].in_(keys))
    return connection.execute(query).all()


def rows_where(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    where: Mapping[str, Any],
    *,
    order_by: str,
) -> Sequence[tuple[Any, ...]]:
    """`columns` of every row of `table` whose columns equal `where`, as tuples."""
    query = select(*(table.c[c] for c in columns)).where(*_equal(table, where))
    return connection.execute(query.order_by(table.c[order_by])).all()
