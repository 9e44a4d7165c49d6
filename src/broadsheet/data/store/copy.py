"""``broadsheet db copy``: the SQLite store's every row into a store in PostgreSQL, resumably.

Each table is copied in primary-key order, a batch per transaction, every row written as an upsert: a row
the target has already is brought up to date (a status changed, an event's detail erased), a new one is
added. Then the rows the source no longer has (a forgotten address, an applied sign-up, a rejoined topic)
are removed from the target. Nothing is kept of where a run stopped: running it again, after an
interruption or to catch up with what serve recorded meanwhile, makes the target equal to the source again
(an event has one id in both, so none is lost or doubled). The target takes the source's hash key, so the
addresses forgotten before stay forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from broadsheet.core.errors import StoreError

from .store import Store

BATCH = 2_000  # rows per transaction (and per look-up of the rows gone)


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]  # the primary key
    columns: tuple[str, ...]  # every column, the key's first
    identity: bool = False  # its id is an identity column on PostgreSQL (set past the copied ids)


# parents before children (the foreign keys), meta last but for its hash key (``_adopt_hash_key``)
TABLES = (
    Table(
        "subscribers",
        ("id",),
        ("id", "email", "email_key", "name", "fields", "status", "nonce", "created", "updated"),
        identity=True,
    ),
    Table("tags", ("subscriber", "tag_key"), ("subscriber", "tag_key", "tag")),
    Table(
        "events",
        ("id",),
        ("id", "subscriber", "at", "kind", "source", "campaign", "detail", "dedupe_key"),
        identity=True,
    ),
    Table("forgotten", ("email_hash",), ("email_hash", "at")),
    Table("intake", ("id",), ("id", "email", "name", "source", "at", "mailing"), identity=True),
    Table("clicks", ("id",), ("id", "campaign", "link", "url", "at", "scanner", "subscriber"), identity=True),
    Table("sequence_members", ("sequence", "subscriber"), ("sequence", "subscriber", "entered_at", "stopped_at")),
    Table("topic_choices", ("subscriber", "topic_key"), ("subscriber", "topic_key", "left_at")),
    Table("confirmation_mails", ("id",), ("id", "mailbox", "at"), identity=True),
    Table("meta", ("key",), ("key", "value")),
)


@dataclass
class CopyReport:
    copied: dict[str, int]  # table -> rows written (added or brought up to date)
    removed: dict[str, int]  # table -> rows the source no longer has, removed from the target


def copy_store(
    source: Store, target: Store, progress: Callable[[str, int], None] = lambda table, rows: None
) -> CopyReport:
    """Make ``target`` (PostgreSQL) hold what ``source`` holds; ``progress(table, rows so far)`` after each batch."""
    if not target.url:
        raise StoreError("db copy writes to a PostgreSQL store", fix="give --to postgresql://user@host/dbname")
    _adopt_hash_key(source, target)
    report = CopyReport({}, {})
    for table in TABLES:
        report.copied[table.name] = _copy(source, target, table, progress)
    for table in reversed(TABLES):  # children first
        report.removed[table.name] = _remove_gone(source, target, table)
    with target._write():
        for table in TABLES:
            if table.identity:  # new rows (serve's, after the switch) are numbered after the copied ones
                target.db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'),"  # noqa: S608 -- TABLES' names
                    f" (SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                )
    return report


def _adopt_hash_key(source: Store, target: Store) -> None:
    """The target takes the source's hash key (its forgotten addresses' hashes stay valid); refused when the
    target holds subscribers of another store already."""
    key = source.db.execute("SELECT value FROM meta WHERE key = 'hash_key'").fetchone()[0]
    with target._write():
        if target._meta("hash_key") != key and target.db.execute("SELECT 1 FROM subscribers LIMIT 1").fetchone():
            raise StoreError(
                "the PostgreSQL store holds subscribers of another store already",
                where=target.where,
                fix="copy into an empty database, or into the one this store was copied to before",
            )
        target.db.execute("UPDATE meta SET value = ? WHERE key = 'hash_key'", (key,))
    target._hash_key = bytes.fromhex(key)


def _copy(source: Store, target: Store, table: Table, progress: Callable[[str, int], None]) -> int:
    """Every row of ``table`` upserted into the target, in key order, BATCH rows a transaction."""
    columns = ", ".join(table.columns)
    key = ", ".join(table.key)
    others = [column for column in table.columns if column not in table.key]
    update = ", ".join(f"{column} = excluded.{column}" for column in others)
    upsert = (
        f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * len(table.columns))})"  # noqa: S608
        f" ON CONFLICT ({key}) DO UPDATE SET {update}"
        f" WHERE ({', '.join(f'{table.name}.{c}' for c in others)}) IS DISTINCT FROM ({', '.join(f'excluded.{c}' for c in others)})"
    )
    copied = 0
    after: Sequence[object] | None = None
    while True:
        rows = _page(source, table, columns, after)
        if not rows:
            return copied
        with target._write():
            target.db.executemany(upsert, rows)
        copied += len(rows)
        progress(table.name, copied)
        after = rows[-1][: len(table.key)]


def _page(store: Store, table: Table, columns: str, after: Sequence[object] | None) -> list[tuple[object, ...]]:
    """The next BATCH rows of ``table`` in key order, after the key ``after`` (None: from the first)."""
    key = ", ".join(table.key)
    where = f"WHERE ({key}) > ({', '.join('?' * len(table.key))})" if after is not None else ""
    with store._lock:
        query = f"SELECT {columns} FROM {table.name} {where} ORDER BY {key} LIMIT {BATCH}"  # noqa: S608
        return [tuple(row) for row in store.db.execute(query, tuple(after or ()))]


def _remove_gone(source: Store, target: Store, table: Table) -> int:
    """Remove the target's rows of ``table`` whose key the source does not have; how many."""
    key = ", ".join(table.key)
    marks = "(" + ", ".join("?" * len(table.key)) + ")"
    removed = 0
    after: Sequence[object] | None = None
    while True:
        keys = [row[: len(table.key)] for row in _page(target, table, key, after)]
        if not keys:
            return removed
        after = keys[-1]
        found: set[tuple[object, ...]] = set()
        for start in range(0, len(keys), 400):  # SQLite's parameter limit, a few keys at a time
            part = keys[start : start + 400]
            query = f"SELECT {key} FROM {table.name} WHERE ({key}) IN (VALUES {', '.join([marks] * len(part))})"  # noqa: S608
            with source._lock:
                found.update(tuple(row) for row in source.db.execute(query, [v for k in part for v in k]))
        gone = [k for k in keys if tuple(k) not in found]
        if gone:
            with target._write():
                target.db.executemany(f"DELETE FROM {table.name} WHERE ({key}) = {marks}", gone)  # noqa: S608
            removed += len(gone)
