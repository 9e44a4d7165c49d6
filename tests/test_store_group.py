"""The store's group writer on real SQLite files: many callers' writes in one transaction, each caller let go
only once its write is committed; a failed commit fails every caller of its group; closing drains the queue."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from broadsheet.core.errors import StoreError
from broadsheet.data.store import GroupWriter, Store, Suppression, store_path


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return store_path(tmp_path)


def in_threads(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call in a thread of its own; their results (or exceptions), in order."""
    results: list[object] = [None] * len(calls)

    def run(n: int) -> None:
        try:
            results[n] = calls[n]()
        except Exception as exc:
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


class Held:
    """A job that keeps the writer inside its group until ``release`` (so the jobs submitted meanwhile
    queue up and form the next group), submitted from a thread of its own."""

    def __init__(self, writer: GroupWriter) -> None:
        self.writer, self.inside, self.go = writer, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=writer.submit, args=(self.job,))
        self.thread.start()
        assert self.inside.wait(10)

    def job(self, store: Store) -> None:
        self.inside.set()
        assert self.go.wait(10)

    def release(self) -> None:
        self.go.set()
        self.thread.join(10)


def wait_queued(writer: GroupWriter, count: int) -> None:
    deadline = time.monotonic() + 10
    while writer._queue.qsize() < count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert writer._queue.qsize() >= count


def one_group(writer: GroupWriter, calls: list[Callable[[], object]]) -> list[object]:
    """Each call in a thread of its own, submitted while a held job keeps the writer busy: they queue up and
    are written as one group once it lets go. Their results (or exceptions), in order."""
    held = Held(writer)
    results: list[object] = []
    runner = threading.Thread(target=lambda: results.extend(in_threads(calls)))
    runner.start()
    wait_queued(writer, len(calls))
    held.release()
    runner.join(30)
    return results


def test_suppress_all_writes_what_suppress_called_for_each_in_turn_writes(tmp_path: Path) -> None:
    """Subscribed, already unsubscribed, complained, bounced, forgotten, unconfirmed, unknown, an invalid
    address, and one address twice under two spellings."""
    suppressions = [
        Suppression("sub@example.org", "unsubscribed", "one-click", "issue-1"),
        Suppression("gone@example.org", "unsubscribed", "one-click"),
        Suppression("complained@example.org", "unsubscribed", "one-click"),
        Suppression("bounced@example.org", "complained", "webhook:x", "issue-2"),
        Suppression("forgotten@example.org", "unsubscribed", "one-click"),
        Suppression("new@example.org", "unsubscribed", "one-click", "issue-3"),
        Suppression("Mixed.Case@EXAMPLE.org", "unsubscribed", "one-click"),
        Suppression("NEW@example.org", "unsubscribed", "one-click", "issue-4"),
        Suppression("unconfirmed@example.org", "bounced", "one-click"),
        Suppression("not an address", "unsubscribed", "one-click"),
    ]
    stores = [Store(tmp_path / "each.db"), Store(tmp_path / "all.db")]
    for store in stores:
        store.add("sub@example.org")
        store.add("gone@example.org", status="unsubscribed")
        store.add("complained@example.org", status="complained")
        store.add("bounced@example.org", status="bounced")
        store.add("forgotten@example.org")
        store.forget("forgotten@example.org")
        store.add("mixed.case@example.org")
        store.sign_up("unconfirmed@example.org")
    each, together = stores
    results = [each.suppress(s.email, s.status, source=s.source, campaign=s.campaign) for s in suppressions]
    assert together.suppress_all(suppressions) == results
    assert results == [True, False, False, True, False, True, True, False, True, True]

    assert _contents(together, suppressions) == _contents(each, suppressions)
    for store in stores:
        store.close()


