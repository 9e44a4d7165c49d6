"""serve on a subscriber store in PostgreSQL (``[database] url``): a sign-up over HTTP applied and mailed by its
mailing thread, a one-click unsubscribe recorded once; nothing written to SQLite."""

from __future__ import annotations

import requests
from support.ports import free_port
from support.serve import SECRET, configure, serving
from test_serve_intake import mailed, sign_up

from broadsheet.core.config import load_config
from broadsheet.core.tokens import make_token
from broadsheet.data.store import Store
from broadsheet.faces.serve.app import make_app


def test_serve_takes_sign_ups_and_one_clicks_into_postgresql(project, postgres_url, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    monkeypatch.delenv("BROADSHEET_SECRET_PREVIOUS", raising=False)
    configure(project, free_port(), "threads = 2\n")
    path = project / "broadsheet.toml"
    path.write_text(path.read_text(encoding="utf-8") + f'\n[database]\nurl = "{postgres_url}"\n', encoding="utf-8")
    config = load_config(path)
    with Store(postgres_url) as store:
        store.add("ann@example.org")
    with serving(make_app(config), config, int(config.serve.public_url.rsplit(":", 1)[1])):
        base = config.serve.public_url
        assert sign_up(base, "new-reader@example.org").status_code == 200
        token = make_token("unsubscribe", "ann@example.org", config.list_id, SECRET)
        for _ in range(2):  # a repeat records nothing
            answer = requests.post(f"{base}/u/{token}", data="List-Unsubscribe=One-Click", timeout=10,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
            assert answer.status_code == 200
    assert mailed(config) == ["new-reader@example.org"]  # stopping waited for the mailing thread's round
    with Store(postgres_url) as store:
        assert store.get("new-reader@example.org").status == "unconfirmed"
        assert store.get("ann@example.org").status == "unsubscribed"
        assert [e.kind for e in store.events("ann@example.org")] == ["added", "unsubscribed"]
        assert store.waiting_sign_ups(10) == []
    assert not (project / ".broadsheet" / "audience.db").exists()
