"""serve's group commit over real HTTP (waitress): concurrent one-clicks each recorded once, answered only
once committed; a group whose commit fails answers each of its requests with the error page; stopping serve
(SIGTERM) records what it has queued, and no request answered 200 goes unrecorded."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from support.ports import free_port, take
from support.serve import SECRET, configure, serve_process, serving
from waitress import wasyncore

from broadsheet.core.config import Config, load_config
from broadsheet.core.tokens import make_token
from broadsheet.data.store import Store
from broadsheet.faces.serve.app import make_app
from broadsheet.faces.serve.loop import OneClicks
from broadsheet.faces.serve.security import RateLimit
from broadsheet.faces.serve.server import create
from broadsheet.faces.serve.texts import EN

GMAIL_BOUNDARY = "000000000000c0ffee0123456789"
ERROR_TITLE = EN["error_title"]


@pytest.fixture
def config(project: Path, monkeypatch) -> Config:
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    monkeypatch.delenv("BROADSHEET_SECRET_PREVIOUS", raising=False)
    configure(project, free_port(), "threads = 8\n")
    return load_config(project / "broadsheet.toml")


def one_click(base: str, config: Config, address: str, *, multipart: bool = False) -> requests.Response:
    """The one-click POST as providers send it: RFC 8058's urlencoded body, or Gmail's multipart one."""
    url = f"{base}/u/{make_token('unsubscribe', address, config.list_id, SECRET)}"
    if multipart:
        body = (
            f'--{GMAIL_BOUNDARY}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            f"One-Click\r\n--{GMAIL_BOUNDARY}--\r\n"
        ).encode()
        kind = f"multipart/form-data; boundary={GMAIL_BOUNDARY}"
    else:
        body, kind = b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"
    return requests.post(url, data=body, headers={"Content-Type": kind}, timeout=30)


def unlimited(app) -> None:
    """No per-client or per-link limit: every request here comes from 127.0.0.1."""
    app.one_clicks = app.one_clicks_per_address = RateLimit(100_000, 100_000)


def app_for(config: Config, readers: list[str]):
    """serve's app, with no rate limit, over the store with ``readers`` added."""
    with Store.for_project(config.root) as store:
        for address in readers:
            store.add(address)
    app = make_app(config)
    unlimited(app)
    return app


def hold_writer(app, pool: ThreadPoolExecutor) -> tuple[threading.Event, Future[None]]:
    """Keep the app's store writer inside a group (a job waiting) until the event returned is set; the job's
    future."""
    inside, go = threading.Event(), threading.Event()

    def hold(store: Store) -> None:
        inside.set()
        assert go.wait(20)

    held = pool.submit(app.writer.submit, hold)
    assert inside.wait(20)
    return go, held


def wait_queued(app, jobs: int) -> int:
    """Wait (20 s at most) until ``jobs`` wait in the app's store writer's queue; how many do."""
    deadline = time.monotonic() + 20
    while app.writer._queue.qsize() < jobs and time.monotonic() < deadline:
        time.sleep(0.01)
    return app.writer._queue.qsize()


def test_many_concurrent_one_clicks_are_each_recorded_exactly_once(config):
    readers = [f"reader{n:03d}@example.org" for n in range(150)]
    app = app_for(config, readers)
    posts = [(address, n % 3 == 0) for n, address in enumerate(readers)] + [(a, False) for a in readers[:30]]
    port = int(config.serve.public_url.rsplit(":", 1)[1])
    with serving(app, config, port), ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(
            pool.map(lambda post: one_click(config.serve.public_url, config, post[0], multipart=post[1]), posts)
        )
    assert {(answer.status_code, answer.text) for answer in answers} == {(200, "unsubscribed\n")}
    with Store.for_project(config.root) as store:
        assert store.count("unsubscribed") == len(readers)
        for address in readers:
            assert [(e.kind, e.source) for e in store.events(address)] == [
                ("added", "cli"),
                ("unsubscribed", "one-click"),
            ]


