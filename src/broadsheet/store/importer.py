"""A subscriber CSV (the format send reads) into the store: streamed, in big transactions, flat memory.

The UNIQUE ``email_key`` decides who is new (``INSERT … ON CONFLICT DO NOTHING``): no set of every address
is ever held. Rules for addresses already in the store:

- a row that says unsubscribed, bounced or complained is always applied to a subscribed or unconfirmed one;
- with ``update``, name, fields and tags are merged in, and a subscribed row confirms an unconfirmed one,
  but never resubscribes someone unsubscribed, bounced or complained unless ``resubscribe``;
- a forgotten address is never added again.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..audience import RowProblem, Subscriber, list_rows
from ..audience.bulk import insert_many
from ..errors import StoreError
from .schema import STATUS_EVENTS, STATUSES, SUPPRESSING
from .store import Store, dump_fields, utc_now

CHUNK = 5_000  # rows handed from the reading thread to the writing one at a time
ROWS_PER_TRANSACTION = 50_000  # about half a second of the write lock
CACHE_KIB = 49_152  # SQLite's page cache during an import (48 MiB; the default is 2 MiB)
MOVABLE = ("subscribed", "unconfirmed")  # statuses a row of the file may move to a suppressing one


@dataclass
class ImportReport:
    """What an import did; ``problems`` counts the bad rows (each was handed to ``on_problem``)."""

    rows: int = 0
    added: int = 0
    updated: int = 0
    opted_out: int = 0  # present addresses the file moved to unsubscribed, bounced or complained
    kept_suppressed: int = 0  # rows saying subscribed for a suppressed address, left as it was
    forgotten: int = 0  # forgotten addresses, not added again
    problems: int = 0
    by_status: dict[str, int] = field(default_factory=dict)  # added, by status


class _Entry(NamedTuple):  # a tuple: cheaper to make a million of than a frozen dataclass
    status: str
    subscriber: Subscriber
    key: str
    row: tuple[str, ...]  # the subscribers row to insert, made in the reading thread


def import_csv(
    store: Store,
    path: Path,
    *,
    update: bool = False,
    resubscribe: bool = False,
    on_problem: Callable[[RowProblem], None] = lambda problem: None,
) -> ImportReport:
    """Import the CSV at ``path``; each bad row goes to ``on_problem`` and is skipped."""
    if resubscribe and not update:
        raise StoreError("--resubscribe only goes with --update", fix="add --update")
    report = ImportReport()
    source = path.name

    def write(chunk: list[_Entry]) -> None:  # inside a transaction of the writing thread
        chunk = _drop_forgotten(store, chunk, report)
        present = _insert_new(store, chunk, source, report)
        if update:
            _merge_present(store, chunk, present, source, report, resubscribe=resubscribe)
        else:
            _apply_opt_outs(store, chunk, source, report)

    with _bigger_cache(store), _Pipeline(store._write, write) as pipeline:
        for chunk in _chunks(_entries(path, store, report, on_problem), CHUNK):
            pipeline.put(chunk)
    return report


@contextmanager
def _bigger_cache(store: Store) -> Iterator[None]:
    """A page cache that holds a transaction's dirty index pages (else SQLite spills and rereads them), and
    statement journals in memory: a multi-row INSERT that may fail journals every page it changes, and in a
    temp file that is two small writes a page (measured: most of the system time of a bulk load)."""
    with store._lock:
        old = store.db.execute("PRAGMA cache_size").fetchone()[0]
        temp_store = store.db.execute("PRAGMA temp_store").fetchone()[0]
        store.db.execute(f"PRAGMA cache_size={-CACHE_KIB}")
        store.db.execute("PRAGMA temp_store=MEMORY")  # each insert's statement journal: RAM, not a temp file
    try:
        yield
    finally:
        with store._lock:
            store.db.execute(f"PRAGMA cache_size={old}")
            store.db.execute(f"PRAGMA temp_store={temp_store}")


class _Pipeline:
    """Chunks written by a second thread while the next one is read: SQLite works without the GIL, so
    reading the CSV and writing the store overlap on two cores. At most two chunks wait (flat memory).
    An error in the writer stops the reading at the next chunk and is raised here."""

    def __init__(
        self, transaction: Callable[[], AbstractContextManager[object]], write: Callable[[list[_Entry]], None]
    ):
        self.transaction = transaction
        self.write = write
        self.chunks: queue.Queue[list[_Entry] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="broadsheet-import", daemon=True)

    def __enter__(self) -> _Pipeline:
        self.thread.start()
        return self

    def put(self, chunk: list[_Entry]) -> None:
        if self.error is not None:
            raise self.error
        self.chunks.put(chunk)

    def __exit__(self, *exc_info: object) -> None:
        self.chunks.put(None)
        self.thread.join()
        if self.error is not None and exc_info[0] is None:
            raise self.error

    def _run(self) -> None:
        """Chunks written in transactions of about ROWS_PER_TRANSACTION rows: every index page a transaction
        touches is written once per transaction, so bigger ones write much less for a list in random order."""
        chunk = self.chunks.get()
        while chunk is not None:
            try:
                with self.transaction():
                    written = 0
                    while chunk is not None and written < ROWS_PER_TRANSACTION:
                        self.write(chunk)
                        written += len(chunk)
                        chunk = self.chunks.get()
            except BaseException as exc:
                self.error = exc
                while chunk is not None:  # let the reader finish putting; it raises at its next put
                    chunk = self.chunks.get()


def _entries(
    path: Path, store: Store, report: ImportReport, on_problem: Callable[[RowProblem], None]
) -> Iterator[_Entry]:
    now = utc_now()  # one import, one time: every row it adds was created when it started
    for item in list_rows(path, store._addresses, wanted=STATUSES):
        if isinstance(item, RowProblem):
            report.problems += 1
            on_problem(item)
            continue
        status, subscriber = item
        assert subscriber is not None
        report.rows += 1
        key = subscriber.email.lower()
        row = (subscriber.email, key, subscriber.name, _fields_json(subscriber), status, now, now)
        yield _Entry(status, subscriber, key, row)


def _drop_forgotten(store: Store, chunk: list[_Entry], report: ImportReport) -> list[_Entry]:
    if store.db.execute("SELECT 1 FROM forgotten LIMIT 1").fetchone() is None:
        return chunk
    hashes = {store.forgotten_hash(entry.key): entry.key for entry in chunk}
    query = "SELECT email_hash FROM forgotten WHERE email_hash IN ({})"
    found = {hashes[digest] for (digest,) in store.select_in(query, list(hashes))}
    report.forgotten += sum(1 for entry in chunk if entry.key in found)
    return [entry for entry in chunk if entry.key not in found]


def _insert_new(store: Store, chunk: list[_Entry], source: str, report: ImportReport) -> set[str]:
    """Insert the chunk's addresses the store does not have, with their tags and an ``imported`` event each.

    The UNIQUE email_key decides (``ON CONFLICT DO NOTHING``); rows with an id above the largest before are
    the new ones (the write lock is held: nobody else inserts). Returns the addresses present before."""
    db = store.db
    now = utc_now()
    before = db.execute("SELECT coalesce(max(id), 0) FROM subscribers").fetchone()[0]
    insert_many(db, "INSERT INTO subscribers (email, email_key, name, fields, status, created, updated)",
                 [entry.row for entry in chunk], "ON CONFLICT (email_key) DO NOTHING")  # fmt: skip
    new = dict(db.execute("SELECT email_key, id FROM subscribers WHERE id > ?", (before,)))
    present = {entry.key for entry in chunk if entry.key not in new}
    if not new:
        return present
    db.execute(
        "INSERT INTO events (subscriber, at, kind, source, detail) SELECT id, ?, 'imported', 'import', ?"
        " FROM subscribers WHERE id > ?",
        (now, source, before),
    )
    insert_many(db, "INSERT INTO tags (subscriber, tag, tag_key)",
                 [(new[e.key], tag, tag.casefold()) for e in chunk if e.subscriber.tags and e.key in new
                  for tag in e.subscriber.tags],
                 "ON CONFLICT (subscriber, tag_key) DO NOTHING")  # fmt: skip
    # (a repeat of a new address in the chunk adds its tags too: harmless, and --update would anyway)
    store._touch()
    report.added += len(new)
    for status, count in db.execute("SELECT status, count(*) FROM subscribers WHERE id > ? GROUP BY status", (before,)):
        report.by_status[status] = report.by_status.get(status, 0) + count
    return present


def _apply_opt_outs(store: Store, chunk: list[_Entry], source: str, report: ImportReport) -> None:
    """Rows that say unsubscribed, bounced or complained, for an address still subscribed or unconfirmed."""
    for entry in chunk:
        if entry.status in SUPPRESSING and _move(store, entry, source):
            report.opted_out += 1


def _move(store: Store, entry: _Entry, source: str) -> bool:
    marks = ",".join("?" * len(MOVABLE))
    row = store.db.execute(
        f"UPDATE subscribers SET status = ?, updated = ? WHERE email_key = ? AND status IN ({marks}) RETURNING id",
        (entry.status, utc_now(), entry.key, *MOVABLE),
    ).fetchone()
    if row is None:
        return False
    store._touch()
    store._event(row[0], STATUS_EVENTS[entry.status], source="import", detail=f"{source}:{entry.subscriber.line}")
    return True


@dataclass
class _Present:
    id: int
    name: str
    fields: dict[str, str]
    status: str
    tags: set[str]


def _merge_present(
    store: Store, chunk: list[_Entry], existed: set[str], source: str, report: ImportReport, *, resubscribe: bool
) -> None:
    """--update: rows of addresses present before this chunk, and repeats within it, merge into the store."""
    firsts = {id(entry) for entry in _first_of_each(chunk)}
    merging = [entry for entry in chunk if entry.key in existed or id(entry) not in firsts]
    present = _load_present(store, {entry.key for entry in merging})
    for entry in merging:
        _merge(store, present[entry.key], entry, source, report, resubscribe=resubscribe)


def _load_present(store: Store, keys: set[str]) -> dict[str, _Present]:
    present: dict[str, _Present] = {}
    rows = store.select_in(
        "SELECT id, email_key, name, fields, status FROM subscribers WHERE email_key IN ({})", list(keys)
    )
    for id_, key, name, fields_json, status in rows:
        present[key] = _Present(id_, name, json.loads(fields_json), status, set())
    by_id = {p.id: p for p in present.values()}
    for subscriber, tag_key in store.select_in(
        "SELECT subscriber, tag_key FROM tags WHERE subscriber IN ({})", list(by_id)
    ):
        by_id[subscriber].tags.add(tag_key)
    return present


def _merge(store: Store, present: _Present, entry: _Entry, source: str, report: ImportReport, *,
           resubscribe: bool) -> None:  # fmt: skip
    """Merge one row into a present subscriber (and into ``present``, for later rows of the same address)."""
    subscriber, detail = entry.subscriber, f"{source}:{entry.subscriber.line}"
    name = subscriber.name or present.name
    fields = {**present.fields, **_stored_fields(subscriber)}
    tags = [tag for tag in subscriber.tags if tag.casefold() not in present.tags]
    status = _merged_status(present.status, entry.status, resubscribe=resubscribe)
    if entry.status == "subscribed" and present.status in SUPPRESSING and status != "subscribed":
        report.kept_suppressed += 1
    if status != present.status:
        store.db.execute("UPDATE subscribers SET status = ?, updated = ? WHERE id = ?", (status, utc_now(), present.id))
        store._event(present.id, STATUS_EVENTS[status], source="import", detail=detail)
        if status in SUPPRESSING:
            report.opted_out += 1
        present.status = status
        store._touch()
    if name != present.name or fields != present.fields or tags:
        store.db.execute("UPDATE subscribers SET name = ?, fields = ?, updated = ? WHERE id = ?",
                         (name, dump_fields(fields), utc_now(), present.id))  # fmt: skip
        store._add_tags(present.id, tags)
        store._event(present.id, "updated", source="import", detail=detail)
        present.name, present.fields = name, fields
        present.tags.update(tag.casefold() for tag in tags)
        report.updated += 1
        store._touch()


def _merged_status(old: str, new: str, *, resubscribe: bool) -> str:
    if new in SUPPRESSING:
        return new if old in MOVABLE else old
    if new == "subscribed" and (old == "unconfirmed" or (old in SUPPRESSING and resubscribe)):
        return "subscribed"
    return old


def _first_of_each(chunk: Iterable[_Entry]) -> Iterator[_Entry]:
    """The first entry of each address in the chunk (the one an insert keeps)."""
    seen: set[str] = set()
    for entry in chunk:
        if entry.key not in seen:
            seen.add(entry.key)
            yield entry


def _stored_fields(subscriber: Subscriber) -> dict[str, str]:
    """What the store keeps as fields: the non-empty extra columns, and first_name when it is not the name's
    first word (an empty cell never erases a field on --update)."""
    fields = {k: v for k, v in subscriber.fields.items() if v and k not in ("email", "name", "first_name")}
    if subscriber.first_name and subscriber.first_name != (subscriber.name.split() or [""])[0]:
        fields["first_name"] = subscriber.first_name
    return fields


def _fields_json(subscriber: Subscriber) -> str:
    fields = _stored_fields(subscriber)
    return dump_fields(fields) if fields else "{}"


def _chunks(items: Iterable[_Entry], size: int) -> Iterator[list[_Entry]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
