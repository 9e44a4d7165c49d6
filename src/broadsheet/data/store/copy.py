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

from collections.abc import Callable

from broadsheet.core.errors import StoreError

from ..db.copy import CopyReport, Side, Table, copy_tables
from .store import Store

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


def store_side(store: Store) -> Side:
    """A store as one side of a copy: read under its lock, written a transaction at a time."""
    return Side(store.db, lambda: store._lock, store._write)


def copy_store(
    source: Store, target: Store, progress: Callable[[str, int], None] = lambda table, rows: None
) -> CopyReport:
    """Make ``target`` (PostgreSQL) hold what ``source`` holds; ``progress(table, rows so far)`` after each batch."""
    if not target.url:
        raise StoreError("db copy writes to a PostgreSQL store", fix="give --to postgresql://user@host/dbname")
    _adopt_hash_key(source, target)
    return copy_tables(store_side(source), store_side(target), TABLES, progress)


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