def test_a_group_whose_commit_fails_answers_each_of_its_one_clicks_with_the_error_page(config):
    """The writer is kept inside one group while a job that leaves a deferred foreign key broken (SQLite
    refuses the COMMIT) and six one-clicks queue up behind it: they form the next group, whose COMMIT fails,
    so each of the six is answered 500, and none is recorded. The next one-click is recorded again."""
    readers = [f"failing{n}@example.org" for n in range(6)]
    with Store.for_project(config.root) as store:
        for address in [*readers, "after@example.org"]:
            store.add(address)
    app = make_app(config)
    unlimited(app)

    def breaks_the_commit(store: Store) -> None:
        store.db.execute("PRAGMA defer_foreign_keys = ON")
        store.db.execute("INSERT INTO events (subscriber, at, kind, source) VALUES (999999, 'now', 'x', 'x')")

    base = config.serve.public_url
    with serving(app, config, int(base.rsplit(":", 1)[1])), ThreadPoolExecutor(max_workers=8) as pool:
        go, held = hold_writer(app, pool)
        broken = pool.submit(app.writer.submit, breaks_the_commit)
        answers = [pool.submit(one_click, base, config, address) for address in readers]
        wait_queued(app, 1 + len(readers))
        go.set()
        held.result(timeout=20)
        with pytest.raises(Exception, match="FOREIGN KEY"):
            broken.result(timeout=20)
        pages = [answer.result(timeout=30) for answer in answers]
        after = one_click(base, config, "after@example.org")
    assert [page.status_code for page in pages] == [500] * len(readers)
    assert len({page.text for page in pages}) == 1 and ERROR_TITLE in pages[0].text  # serve's error page
    assert after.status_code == 200
    with Store.for_project(config.root) as store:
        assert {store.get(address).status for address in readers} == {"subscribed"}
        assert store.get("after@example.org").status == "unsubscribed"


