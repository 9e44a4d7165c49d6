"""A subscriber CSV (the format send reads) into the store: parked in a staging file, then moved in address
order, in bounded transactions, with flat memory.

Rules (who is new is decided by the UNIQUE ``email_key``: no set of every address is ever held):

- an address the store does not have is added from its first row in the file (with its tags and an
  ``imported`` event); its later rows, and every row of an address already present, are *present rows*;
- a present row that says unsubscribed, bounced or complained is always applied to a subscriber whose
  status is weaker (suppression only gets stronger: complained > bounced > unsubscribed);
- with ``update``, present rows merge name, fields and tags in, and a subscribed row confirms an
  unconfirmed one, but never resubscribes someone unsubscribed, bounced or complained unless ``resubscribe``;
- a forgotten address is never added again (its rows are counted, nothing else).

How: each row is validated by the CSV row reader and staged (key, fields as JSON, the number of its tag
list: each distinct list is staged once) in a temporary SQLite file beside the store (``data.bulk.Staging``,
sorted on disk: memory stays flat; the store is not locked meanwhile). The sorted rows move in
ROWS_PER_TRANSACTION at a time, in address order, so the UNIQUE index fills front to back and other
writers (serve's one-click unsubscribes) get the store between transactions. New subscribers go in
set-based, in SQL; only present rows that may change something come back to Python. Events name the
file's line.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from broadsheet.core.audience import RowProblem
from broadsheet.core.errors import StoreError

from ..bulk import Staging, insert_many
from ..db import postgres
from ..subscriber_list import list_column_chunks
from .schema import STATUS_EVENTS, STATUSES, SUPPRESSING, settled, weaker_sql
from .staged import STAGED, TAGSET_COLUMNS, TagSets, staged_chunks
from .store import Store, dump_fields, utc_now

ROWS_PER_TRANSACTION = 50_000  # a short, bounded hold of the store's write lock, in address order
MERGE_CHUNK = 5_000  # present rows brought to Python at a time (--update)
CACHE_KIB = 49_152  # the page cache during the move (48 MiB; default 2)
SORT_CACHE_KIB = 16_384  # the sort's memory: its runs sort faster at this size than at CACHE_KIB, in less RSS
CHECKPOINT_PAGES = 10_000  # WAL pages before a checkpoint during the move (default 1,000: a checkpoint each)
PAUSE = 0.005  # seconds between two transactions of the move: another writer's turn
SORTED = "staging.sorted"  # the staged rows in (key, file order); its rowid is the position
TAGSETS = "staging.tagsets"  # the tags of each staged tag list number


@dataclass
class ImportReport:
    """What an import did; ``problems`` counts the bad rows (each was handed to ``on_problem``)."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    opted_out: int = 0  # present addresses the file moved to unsubscribed, bounced or complained
    kept_suppressed: int = 0  # rows saying subscribed for a suppressed address, left as it was
    resubscribed: int = 0  # suppressed addresses subscribed again (--update --resubscribe)
    forgotten: int = 0  # forgotten addresses, not added again
    problems: int = 0
    by_status: dict[str, int] = field(default_factory=dict)  # added, by status


def import_csv(
    store: Store,
    path: Path,
    *,
    update: bool = False,
    resubscribe: bool = False,
    on_problem: Callable[[RowProblem], None] = lambda problem: None,
) -> ImportReport:
    """Import the CSV at ``path``; each bad row goes to ``on_problem`` and is skipped.

    An error stops the import with the transactions before it committed (each whole: subscribers with their
    tags and events) and the staging file removed."""
    if resubscribe and not update:
        raise StoreError("--resubscribe only goes with --update", fix="add --update")
    report = ImportReport()
    if store.url:
        return _import_postgres(store, path, report, update=update, resubscribe=resubscribe, on_problem=on_problem)
    move = _Move(store, path.name, report, update=update, resubscribe=resubscribe)
    try:
        with store._lock, Staging(store.db, store.path.parent, STAGED) as staging:
            with _pragmas(store.db, cache_size=-SORT_CACHE_KIB, temp_store="FILE"):  # sorts spill to files, not RAM
                total = _stage(store, staging, path, report, on_problem)
            # statement journals in memory (small: the move mostly appends), fewer checkpoints, and no foreign
            # key look-ups: every tag and event row the move writes joins a subscriber row it found or added
            # in the same transaction, so the check could not fail (and the move deletes nothing)
            move_settings: dict[str, int | str] = {
                "temp_store": "MEMORY",
                "wal_autocheckpoint": CHECKPOINT_PAGES,
                "foreign_keys": 0,
            }
            with _pragmas(store.db, cache_size=-CACHE_KIB, **move_settings):
                for start in range(0, total, ROWS_PER_TRANSACTION):
                    if start:
                        time.sleep(PAUSE)  # another writer's turn (the lock is no queue)
                    with store._write():
                        move.batch(start, min(start + ROWS_PER_TRANSACTION, total))
            store.db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # what the last transactions wrote, into the file
    except sqlite3.Error as exc:
        raise StoreError(f"the import stopped: {exc}", where=str(store.path),
                         fix=f"{report.added:,} subscriber(s) were added before it; run the import again"
                             " (present addresses are left as they are)") from None  # fmt: skip
    return report


