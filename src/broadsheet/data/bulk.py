"""Moving a long list into SQLite fast: read ahead in a second thread, parked in a staging table, then
moved into the real table in its unique index's order.

Used by the journal's set-up and the store's import (one home for both). SQLite works without the GIL,
so while one thread writes a chunk the other reads and validates the next: the two overlap on two
cores. Memory stays flat: at most ``AHEAD`` chunks wait. A list in no order inserted straight into a
table with a unique index costs a random B-tree descent (and, past the page cache, a read) per row;
appended to an index-free staging table and moved with one ``INSERT … SELECT … ORDER BY`` key, the
index is filled from SQLite's external sort, front to back.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import queue
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .db import attached_uri

ROWS_PER_STATEMENT = 100  # rows in one INSERT's VALUES list (100 × 7 parameters, well under SQLite's limit)
AHEAD = 2  # chunks read ahead at most
FILL_ROWS = 5_000  # rows at least in one transaction of ``Staging.fill`` (small chunks are joined)
STALE_AFTER = 24 * 3600  # seconds: a staging folder untouched this long was left by a killed process
STAGING_CACHE_KIB = 4_096  # the staging file's page cache: it is only appended to
STAGING_PAGE_BYTES = 65_536  # its pages: written and read front to back, fewer and larger are cheaper

T = TypeVar("T")
Row = TypeVar("Row", bound=Sequence[Any])


def insert_many(db: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """``head VALUES (…), (…), … tail`` with ROWS_PER_STATEMENT rows a statement: about twice as fast as one
    row a statement, and the GIL is handed over once per statement instead of once per row (the rows go
    in, in order; ON CONFLICT still applies row by row)."""
    if not rows:
        return
    one = "(" + ",".join("?" * len(rows[0])) + ")"
    full = len(rows) - len(rows) % ROWS_PER_STATEMENT
    if full:
        flat = list(itertools.chain.from_iterable(rows[:full]))
        size = len(rows[0]) * ROWS_PER_STATEMENT
        db.executemany(f"{head} VALUES {','.join([one] * ROWS_PER_STATEMENT)} {tail}",
                       [flat[start : start + size] for start in range(0, len(flat), size)])  # fmt: skip
    if full < len(rows):
        db.executemany(f"{head} VALUES {one} {tail}", rows[full:])


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a list streams through: the rows make no cycles, yet their
    millions of short-lived lists, dicts and tuples would set it off every 700 allocations, each time
    walking every young object: a noticeable share of the reading's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def joined(chunks: Iterable[list[T]], size: int) -> Iterator[list[T]]:
    """The items of ``chunks`` in lists of at least ``size`` (the last one shorter): consecutive chunks joined."""
    gathered: list[T] = []
    for chunk in chunks:
        gathered += chunk
        if len(gathered) >= size:
            yield gathered
            gathered = []
    if gathered:
        yield gathered


def read_ahead(chunks: Iterable[list[T]]) -> Iterator[list[T]]:
    """The same chunks, produced by a second thread while the caller works on the last one.

    An exception in the producer is raised here, at the chunk where it happened; a caller that stops
    early (or fails) stops the producer at its next chunk."""
    queued: queue.Queue[tuple[list[T] | None, BaseException | None]] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                _put(queued, stop, (chunk, None))
            _put(queued, stop, (None, None))
        except BaseException as exc:  # raised in the consuming thread
            _put(queued, stop, (None, exc))

    thread = threading.Thread(target=produce, name="broadsheet-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            chunk, error = queued.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to put, then let it finish
            try:
                queued.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def _put(chunks: queue.Queue[Any], stop: threading.Event, item: Any) -> None:
    while not stop.is_set():
        try:
            chunks.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


@contextlib.contextmanager
def attached(
    db: sqlite3.Connection, files: Sequence[Path], names: Sequence[str] = (), *, read_only: bool = False
) -> Iterator[list[str]]:
    """``files`` attached to ``db`` as ``names`` (by default part0, part1, …; the names given), each detached on
    leaving (one whose ATTACH failed or was interrupted is skipped: the first error stays the one raised).
    ``read_only`` (``db`` opened with ``uri=True``): nothing through ``db`` can write them, and a write
    transaction of ``db`` (BEGIN IMMEDIATE) takes no write lock on them."""
    names = list(names) or [f"part{number}" for number in range(len(files))]
    try:
        for name, file in zip(names, files, strict=True):
            where = attached_uri(file) if read_only else str(file)
            db.execute(f"ATTACH DATABASE ? AS {name}", (where,))
        yield names
    finally:
        for name in names:
            with contextlib.suppress(sqlite3.Error):
                db.execute(f"DETACH DATABASE {name}")


def staging_folder(folder: Path) -> Path:
    """A new folder for staging files in ``folder`` (``.staging-*``, removed by whoever made it). Ones left
    there by a process that was killed (untouched for STALE_AFTER) are removed first."""
    for old in folder.glob(".staging-*"):
        try:
            if time.time() - old.stat().st_mtime > STALE_AFTER:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # gone meanwhile
            continue
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))


class Staging:
    """An index-free table ``staging.rows (columns)`` in a temporary SQLite file beside ``db``'s own
    (never in RAM: it holds the whole list), attached to ``db`` so that one ``INSERT … SELECT`` moves the
    rows. ``fill`` appends rows in read order (``rowid`` is that order); leaving the context (or
    ``close``) detaches and removes the file. Call outside a transaction of ``db``."""

    TABLE = "staging.rows"

    def __init__(self, db: sqlite3.Connection, folder: Path, columns: Sequence[str]):
        self.db = db
        self.columns = list(columns)
        self._folder = staging_folder(folder)
        db.execute("ATTACH DATABASE ? AS staging", (str(self._folder / "rows.db"),))
        try:
            pragmas = (
                f"page_size={STAGING_PAGE_BYTES}",
                "journal_mode=OFF",
                "synchronous=OFF",
                f"cache_size={-STAGING_CACHE_KIB}",
            )
            for pragma in pragmas:  # (the page size first: it is set before the file's first page is written)
                db.execute(f"PRAGMA staging.{pragma}")
            db.execute(f"CREATE TABLE {self.TABLE} ({', '.join(self.columns)})")
        except BaseException:
            self.close()
            raise

    def fill(self, chunks: Iterable[list[Row]], then: Callable[[], object] = lambda: None) -> int:
        """Append the rows of ``chunks`` (read ahead in a second thread); returns how many. Only the
        staging file is locked meanwhile: the real database stays free for other writers. ``then`` runs
        in each transaction after its rows (the caller's other staging tables filled alongside)."""
        count = 0
        head = f"INSERT INTO {self.TABLE} ({', '.join(self.columns)})"
        with collector_paused():
            for chunk in read_ahead(joined(chunks, FILL_ROWS)):
                self.db.execute("BEGIN")  # deferred: takes the staging file's lock only
                try:
                    insert_many(self.db, head, chunk)
                    then()
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.db.execute("COMMIT")
                count += len(chunk)
        return count

    def close(self) -> None:
        try:
            self.db.execute("DETACH DATABASE staging")
        except sqlite3.Error:
            pass  # not attached (a failed start), or the connection is gone: the file goes anyway
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