def test_stopping_serve_records_what_it_queued_and_every_200_was_recorded(project):
    """One-clicks from many clients while serve gets SIGTERM: whatever was answered 200 is in the store,
    once (a request cut off may be recorded without its answer; never the other way round)."""
    readers = [f"stopping{n:03d}@example.org" for n in range(400)]
    with Store.for_project(project) as store, store.grouped():
        for address in readers:
            store.add(address)
    list_id = "newsletter.bcecc.example.org"
    answered: list[str] = []
    lock = threading.Lock()

    def client(base: str, mine: list[str]) -> None:
        session = requests.Session()
        for n, address in enumerate(mine):
            url = f"{base}/u/{make_token('unsubscribe', address, list_id, SECRET)}"
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": f"10.0.{n}.{len(mine)}"}
            try:
                answer = session.post(url, data=b"List-Unsubscribe=One-Click", headers=headers, timeout=10)
            except requests.RequestException:
                return  # serve is gone
            if answer.status_code == 200:
                with lock:
                    answered.append(address)

    with serve_process(project, extra_config="threads = 8\n") as base:
        clients = [threading.Thread(target=client, args=(base, readers[n::20])) for n in range(20)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 30
        while len(answered) < 40 and time.monotonic() < deadline:
            time.sleep(0.005)
    for thread in clients:
        thread.join(30)
    assert answered  # some were answered before serve stopped
    with Store.for_project(project) as store:
        for address in answered:
            assert store.get(address).status == "unsubscribed", address
        one_clicks = store.db.execute("SELECT subscriber, count(*) FROM events WHERE source = 'one-click' GROUP BY 1")
        assert {count for _, count in one_clicks} == {1}


def raw_one_click(config: Config, address: str, *, close: bool = False) -> bytes:
    """A one-click as raw HTTP/1.1 bytes (``close``: asking serve to close the connection after it)."""
    token = make_token("unsubscribe", address, config.list_id, SECRET)
    host = config.serve.public_url.removeprefix("http://")
    return (
        f"POST /u/{token} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: 26\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        "List-Unsubscribe=One-Click"
    ).encode()


def exchange(config: Config, data: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """Send ``data`` on one connection and read until serve closes it: each answer's status line, headers
    and body (Content-Length long)."""
    port = int(config.serve.public_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    answers = []
    while received:
        head, _, received = received.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        length = int(headers["Content-Length"])
        answers.append((status, headers, received[:length]))
        received = received[length:]
    return answers


def test_a_one_click_answered_from_the_event_loop_gets_the_answer_the_app_gives(config):
    """The first one-click keeps its connection open, so the event loop answers it (no request thread); the
    second asks for the connection to be closed, which waitress's threads and the WSGI app answer: the same
    status, headers and body, Connection: close and the date aside. The healthz between goes to the app."""
    with Store.for_project(config.root) as store:
        store.add("loop@example.org")
    app = make_app(config)
    healthz = f"GET /healthz HTTP/1.1\r\nHost: {config.serve.public_url.removeprefix('http://')}\r\n\r\n".encode()
    with serving(app, config, int(config.serve.public_url.rsplit(":", 1)[1])):
        answers = exchange(
            config,
            raw_one_click(config, "loop@example.org") + healthz + raw_one_click(config, "app@example.org", close=True),
        )
    (loop, loop_headers, loop_body), (ok, _, ok_body), (threads, app_headers, app_body) = answers
    assert (loop, loop_body, ok, ok_body) == ("HTTP/1.1 200 OK", b"unsubscribed\n", "HTTP/1.1 200 OK", b"ok\n")
    assert (threads, app_body, app_headers.pop("Connection")) == ("HTTP/1.1 200 OK", b"unsubscribed\n", "close")
    assert loop_headers.pop("Date") and app_headers.pop("Date")
    assert loop_headers == app_headers
    assert list(loop_headers) == sorted(loop_headers)  # in waitress's order
    with Store.for_project(config.root) as store:
        assert store.get("loop@example.org").status == "unsubscribed"
        assert store.get("app@example.org").status == "unsubscribed"  # a one-click for an address not kept: kept


def test_one_clicks_wait_for_their_commit_without_holding_a_request_thread(project, monkeypatch):
    """With one request thread, ten one-clicks all reach the store's writer while it is held in a group:
    none holds the thread while it waits. None is answered before its group is committed; then each is
    answered 200 and recorded, once."""
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    configure(project, free_port(), "threads = 1\n")
    config = load_config(project / "broadsheet.toml")
    readers = [f"waiting{n}@example.org" for n in range(10)]
    app = app_for(config, readers)
    base = config.serve.public_url
    with serving(app, config, int(base.rsplit(":", 1)[1])), ThreadPoolExecutor(max_workers=11) as pool:
        go, held = hold_writer(app, pool)
        answers = [pool.submit(one_click, base, config, address) for address in readers]
        assert wait_queued(app, len(readers)) == len(readers)
        assert not any(answer.done() for answer in answers)
        go.set()
        held.result(timeout=20)
        assert {(answer.result(timeout=30).status_code, answer.result().text) for answer in answers} == {
            (200, "unsubscribed\n")
        }
    with Store.for_project(config.root) as store:
        for address in readers:
            assert [(e.kind, e.source) for e in store.events(address)] == [
                ("added", "cli"),
                ("unsubscribed", "one-click"),
            ]


def test_a_one_click_that_fails_in_the_event_loop_gets_the_error_page_and_the_loop_goes_on(config):
    app = make_app(config)

    def broken(purpose: str, token: str) -> None:
        raise RuntimeError("broken token check")

    app.read = broken  # type: ignore[method-assign]
    base = config.serve.public_url
    with serving(app, config, int(base.rsplit(":", 1)[1])):
        failed = one_click(base, config, "broken@example.org")
        alive = requests.get(f"{base}/healthz", timeout=10)
    assert failed.status_code == 500 and ERROR_TITLE in failed.text
    assert (alive.status_code, alive.text) == (200, "ok\n")


def test_ctrl_c_while_the_loop_sends_one_click_answers_stops_the_server(config, monkeypatch):
    """A Ctrl-C (SIGTERM) that lands while the event loop sends the one-clicks' answers stops serve's loop
    (in a callback of waitress's trigger, which swallows whatever they raise, it would not)."""

    def interrupted(channel, request, data: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(OneClicks, "send", staticmethod(interrupted))
    app = make_app(config)
    port = int(config.serve.public_url.rsplit(":", 1)[1])
    server = create(app, config, host="127.0.0.1", port=port, sock=take(port))
    thread = threading.Thread(target=server.run, daemon=True)  # returns on Ctrl-C (waitress's own)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(raw_one_click(config, "interrupted@example.org"))
            thread.join(20)
            assert not thread.is_alive()
    finally:
        thread.join(10)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)  # type: ignore[attr-defined]
        app.close()