def _contents(store: Store, suppressions: list[Suppression]) -> tuple[object, ...]:
    """What a store holds after suppressions: subscribers, events, revision, and who is suppressed."""
    subscribers = store.db.execute("SELECT email, status FROM subscribers ORDER BY email").fetchall()
    events = store.db.execute(
        "SELECT s.email, kind, source, campaign, detail, dedupe_key FROM events e"
        " LEFT JOIN subscribers s ON s.id = e.subscriber ORDER BY e.id"
    ).fetchall()
    return subscribers, events, store.revision(), store.suppressed(s.email for s in suppressions)


def test_suppress_all_strengthens_an_address_given_twice_as_suppress_in_turn_does(tmp_path: Path) -> None:
    """An unsubscribe and a complaint of one address in one call (a known one, a new one): the complaint
    holds, as it does after two calls of suppress, and each call says whether it changed something."""
    suppressions = [
        Suppression("sub@example.org", "unsubscribed", "one-click", "issue-1"),
        Suppression("SUB@example.org", "complained", "webhook:x", "issue-1"),
        Suppression("new@example.org", "unsubscribed", "one-click"),
        Suppression("new@example.org", "bounced", "webhook:x"),
        Suppression("new@example.org", "unsubscribed", "one-click"),
    ]
    stores = [Store(tmp_path / "each.db"), Store(tmp_path / "all.db")]
    for store in stores:
        store.add("sub@example.org")
    each, together = stores
    results = [each.suppress(s.email, s.status, source=s.source, campaign=s.campaign) for s in suppressions]
    assert together.suppress_all(suppressions) == results == [True, True, True, True, False]

    assert _contents(together, suppressions) == _contents(each, suppressions)
    for store in stores:
        store.close()


def test_concurrent_jobs_are_committed_together_and_each_caller_gets_its_own_result(path: Path) -> None:
    commits: list[str] = []
    writer = GroupWriter(path, opened=lambda store: store.db.set_trace_callback(commits.append))
    with Store(path) as store:
        for n in range(40):
            store.add(f"reader{n}@example.org")
    commits.clear()
    calls = [
        (lambda n=n: writer.gather(Store.suppress_all, Suppression(f"reader{n % 20}@example.org", "unsubscribed", "t")))
        for n in range(40)
    ]
    results = one_group(writer, calls)
    writer.close()
    assert sorted(map(str, results)) == ["False"] * 20 + ["True"] * 20  # each address once, whichever came first
    assert commits.count("COMMIT") == 2  # the held job's group, then the forty in one transaction
    with Store(path) as store:
        assert store.count("unsubscribed") == 20
        assert store.db.execute("SELECT count(*) FROM events WHERE source = 't'").fetchone() == (20,)


def test_a_job_that_raises_is_undone_alone_and_its_caller_gets_the_exception(store_location: Path | str) -> None:
    path = store_location  # on each engine
    writer = GroupWriter(path)

    def bad(store: Store) -> None:
        store.add("half@example.org")
        raise StoreError("refused")

    calls = [
        lambda: writer.submit(bad),
        lambda: writer.submit(lambda store: store.add("kept@example.org").email),
    ]
    results = one_group(writer, calls)
    writer.close()
    assert isinstance(results[0], StoreError) and str(results[0]).startswith("refused")
    assert results[1] == "kept@example.org"
    with Store(path) as store:
        assert store.get("half@example.org") is None and store.get("kept@example.org") is not None


def test_a_commit_that_fails_fails_every_caller_of_its_group_and_keeps_nothing(path: Path) -> None:
    """COMMIT refused by SQLite (a deferred foreign key left broken, checked only at COMMIT): every caller of
    the group gets a StoreError, none of their writes is kept, and the next group commits again."""
    writer = GroupWriter(path)
    with Store(path) as store:
        store.add("reader@example.org")

    def breaks_the_commit(store: Store) -> None:
        store.db.execute("PRAGMA defer_foreign_keys = ON")
        store.db.execute("INSERT INTO events (subscriber, at, kind, source) VALUES (999999, 'now', 'x', 'x')")

    calls = [
        lambda: writer.gather(Store.suppress_all, Suppression("reader@example.org", "unsubscribed", "one-click")),
        lambda: writer.submit(lambda store: store.add("new@example.org").email),
        lambda: writer.submit(breaks_the_commit),
    ]
    results = one_group(writer, calls)
    assert all(isinstance(result, StoreError) for result in results), results
    assert "FOREIGN KEY" in str(results[0])
    with Store(path) as store:
        assert store.get("reader@example.org").status == "subscribed" and store.get("new@example.org") is None
    assert writer.gather(Store.suppress_all, Suppression("reader@example.org", "unsubscribed", "one-click"))
    writer.close()