def import_list(
    store: Store, path: Path, fingerprint: str, *, on_problem: Callable[[RowProblem], None] = lambda problem: None
) -> ImportReport | None:
    """``import_csv`` of a send's configured list (new addresses added, its opt-outs applied, the store's
    suppressions kept), skipped (None) when the file's ``fingerprint`` is the one imported last."""
    name = f"imported:{path.resolve()}"
    if store.note(name) == fingerprint:
        return None
    report = import_csv(store, path, on_problem=on_problem)
    store.set_note(name, fingerprint)
    return report


def _stage(
    store: Store, staging: Staging, path: Path, report: ImportReport, on_problem: Callable[[RowProblem], None]
) -> int:
    """The list's valid rows in SORTED, in address order (file order within an address); their count.
    The list is read by a second thread, and sorted once read."""

    def noted(problem: RowProblem) -> None:
        report.problems += 1
        on_problem(problem)

    db, tagsets = store.db, TagSets()
    db.execute(f"CREATE TABLE {TAGSETS} ({', '.join(TAGSET_COLUMNS)}, PRIMARY KEY (tagset, tag_key)) WITHOUT ROWID")

    def stage_tagsets() -> None:
        insert_many(db, f"INSERT INTO {TAGSETS} ({', '.join(TAGSET_COLUMNS)})", tagsets.taken())

    chunks = list_column_chunks(path, store._addresses, wanted=STATUSES)
    report.rows = staging.fill(staged_chunks(chunks, noted, tagsets), then=stage_tagsets)
    stage_tagsets()
    return _sort(db, staging)


def _sort(db: sqlite3.Connection, staging: Staging) -> int:
    """Copy the staged rows into SORTED in address order (file order within an address); their count.
    Only the staging file is written: the store stays free."""
    columns = ", ".join(STAGED)
    db.execute(f"CREATE TABLE {SORTED} ({columns})")
    with _transaction(db):
        return int(db.execute(f"INSERT INTO {SORTED} ({columns}) SELECT {columns} FROM {staging.TABLE}"
                              " WHERE true ORDER BY key, rowid").rowcount)  # fmt: skip


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """A deferred transaction: one on the staging file takes no lock on the store."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def _pragmas(db: sqlite3.Connection, **settings: int | str) -> Iterator[None]:
    """The connection's ``settings`` changed for a while, then given back as they were."""
    old = {name: db.execute(f"PRAGMA {name}").fetchone()[0] for name in settings}
    for name, value in settings.items():
        db.execute(f"PRAGMA {name}={value}")
    try:
        yield
    finally:
        for name, value in old.items():
            db.execute(f"PRAGMA {name}={value}")


class _Row(NamedTuple):
    """A present row of the file, as staged."""

    key: str
    status: str
    name: str
    fields: str  # JSON
    tagset: int | None  # its tags in TAGSETS
    line: int


@dataclass
class _Subscriber:
    """A subscriber of the store that present rows merge into (kept up to date as they do)."""

    id: int
    name: str
    fields: dict[str, str]
    status: str
    tags: set[str]


