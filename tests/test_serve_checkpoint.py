"""serve's store commits never checkpoint inside a request; its own thread moves the WAL into the file."""

from __future__ import annotations

import sqlite3
import threading
import time
from itertools import pairwise
from pathlib import Path

import requests
from support.ports import free_port
from support.serve import serving

from broadsheet.core.config import load_config
from broadsheet.core.tokens import make_token
from broadsheet.data.db.checkpoint import Checkpointer, without_autocheckpoint
from broadsheet.data.db.connect import connect, use_wal
from broadsheet.data.store import Store, store_path
from broadsheet.faces.serve.app import make_app

CHANCES = 10  # checkpoints that find the WAL long, for one of them to start it over
SECRET = "checkpoint-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"


def test_one_click_is_checkpointed_by_serves_own_thread_not_by_the_request(tmp_path: Path, monkeypatch) -> None:
    port = free_port()
    config_file = tmp_path / "broadsheet.toml"
    config_file.write_text(
        f'list_id = "weekly.example.org"\n[serve]\npublic_url = "http://127.0.0.1:{port}"\n', encoding="utf-8"
    )
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    config = load_config(config_file)
    with Store.for_project(config.root) as store:
        store.add("leaver@example.net")
    database = store_path(config.root)
    app = make_app(config)
    app.checkpointer = Checkpointer(database, interval=0.05)
    with serving(app, config, port):
        token = make_token("unsubscribe", "leaver@example.net", "weekly.example.org", SECRET)
        answer = requests.post(f"http://127.0.0.1:{port}/u/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10)
        assert answer.status_code == 200
        deadline = time.monotonic() + 10
        while b"one-click" not in database.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"one-click" in database.read_bytes()  # the event reached the database file, not only the WAL
    assert app.store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    with Store.for_project(config.root) as store:
        assert store.get("leaver@example.net").status == "unsubscribed"


def test_a_wal_written_without_pause_is_started_over_once_it_is_long(tmp_path: Path) -> None:
    """A writer that never pauses overtakes every PASSIVE checkpoint, so the WAL (nearly always) only grows;
    with ``restart_frames``, within a few checkpoints of its passing that length, one finds it shorter than
    the one before: it was started over. The writer waits for the RESTART as the store's writers do, and
    none of its commits is lost."""
    path = tmp_path / "store.db"
    db = connect(path, wait=5.0)
    use_wal(db)
    without_autocheckpoint(db)
    db.execute("CREATE TABLE t (x BLOB)")
    lengths: list[int] = []
    stop = threading.Event()
    commits = 0

    class Counting(Checkpointer):
        def checkpoint(self, db: sqlite3.Connection) -> tuple[int, int]:
            frames, moved = super().checkpoint(db)
            lengths.append(frames)
            return frames, moved

    def write() -> None:
        nonlocal commits
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (randomblob(3000))")
            db.execute("COMMIT")
            commits += 1

    def after_long() -> list[int]:
        """The WAL's lengths from the first checkpoint that found it long, ``CHANCES`` of them at most."""
        seen = list(lengths)
        first = next((n for n, frames in enumerate(seen) if frames >= 200), len(seen))
        return seen[first : first + CHANCES]

    def started_over() -> bool:
        return any(later < earlier for earlier, later in pairwise(after_long()))

    writer = threading.Thread(target=write)
    checkpointer = Counting(path, interval=0.05, restart_frames=200)
    writer.start()
    checkpointer.start()
    deadline = time.monotonic() + 30
    while not started_over() and len(after_long()) < CHANCES and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    writer.join(10)
    checkpointer.stop()
    assert started_over(), after_long()
    assert db.execute("SELECT count(*) FROM t").fetchone() == (commits,)
    db.close()
