"""audience.bulk: rows read ahead in a second thread, written many to a statement (real SQLite)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest

from broadsheet.core.errors import AudienceError
from broadsheet.data.bulk import ROWS_PER_STATEMENT, STALE_AFTER, chunked, insert_many, read_ahead, staging_folder


def test_read_ahead_hands_every_item_on_in_order_in_chunks():
    chunks = list(read_ahead(chunked(range(10), 4)))
    assert chunks == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(read_ahead(chunked([], 4))) == []


def test_an_error_while_reading_is_raised_to_the_consumer_after_the_rows_before_it():
    def rows() -> Iterator[int]:
        yield from range(5)
        raise AudienceError("bad list", where="list.csv:7")

    got: list[int] = []
    with pytest.raises(AudienceError, match="bad list"):
        for chunk in read_ahead(chunked(rows(), 2)):
            got.extend(chunk)
    assert got == [0, 1, 2, 3]  # the chunk with the error is not handed on half-read


def test_a_consumer_that_stops_early_stops_the_reader():
    produced: list[int] = []

    def rows() -> Iterator[int]:
        for n in range(1_000_000):
            produced.append(n)
            yield n

    before = threading.active_count()
    for _chunk in read_ahead(chunked(rows(), 10)):
        break
    assert threading.active_count() == before
    assert len(produced) < 100  # a few chunks ahead at most, never the whole list


def test_insert_many_writes_every_row_in_order_with_the_conflict_clause():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT UNIQUE, n INTEGER)")
    rows = [(f"k{i % 150}", i) for i in range(2 * ROWS_PER_STATEMENT + 7)]  # full statements and a tail
    insert_many(db, "INSERT INTO t (key, n)", rows, "ON CONFLICT (key) DO NOTHING")
    assert db.execute("SELECT key, n FROM t ORDER BY id").fetchall() == [(f"k{i}", i) for i in range(150)]


def test_a_staging_folder_left_by_a_killed_process_goes_with_the_next_one(tmp_path):
    left = tmp_path / ".staging-left"  # a day and more untouched: its maker was killed
    left.mkdir()
    (left / "rows.db").write_bytes(b"x" * 1000)
    recent = tmp_path / ".staging-running"  # another process's, still at work
    recent.mkdir()
    os.utime(left, (time.time() - STALE_AFTER - 60,) * 2)
    made = staging_folder(tmp_path)
    assert made.is_dir() and made.name.startswith(".staging-")
    assert not left.exists() and recent.is_dir()
