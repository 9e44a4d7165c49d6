"""Copying a database's tables into PostgreSQL, resumably: the store's and the journal's ``db copy``.

Each table is copied in primary-key order, a batch per transaction, every row written as an upsert: a row
the target has already is brought up to date, a new one is added. Then the rows the source no longer has
are removed from the target. Nothing is kept of where a run stopped: running it again, after an
interruption or to catch up, makes the target equal to the source again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

BATCH = 2_000  # rows per transaction (and per look-up of the rows gone)


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]  # the primary key
    columns: tuple[str, ...]  # every column, the key's first
    identity: bool = False  # its id is an identity column on PostgreSQL (set past the copied ids)
    into: str = ""  # its name in the target, when not ``name``

    @property
    def target(self) -> str:
        return self.into or self.name


@dataclass(frozen=True)
class Side:
    """One database of a copy: its connection, what is held while reading it, and one write transaction."""

    db: Any  # a sqlite3.Connection, or a postgres.Connection that speaks as one
    reading: Callable[[], AbstractContextManager[Any]]
    writing: Callable[[], AbstractContextManager[Any]]


@dataclass
class CopyReport:
    copied: dict[str, int]  # table -> rows written (added or brought up to date)
    removed: dict[str, int]  # table -> rows the source no longer has, removed from the target


def copy_tables(
    source: Side,
    target: Side,
    tables: Sequence[Table],
    progress: Callable[[str, int], None],
    *,
    removing_first: bool = False,
) -> CopyReport:
    """Every row of ``tables`` (parents first) from ``source`` upserted into ``target`` (PostgreSQL), then the
    target's rows the source no longer has removed (children first); identities set past the copied ids.
    ``removing_first``: remove before copying (a row gone may hold a unique value a new row takes)."""
    report = CopyReport({}, {})

    def remove() -> None:
        for table in reversed(tables):  # children first
            report.removed[table.name] = _remove_gone(source, target, table)

    if removing_first:
        remove()
    for table in tables:
        report.copied[table.name] = _copy(source, target, table, progress)
    if not removing_first:
        remove()
    with target.writing():
        for table in tables:
            if table.identity:  # new rows (serve's, after the switch) are numbered after the copied ones
                target.db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.target}', 'id'),"  # noqa: S608 -- tables' names
                    f" (SELECT coalesce(max(id), 0) + 1 FROM {table.target}), false)"
                )
    return report


def _copy(source: Side, target: Side, table: Table, progress: Callable[[str, int], None]) -> int:
    """Every row of ``table`` upserted into the target, in key order, BATCH rows a transaction."""
    columns = ", ".join(table.columns)
    key = ", ".join(table.key)
    others = [column for column in table.columns if column not in table.key]
    update = ", ".join(f"{column} = excluded.{column}" for column in others)
    name = table.target
    upsert = (
        f"INSERT INTO {name} ({columns}) VALUES ({', '.join('?' * len(table.columns))})"  # noqa: S608
        f" ON CONFLICT ({key}) DO UPDATE SET {update}"
        f" WHERE ({', '.join(f'{name}.{c}' for c in others)}) IS DISTINCT FROM ({', '.join(f'excluded.{c}' for c in others)})"
    )
    copied = 0
    after: Sequence[object] | None = None
    while True:
        rows = _page(source, table.name, table, columns, after)
        if not rows:
            return copied
        with target.writing():
            target.db.executemany(upsert, rows)
        copied += len(rows)
        progress(table.name, copied)
        after = rows[-1][: len(table.key)]


def _page(
    side: Side, name: str, table: Table, columns: str, after: Sequence[object] | None
) -> list[tuple[object, ...]]:
    """The next BATCH rows of ``table`` (called ``name`` in ``side``) in key order, after the key ``after``."""
    key = ", ".join(table.key)
    where = f"WHERE ({key}) > ({', '.join('?' * len(table.key))})" if after is not None else ""
    with side.reading():
        query = f"SELECT {columns} FROM {name} {where} ORDER BY {key} LIMIT {BATCH}"  # noqa: S608
        return [tuple(row) for row in side.db.execute(query, tuple(after or ()))]


def _remove_gone(source: Side, target: Side, table: Table) -> int:
    """Remove the target's rows of ``table`` whose key the source does not have; how many."""
    key = ", ".join(table.key)
    marks = "(" + ", ".join("?" * len(table.key)) + ")"
    removed = 0
    after: Sequence[object] | None = None
    while True:
        keys = [row[: len(table.key)] for row in _page(target, table.target, table, key, after)]
        if not keys:
            return removed
        after = keys[-1]
        found: set[tuple[object, ...]] = set()
        for start in range(0, len(keys), 400):  # SQLite's parameter limit, a few keys at a time
            part = keys[start : start + 400]
            query = f"SELECT {key} FROM {table.name} WHERE ({key}) IN (VALUES {', '.join([marks] * len(part))})"  # noqa: S608
            with source.reading():
                found.update(tuple(row) for row in source.db.execute(query, [v for k in part for v in k]))
        gone = [k for k in keys if tuple(k) not in found]
        if gone:
            with target.writing():
                target.db.executemany(f"DELETE FROM {table.target} WHERE ({key}) = {marks}", gone)  # noqa: S608
            removed += len(gone)


def nothing_held() -> AbstractContextManager[None]:
    """What a side that needs no lock while it is read holds."""
    return contextlib.nullcontext()
