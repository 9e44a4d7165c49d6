"""serve in this process over real HTTP: a one-click is recorded once, however many arrive at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from support.serve import SECRET, configure, free_port, serving

from broadsheet.config import Config, load_config
from broadsheet.serve.app import App, make_app
from broadsheet.serve.security import RateLimit
from broadsheet.store import Store
from broadsheet.tokens import make_token


@pytest.fixture
def config(project: Path, monkeypatch) -> Config:
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    monkeypatch.delenv("BROADSHEET_SECRET_PREVIOUS", raising=False)
    configure(project, free_port())
    return load_config(project / "broadsheet.toml")


@contextmanager
def served(app: App, config: Config) -> Iterator[str]:
    with serving(app, config, int(config.serve.public_url.rsplit(":", 1)[1])):
        yield config.serve.public_url


def test_one_clicks_racing_for_one_address_record_one_unsubscribe(config):
    """Two clients post the same one-click at once, round after round: one event each round, never two."""
    rounds, address = 40, "racer@example.org"
    config = replace(config, serve=replace(config.serve, threads=4))
    with Store.for_project(config.root) as store:
        store.add(address)
    app = make_app(config)
    app.one_clicks = app.one_clicks_per_address = RateLimit(10 * rounds, 10 * rounds)
    url = f"{config.serve.public_url}/u/{make_token('unsubscribe', address, config.list_id, SECRET)}"
    start, done = threading.Barrier(3), threading.Barrier(3)
    answers: list[int] = []

    def client() -> None:
        session = requests.Session()
        for _ in range(rounds):
            start.wait(timeout=30)
            answers.append(session.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10).status_code)
            done.wait(timeout=30)

    with served(app, config), Store.for_project(config.root) as store:
        clients = [threading.Thread(target=client) for _ in range(2)]
        for thread in clients:
            thread.start()
        for _ in range(rounds):
            store.set_status(address, "subscribed", source="cli", resubscribe=True)
            start.wait(timeout=30)
            done.wait(timeout=30)
        for thread in clients:
            thread.join(timeout=30)
        kinds = [event.kind for event in store.events(address)]
    assert answers == [200] * 2 * rounds
    assert kinds.count("unsubscribed") == rounds and kinds.count("subscribed") == rounds
