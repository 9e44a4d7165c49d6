"""serve in this process over real HTTP: a sign-up is in the store before its answer, by the same statements
whatever the address, and is mailed once even when serve stopped first; a one-click is recorded once."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from support.ports import free_port
from support.serve import SECRET, configure, serving
from test_store import age_mails

from broadsheet.core.audience.addresses import mailbox_of
from broadsheet.core.config import Config, load_config
from broadsheet.core.tokens import make_token
from broadsheet.data.store import Store, store_path
from broadsheet.data.store import group as group_module
from broadsheet.faces.serve import app as app_module
from broadsheet.faces.serve.app import App, make_app
from broadsheet.faces.serve.security import RateLimit

STATES = ("new", "unconfirmed", "subscribed", "unsubscribed", "complained")


@pytest.fixture
def config(project: Path, monkeypatch) -> Config:
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    monkeypatch.delenv("BROADSHEET_SECRET_PREVIOUS", raising=False)
    configure(project, free_port(), "threads = 1\nsignups_per_minute = 100\nsignups_per_hour = 1000\n")
    return load_config(project / "broadsheet.toml")


@contextmanager
def served(app: App, config: Config) -> Iterator[str]:
    with serving(app, config, int(config.serve.public_url.rsplit(":", 1)[1])):
        yield config.serve.public_url


def addresses_in(config: Config, prefix: str) -> dict[str, str]:
    """An address per state, the store holding each as its state says."""
    addresses = {state: f"{prefix}-{state}@example.org" for state in STATES}
    with Store.for_project(config.root) as store:
        store.sign_up(addresses["unconfirmed"])
        for state in ("subscribed", "unsubscribed", "complained"):
            store.add(addresses[state], status=state)
    return addresses


def sign_up(base: str, address: str) -> requests.Response:
    web = requests.Session()
    token = re.search(r'name="form" value="([^"]+)"', web.get(f"{base}/subscribe", timeout=10).text)[1]
    return web.post(f"{base}/subscribe", data={"form": token, "email": address, "name": "New Reader"}, timeout=10)


def mailed(config: Config) -> list[str]:
    return sorted(path.name.split("-", 1)[1].removesuffix(".eml") for path in (config.root / "outbox").rglob("*.eml"))


def waiting(config: Config) -> list[str]:
    with Store.for_project(config.root) as store:
        return [one.email for one in store.waiting_sign_ups(100)]


def test_a_sign_up_is_committed_before_its_answer_by_the_same_statements_whatever_the_address(config, monkeypatch):
    """Enumeration by timing: the request (its thread, and the store's writer committing it) runs one INSERT
    into the intake for every address, and looks nothing up about it; the mailing thread applies it after."""
    statements: list[tuple[str, str]] = []

    class TracedStore(Store):
        def __init__(self, path: Path):
            super().__init__(path)
            self.db.set_trace_callback(lambda sql: statements.append((threading.current_thread().name, sql)))

    monkeypatch.setattr(app_module, "Store", TracedStore)
    monkeypatch.setattr(group_module, "Store", TracedStore)
    addresses = addresses_in(config, "traced")
    app = make_app(config)
    with served(app, config) as base:
        assert sign_up(base, "traced-warm-up@example.org").status_code == 200  # the thread opens its Store
        traces, pages = {}, {}
        for state, address in addresses.items():
            statements.clear()
            pages[state] = sign_up(base, address)
            traces[state] = [
                re.sub(r"'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'", "NOW", sql.replace(address, "ADDRESS"))
                for thread, sql in statements
                if thread.startswith(("waitress", "broadsheet-store-writer"))
            ]
    assert {page.status_code for page in pages.values()} == {200}
    assert len({page.text.replace(addresses[state], "ADDRESS") for state, page in pages.items()}) == 1
    assert all(trace == traces["new"] for trace in traces.values()), traces
    assert [sql for sql in traces["new"] if "intake" in sql] == [
        "INSERT INTO intake (email, name, source, at) SELECT 'ADDRESS', 'New Reader', 'form', NOW"
        " WHERE (SELECT count(*) FROM intake) < 1000"
    ]
    assert not any("subscribers" in sql or "forgotten" in sql for sql in traces["new"])
    assert traces["new"][-1] == "COMMIT"  # committed before the answer
    assert mailed(config) == sorted([addresses["new"], addresses["unconfirmed"], addresses["unsubscribed"],
                                     "traced-warm-up@example.org"])  # fmt: skip


def test_a_sign_up_answered_while_serve_stops_is_mailed_once_by_the_next_serve(config):
    app = make_app(config)
    with served(app, config) as base:
        app.mail.close()  # serve began to stop: its mailing thread is gone, its requests are still answered
        assert sign_up(base, "late-reader@example.org").status_code == 200
    for _ in range(2):  # the next serve applies and mails it when it starts; the one after finds nothing to do
        with served(make_app(config), config):
            pass  # stopping waits for the mailing thread's round
    assert mailed(config) == ["late-reader@example.org"] and waiting(config) == []
    with Store.for_project(config.root) as store:
        assert store.get("late-reader@example.org").status == "unconfirmed"
        assert [e.kind for e in store.events("late-reader@example.org")] == ["signed_up"]


@pytest.mark.parametrize("why", ["store held by another program", "intake full"])
def test_a_sign_up_the_store_cannot_take_is_a_503_the_same_for_every_address(config, monkeypatch, why):
    addresses = addresses_in(config, "refused")
    app = make_app(config)
    holder = sqlite3.connect(store_path(config.root), isolation_level=None)
    with served(app, config) as base:
        app.mail.close()  # nothing drains the intake meanwhile
        if why == "intake full":
            monkeypatch.setattr("broadsheet.faces.serve.signup.INTAKE_LIMIT", 2)
            assert [sign_up(base, f"early{n}@example.org").status_code for n in range(2)] == [200, 200]
        else:
            monkeypatch.setattr("broadsheet.data.store.store.BUSY_MS", 200)
            holder.execute("BEGIN IMMEDIATE")
        try:
            pages = {state: sign_up(base, address) for state, address in addresses.items()}
        finally:
            holder.close()
    assert {page.status_code for page in pages.values()} == {503}
    assert len({page.text for page in pages.values()}) == 1 and "Please try again" in pages["new"].text
    assert not set(addresses.values()) & set(waiting(config))


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


def test_two_serves_on_one_store_mail_an_inbox_no_more_often_than_one_would(config):
    """Two serve apps on one SQLite store, their budgets per mailbox in memory raised past the store's (as
    if there were many replicas): sign-ups for one inbox through both, minute after minute, are mailed once
    a minute and three times an hour."""
    other = replace(config, serve=replace(config.serve, public_url=f"http://127.0.0.1:{free_port()}"))
    apps = [make_app(config), make_app(other)]
    for app in apps:
        app.mails_per_address = RateLimit(100, 100)
    with served(apps[0], config) as one, served(apps[1], other) as two, Store.for_project(config.root) as store:
        for minute in range(4):
            bases = [one, two, one, two]
            answers = [sign_up(base, f"victim+{minute}.{n}@example.org") for n, base in enumerate(bases)]
            assert [answer.status_code for answer in answers] == [200] * len(bases)
            deadline = time.monotonic() + 30
            while store.db.execute("SELECT count(*) FROM intake").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
            age_mails(store, 61)
    assert len([address for address in mailed(config) if mailbox_of(address) == "victim@example.org"]) == 3