class _Move:
    """Moves rows [start, end) of SORTED into the store, inside a write transaction."""

    def __init__(self, store: Store, source: str, report: ImportReport, *, update: bool, resubscribe: bool):
        self.store, self.db, self.source, self.report = store, store.db, source, report
        self.update, self.resubscribe = update, resubscribe
        self.created = utc_now()  # one import, one time: every row it adds was created when it started

    def batch(self, start: int, end: int) -> None:
        before = self.db.execute("SELECT coalesce(max(id), 0) FROM subscribers").fetchone()[0]
        # rows of forgotten addresses are left out of everything below (usually there are none)
        unforgotten, forgotten = self._unforgotten(start, end)
        # the row at position p (> start) gets the id base + p: ids in address order, and each new row's
        # tags join it by id (a present row leaves its id unused)
        rows = {"start": start, "end": end, "base": before - start, "before": before, "forgotten": forgotten}
        self._insert_new(rows, unforgotten)
        if self.update:
            for sub_start in range(start, end, MERGE_CHUNK):
                self._merge_present({**rows, "start": sub_start, "end": min(sub_start + MERGE_CHUNK, end)}, unforgotten)
        else:
            self._apply_opt_outs(rows, unforgotten)

    def _unforgotten(self, start: int, end: int) -> tuple[str, str]:
        """A condition on ``s.key`` that leaves out forgotten addresses (and the JSON list it uses)."""
        if self.db.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone() is None:
            return "", "[]"
        keys = [key for (key,) in self.db.execute(
            f"SELECT DISTINCT key FROM {SORTED} WHERE rowid > ? AND rowid <= ?", (start, end)
        )]  # fmt: skip
        hashes = {self.store.forgotten_hash(key): key for key in keys}
        query = "SELECT email_hash FROM forgotten WHERE email_hash IN ({})"
        found = json.dumps([hashes[digest] for (digest,) in self.store.select_in(query, list(hashes))])
        self.report.forgotten += self.db.execute(
            f"SELECT count(*) FROM {SORTED} WHERE rowid > ? AND rowid <= ? AND key IN (SELECT value FROM json_each(?))",
            (start, end, found),
        ).fetchone()[0]
        return " AND s.key NOT IN (SELECT value FROM json_each(:forgotten))", found

    def _insert_new(self, rows: dict[str, Any], unforgotten: str) -> None:
        """The first row of each address the store does not have, in address order, with its tags and event."""
        db = self.db
        added = db.execute(
            "INSERT INTO subscribers (id, email, email_key, name, fields, status, created, updated)"
            " SELECT :base + s.rowid, coalesce(s.email, s.key), s.key, s.name, s.fields, s.status, :now, :now"
            f" FROM {SORTED} s WHERE s.rowid > :start AND s.rowid <= :end{unforgotten} ORDER BY s.rowid"
            " ON CONFLICT (email_key) DO NOTHING",
            {**rows, "now": self.created},
        ).rowcount
        if not added:
            return
        db.execute(
            "INSERT INTO events (subscriber, at, kind, source, detail)"
            " SELECT id, ?, 'imported', 'import', ? FROM subscribers WHERE id > ?",
            (utc_now(), self.source, rows["before"]),
        )
        db.execute(
            "INSERT INTO tags (subscriber, tag, tag_key) SELECT u.id, t.tag, t.tag_key"
            f" FROM {SORTED} s CROSS JOIN subscribers u ON u.id = :base + s.rowid"
            f" CROSS JOIN {TAGSETS} t ON t.tagset = s.tagset"
            " WHERE s.rowid > :start AND s.rowid <= :end AND s.tagset IS NOT NULL"
            " ON CONFLICT (subscriber, tag_key) DO NOTHING",
            rows,
        )
        self.store._touch()
        self.report.added += added
        by_status = self.report.by_status
        for status, count in db.execute(
            "SELECT status, count(*) FROM subscribers WHERE id > ? GROUP BY status", (rows["before"],)
        ):
            by_status[status] = by_status.get(status, 0) + count

    def _apply_opt_outs(self, rows: dict[str, Any], unforgotten: str) -> None:
        """Without --update: the rows that say unsubscribed, bounced or complained, for an address whose
        status is weaker now (a row just added has its own status already, so it is not among them)."""
        suppressing = ", ".join(f"'{status}'" for status in SUPPRESSING)
        found = self.db.execute(
            f"SELECT s.key, s.status, s.line, u.status FROM {SORTED} s CROSS JOIN subscribers u ON u.email_key = s.key"
            f" WHERE s.rowid > :start AND s.rowid <= :end AND s.status IN ({suppressing})"
            f" AND {weaker_sql('u.status', 's.status')}{unforgotten} ORDER BY s.rowid",
            rows,
        ).fetchall()
        opted_out = set()  # in file order within an address: each row stronger than the status it meets moves it
        for key, status, line, before in found:
            moved = self.store._strengthen(key, status, source="import", detail=f"{self.source}:{line}")
            if moved and before not in SUPPRESSING:
                opted_out.add(key)
        self.report.opted_out += len(opted_out)

    def _merge_present(self, rows: dict[str, Any], unforgotten: str) -> None:
        """--update: every row not just added (present before, or a later row of an address) merges in."""
        present = [_Row(*row) for row in self.db.execute(
            f"SELECT s.key, s.status, s.name, s.fields, s.tagset, s.line FROM {SORTED} s"
            f" WHERE s.rowid > :start AND s.rowid <= :end{unforgotten}"
            " AND NOT EXISTS (SELECT 1 FROM subscribers u WHERE u.id = :base + s.rowid) ORDER BY s.rowid",
            rows,
        )]  # fmt: skip
        if not present:
            return
        subscribers = _load(self.store, {row.key for row in present})
        tags = _tagsets(self.store, TAGSETS, present)
        for row in present:
            _merge(self.store, subscribers[row.key], row, tags[row.tagset], self.source, self.report,
                   resubscribe=self.resubscribe)  # fmt: skip