def test_closing_records_every_job_queued_before_and_refuses_the_ones_after(store_location: Path | str) -> None:
    path = store_location  # on each engine
    writer = GroupWriter(path)
    held = Held(writer)
    calls = [lambda n=n: writer.submit(lambda store: store.add(f"queued{n}@example.org").email) for n in range(10)]
    results: list[object] = []
    runner = threading.Thread(target=lambda: results.extend(in_threads(calls)))
    runner.start()
    wait_queued(writer, 10)
    closing = threading.Thread(target=writer.close)
    closing.start()
    deadline = time.monotonic() + 10
    while not writer._closing and time.monotonic() < deadline:
        time.sleep(0.005)
    with pytest.raises(StoreError, match="stopping"):
        writer.submit(lambda store: store.add("late@example.org"))
    held.release()
    closing.join(10)
    runner.join(10)
    assert sorted(map(str, results)) == sorted(f"queued{n}@example.org" for n in range(10))
    with Store(path) as store:
        assert store.count() == 10 and store.get("late@example.org") is None


def test_a_group_writer_waits_for_another_process_holding_the_store(path: Path) -> None:
    """Another connection in a write transaction (as another process would be): the group waits for it
    (BEGIN IMMEDIATE, retried) and then commits."""
    Store(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    writer = GroupWriter(path)
    results: list[object] = []
    runner = threading.Thread(target=lambda: results.append(writer.submit(lambda store: store.add("a@example.org").id)))
    runner.start()
    time.sleep(0.2)
    assert runner.is_alive()  # waiting, not answered
    other.execute("COMMIT")
    other.close()
    runner.join(10)
    writer.close()
    assert results == [1]


def test_posted_jobs_are_handed_their_outcome_once_committed_with_no_caller_waiting(path: Path) -> None:
    """``post`` returns at once; each job's ``then`` gets its result (or the batch's exception) in the writer
    thread, only after the group's COMMIT; a post to a closing writer raises StoreError."""
    commits: list[str] = []
    writer = GroupWriter(path, opened=lambda store: store.db.set_trace_callback(commits.append))
    with Store(path) as store:
        store.add("poster@example.org")
    held = Held(writer)
    commits.clear()
    outcomes: list[tuple[object, str, int, str]] = []

    def then(result: object, error: BaseException | None) -> None:
        outcomes.append((result, type(error).__name__, threading.get_ident(), commits[-1]))

    for address in ("poster@example.org", "poster@example.org", "new@example.org"):
        writer.post(Store.suppress_all, Suppression(address, "unsubscribed", "posted"), then)
    wait_queued(writer, 3)
    assert outcomes == []
    held.release()
    writer.post(Store.suppress_all, Suppression("bad@example.org", "subscribed", "posted"), then)
    writer.close()
    with pytest.raises(StoreError, match="stopping"):
        writer.post(Store.suppress_all, Suppression("late@example.org", "unsubscribed", "posted"), then)
    assert [(result, error, commit) for result, error, _, commit in outcomes] == [
        (True, "NoneType", "COMMIT"), (False, "NoneType", "COMMIT"), (True, "NoneType", "COMMIT"),
        (None, "StoreError", "ROLLBACK"),  # a status that does not suppress: nothing of its group kept
    ]  # fmt: skip
    assert threading.get_ident() not in {ident for _, _, ident, _ in outcomes}  # each in the writer's thread
    with Store(path) as store:
        assert store.get("poster@example.org").status == "unsubscribed" and store.get("bad@example.org") is None
