"""One home for SQLite: every connection is opened by broadsheet.data.db, and today's files migrate whole."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from broadsheet.data.journal.file import SCHEMA_VERSION as JOURNAL_VERSION
from broadsheet.data.journal.journal import Journal
from broadsheet.data.store import Store
from broadsheet.data.store.schema import SCHEMA_VERSION as STORE_VERSION

DATA = Path(__file__).resolve().parent / "data"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "broadsheet"


def rows(path: Path, table: str, columns: str = "*") -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)  # noqa: S608 (ours)
    finally:
        db.close()


def columns(path: Path, table: str) -> str:
    db = sqlite3.connect(path)
    try:
        return ", ".join(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
    finally:
        db.close()


def test_only_the_db_package_calls_sqlite3_connect() -> None:
    callers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"sqlite3\.connect\(", path.read_text(encoding="utf-8"))
    }
    assert callers == {"data/db/connect.py"}


def test_a_journal_written_by_the_broadsheet_of_today_opens_with_every_row(tmp_path: Path) -> None:
    path = tmp_path / ".broadsheet" / "state.db"
    path.parent.mkdir()
    shutil.copy(DATA / "journal-v4.db", path)
    before = {table: rows(path, table) for table in ("campaigns", "recipients", "meta")}
    old = {table: columns(path, table) for table in before}  # later schemas add columns (workers' leases)
    with Journal(path) as journal:
        [campaign] = journal.campaigns_for(before["campaigns"][0][1])
        assert journal.counts(campaign)["sent"] == 9
        assert journal.uid == dict((row[0], row[1]) for row in before["meta"])["uid"]
        assert journal.workers(campaign) == []
    assert {table: rows(path, table, old[table]) for table in before} == before
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == JOURNAL_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_store_written_by_the_broadsheet_of_today_migrates_with_every_row(tmp_path: Path) -> None:
    path = tmp_path / "audience.db"
    shutil.copy(DATA / "store-v2.db", path)
    tables = ("subscribers", "tags", "events", "forgotten", "intake")
    before = {table: rows(path, table) for table in tables}
    meta = dict(rows(path, "meta"))
    assert meta["schema_version"] == "2" and len(before["subscribers"]) == 4 and before["intake"]
    with Store(path) as store:
        ann = store.get("ann@example.org")
        assert ann is not None and ann.fields == {"city": "Leuven"} and set(ann.tags) == {"news", "art"}
        assert [s.status for s in store.subscribers()] == ["subscribed", "unsubscribed", "bounced", "unconfirmed"]
        assert [w.email for w in store.waiting_sign_ups(5)] == ["dee@example.org"]
        assert store.revision() == int(meta["revision"])
    assert {table: rows(path, table) for table in tables} == before
    after = dict(rows(path, "meta"))
    assert after == {name: value for name, value in meta.items() if name != "schema_version"}  # the key kept
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == STORE_VERSION
    db.execute("BEGIN IMMEDIATE")  # migrated once: it opens again without writing
    try:
        Store(path).close()
    finally:
        db.execute("ROLLBACK")
