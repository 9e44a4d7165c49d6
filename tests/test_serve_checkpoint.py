"""serve's store commits never checkpoint inside a request; its own thread moves the WAL into the file."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from support.ports import free_port
from support.serve import serving

from broadsheet.core.config import load_config
from broadsheet.core.tokens import make_token
from broadsheet.data.db.checkpoint import Checkpointer
from broadsheet.data.store import Store, store_path
from broadsheet.faces.serve.app import make_app

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