def _tagsets(store: Store, table: str, rows: list[_Row]) -> dict[int | None, list[tuple[str, str]]]:
    """The (tag key, tag) pairs of each tag list number of ``rows``, from the staged ``table``."""
    tags: dict[int | None, list[tuple[str, str]]] = {None: []}
    numbers = list({row.tagset for row in rows if row.tagset is not None})
    query = f"SELECT tagset, tag_key, tag FROM {table} WHERE tagset IN ({{}})"
    for number, key, tag in store.select_in(query, numbers):
        tags.setdefault(number, []).append((key, tag))
    return tags


def _load(store: Store, keys: set[str]) -> dict[str, _Subscriber]:
    found: dict[str, _Subscriber] = {}
    rows = store.select_in(
        "SELECT id, email_key, name, fields, status FROM subscribers WHERE email_key IN ({})", list(keys)
    )
    for id_, key, name, fields_json, status in rows:
        found[key] = _Subscriber(id_, name, json.loads(fields_json), status, set())
    by_id = {subscriber.id: subscriber for subscriber in found.values()}
    for subscriber, tag_key in store.select_in(
        "SELECT subscriber, tag_key FROM tags WHERE subscriber IN ({})", list(by_id)
    ):
        by_id[subscriber].tags.add(tag_key)
    return found


def _merge(store: Store, present: _Subscriber, row: _Row, pairs: list[tuple[str, str]], source: str,
           report: ImportReport, *, resubscribe: bool) -> None:  # fmt: skip
    """Merge one row (its tags: (tag key, tag) ``pairs``) into a present subscriber (and into ``present``,
    for later rows of the same address)."""
    detail = f"{source}:{row.line}"
    name = row.name or present.name
    fields = {**present.fields, **json.loads(row.fields)}
    new_tags = [(key, tag) for key, tag in pairs if key not in present.tags]
    status = _merged_status(present.status, row.status, resubscribe=resubscribe)
    if row.status == "subscribed" and present.status in SUPPRESSING and status != "subscribed":
        report.kept_suppressed += 1
    if status != present.status:
        store.db.execute("UPDATE subscribers SET status = ?, updated = ? WHERE id = ?", (status, utc_now(), present.id))
        store._event(present.id, STATUS_EVENTS[status], source="import", detail=detail)
        if status in SUPPRESSING:
            report.opted_out += present.status not in SUPPRESSING  # not when only made stronger
        elif present.status in SUPPRESSING:
            report.resubscribed += 1
        present.status = status
        store._touch()
    if name != present.name or fields != present.fields or new_tags:
        store.db.execute("UPDATE subscribers SET name = ?, fields = ?, updated = ? WHERE id = ?",
                         (name, dump_fields(fields), utc_now(), present.id))  # fmt: skip
        store._add_tags(present.id, [tag for _, tag in new_tags])
        store._event(present.id, "updated", source="import", detail=detail)
        present.name, present.fields = name, fields
        present.tags.update(key for key, _ in new_tags)
        report.updated += 1
        store._touch()


def _merged_status(old: str, new: str, *, resubscribe: bool) -> str:
    if new in SUPPRESSING:
        return settled(old, new)
    if new == "subscribed" and (old == "unconfirmed" or (old in SUPPRESSING and resubscribe)):
        return "subscribed"
    return old


# -- PostgreSQL ------------------------------------------------------------------------------------
# The same rules, the same bounded transactions in address order; the rows are staged by COPY into a
# temporary table of the import's own connection (nothing is written to the store meanwhile) and numbered in
# address order there (``pos``: file order; ``rn``: address order; ``first``: an address's first row).

