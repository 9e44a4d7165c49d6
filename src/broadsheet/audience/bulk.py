"""Moving a long list into SQLite fast: rows read ahead in a second thread, written many to a statement.

Used by the journal's set-up and the store's import (one home for both). SQLite works without the GIL,
so while one thread writes a chunk the other reads and validates the next: the two overlap on two
cores. Memory stays flat: at most ``AHEAD`` chunks wait.
"""

from __future__ import annotations

import itertools
import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

ROWS_PER_STATEMENT = 100  # rows in one INSERT's VALUES list (100 × 7 parameters, well under SQLite's limit)
AHEAD = 2  # chunks read ahead at most

T = TypeVar("T")


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


def read_ahead(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in chunks of ``size``, produced by a second thread while the caller works on the last one.

    An exception in the producer is raised here, at the chunk where it happened; a caller that stops
    early (or fails) stops the producer at its next chunk."""
    chunks: queue.Queue[tuple[list[T], BaseException | None]] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def produce() -> None:
        iterator = iter(items)
        try:
            while not stop.is_set():
                chunk = list(itertools.islice(iterator, size))
                _put(chunks, stop, (chunk, None))
                if not chunk:
                    return
        except BaseException as exc:  # raised in the consuming thread
            _put(chunks, stop, ([], exc))

    thread = threading.Thread(target=produce, name="broadsheet-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            chunk, error = chunks.get()
            if error is not None:
                raise error
            if not chunk:
                return
            yield chunk
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to put, then let it finish
            try:
                chunks.get(timeout=0.05)
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