PG_STAGED = "import_staged"
PG_SORTED = "import_sorted"
PG_TAGSETS = "import_tagsets"


def _import_postgres(
    store: Store, path: Path, report: ImportReport, *, update: bool, resubscribe: bool,
    on_problem: Callable[[RowProblem], None],
) -> ImportReport:  # fmt: skip
    """``import_csv`` into a store in PostgreSQL."""
    move = _PostgresMove(store, path.name, report, update=update, resubscribe=resubscribe)
    try:
        with store._lock:
            try:
                total = _stage_postgres(store, path, report, on_problem)
                for start in range(0, total, ROWS_PER_TRANSACTION):
                    if start:
                        time.sleep(PAUSE)  # another writer's turn
                    with store._write():
                        move.batch(start, min(start + ROWS_PER_TRANSACTION, total))
            finally:
                store.db.execute(f"DROP TABLE IF EXISTS {PG_STAGED}, {PG_SORTED}, {PG_TAGSETS}")
    except postgres.errors() as exc:
        raise StoreError(f"the import stopped: {str(exc).strip().splitlines()[0]}", where=store.where,
                         fix=f"{report.added:,} subscriber(s) were added before it; run the import again"
                             " (present addresses are left as they are)") from None  # fmt: skip
    return report


def _stage_postgres(store: Store, path: Path, report: ImportReport, on_problem: Callable[[RowProblem], None]) -> int:
    """The list's valid rows COPYed into a temporary table, then numbered in address order; their count."""

    def noted(problem: RowProblem) -> None:
        report.problems += 1
        on_problem(problem)

    db, tagsets = store.db, TagSets()
    columns = ", ".join(STAGED)
    db.execute(f"DROP TABLE IF EXISTS {PG_STAGED}, {PG_SORTED}, {PG_TAGSETS}")
    db.execute(
        f"CREATE TEMPORARY TABLE {PG_STAGED} (pos BIGINT, key TEXT, email TEXT, name TEXT, fields TEXT, status TEXT,"
        " tagset BIGINT, line BIGINT)"
    )
    db.execute(
        f"CREATE TEMPORARY TABLE {PG_TAGSETS} (tagset BIGINT, tag_key TEXT, tag TEXT, PRIMARY KEY (tagset, tag_key))"
    )
    rows = 0
    with postgres.copy(db, f"COPY {PG_STAGED} (pos, {columns}) FROM STDIN") as copy:
        for chunk in staged_chunks(list_column_chunks(path, store._addresses, wanted=STATUSES), noted, tagsets):
            for row in chunk:
                rows += 1
                copy.write_row((rows, *row))
    with postgres.copy(db, f"COPY {PG_TAGSETS} ({', '.join(TAGSET_COLUMNS)}) FROM STDIN") as copy:
        for tagset_row in tagsets.taken():
            copy.write_row(tagset_row)
    report.rows = rows
    db.execute(
        f"CREATE TEMPORARY TABLE {PG_SORTED} AS SELECT row_number() OVER (ORDER BY key, pos) AS rn,"
        f" row_number() OVER (PARTITION BY key ORDER BY pos) = 1 AS first, {columns} FROM {PG_STAGED}"
    )
    db.execute(f"DROP TABLE {PG_STAGED}")
    db.execute(f"CREATE INDEX ON {PG_SORTED} (rn)")
    db.execute(f"ANALYZE {PG_SORTED}")
    return rows


class _PostgresMove:
    """Moves rows (start, end] of PG_SORTED into the store, inside a write transaction (``_Move``'s rules)."""

    def __init__(self, store: Store, source: str, report: ImportReport, *, update: bool, resubscribe: bool):
        self.store, self.db, self.source, self.report = store, store.db, source, report
        self.update, self.resubscribe = update, resubscribe
        self.created = utc_now()

    def batch(self, start: int, end: int) -> None:
        before = self.db.execute("SELECT coalesce(max(id), 0) FROM subscribers").fetchone()[0]
        rows = {"start": start, "end": end, "before": before, "forgotten": self._forgotten(start, end)}
        self._insert_new(rows)
        if self.update:
            for sub_start in range(start, end, MERGE_CHUNK):
                self._merge_present({**rows, "start": sub_start, "end": min(sub_start + MERGE_CHUNK, end)})
        else:
            self._apply_opt_outs(rows)

    def _forgotten(self, start: int, end: int) -> list[str]:
        """The forgotten addresses among the batch's (usually none), counted in the report."""
        if self.db.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone() is None:
            return []
        keys = [key for (key,) in self.db.execute(
            f"SELECT DISTINCT key FROM {PG_SORTED} WHERE rn > ? AND rn <= ?", (start, end)
        )]  # fmt: skip
        hashes = {self.store.forgotten_hash(key): key for key in keys}
        query = "SELECT email_hash FROM forgotten WHERE email_hash IN ({})"
        found = [hashes[digest] for (digest,) in self.store.select_in(query, list(hashes))]
        self.report.forgotten += self.db.execute(
            f"SELECT count(*) FROM {PG_SORTED} WHERE rn > ? AND rn <= ? AND key = ANY(CAST(? AS TEXT[]))",
            (start, end, found),
        ).fetchone()[0]
        return found

    def _insert_new(self, rows: dict[str, Any]) -> None:
        """The first row of each address the store does not have, in address order, with its tags and event."""
        db = self.db
        added = db.execute(
            "WITH added AS (INSERT INTO subscribers (email, email_key, name, fields, status, created, updated)"
            " SELECT coalesce(s.email, s.key), s.key, s.name, s.fields, s.status, :now, :now"
            f" FROM {PG_SORTED} s WHERE s.rn > :start AND s.rn <= :end AND s.first"
            " AND s.key <> ALL(CAST(:forgotten AS TEXT[])) ORDER BY s.rn"
            " ON CONFLICT (email_key) DO NOTHING RETURNING status)"
            " SELECT status, count(*) FROM added GROUP BY status",
            {**rows, "now": self.created},
        ).fetchall()
        if not added:
            return
        db.execute(
            "INSERT INTO events (subscriber, at, kind, source, detail)"
            " SELECT id, ?, 'imported', 'import', ? FROM subscribers WHERE id > ? ORDER BY id",
            (utc_now(), self.source, rows["before"]),
        )
        db.execute(
            "INSERT INTO tags (subscriber, tag, tag_key) SELECT u.id, t.tag, t.tag_key"
            f" FROM {PG_SORTED} s JOIN subscribers u ON u.email_key = s.key AND u.id > :before"
            f" JOIN {PG_TAGSETS} t ON t.tagset = s.tagset"
            " WHERE s.rn > :start AND s.rn <= :end AND s.first ORDER BY s.rn, t.tag_key"
            " ON CONFLICT (subscriber, tag_key) DO NOTHING",
            rows,
        )
        self.store._touch()
        by_status = self.report.by_status
        for status, count in added:
            self.report.added += count
            by_status[status] = by_status.get(status, 0) + count

    def _apply_opt_outs(self, rows: dict[str, Any]) -> None:
        """``_Move._apply_opt_outs``: the file's opt-outs for present addresses whose status is weaker."""
        suppressing = ", ".join(f"'{status}'" for status in SUPPRESSING)
        found = self.db.execute(
            f"SELECT s.key, s.status, s.line, u.status FROM {PG_SORTED} s JOIN subscribers u ON u.email_key = s.key"
            f" WHERE s.rn > :start AND s.rn <= :end AND s.status IN ({suppressing})"
            f" AND {weaker_sql('u.status', 's.status')} AND s.key <> ALL(CAST(:forgotten AS TEXT[])) ORDER BY s.rn",
            rows,
        ).fetchall()
        opted_out = set()
        for key, status, line, before in found:
            moved = self.store._strengthen(key, status, source="import", detail=f"{self.source}:{line}")
            if moved and before not in SUPPRESSING:
                opted_out.add(key)
        self.report.opted_out += len(opted_out)

    def _merge_present(self, rows: dict[str, Any]) -> None:
        """--update: every row not just added (present before, or a later row of an address) merges in."""
        present = [_Row(*row) for row in self.db.execute(
            f"SELECT s.key, s.status, s.name, s.fields, s.tagset, s.line FROM {PG_SORTED} s"
            " WHERE s.rn > :start AND s.rn <= :end AND s.key <> ALL(CAST(:forgotten AS TEXT[]))"
            " AND NOT (s.first AND EXISTS (SELECT 1 FROM subscribers u WHERE u.email_key = s.key AND u.id > :before))"
            " ORDER BY s.rn",
            rows,
        )]  # fmt: skip
        if not present:
            return
        subscribers = _load(self.store, {row.key for row in present})
        tags = _tagsets(self.store, PG_TAGSETS, present)
        for row in present:
            _merge(self.store, subscribers[row.key], row, tags[row.tagset], self.source, self.report,
                   resubscribe=self.resubscribe)  # fmt: skip
