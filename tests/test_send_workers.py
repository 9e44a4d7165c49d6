"""Several `broadsheet send --worker` processes on one campaign: each recipient exactly once at the receiver,
a worker killed -9 leaves its rows to the others by the lease, the daily cap holds for all of them together."""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from support.smtpd import Sink, smtp_server, write_subscribers
from support.smtpd import configure as configure_project
from test_send_cli import cli, sample  # noqa: F401 - sample is a fixture
from test_send_integrity import ISSUE, send_process, smtp

from broadsheet.core.config import load_config
from broadsheet.data.journal.journal import Journal, Outcome, room_path
from broadsheet.data.journal.workers import EXPIRED_DETAIL
from broadsheet.usecases.campaign.workers import SharedBudget

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(180)


_URLS: dict[Path, str] = {}  # project -> the PostgreSQL journal's URL (none: the SQLite file)


@pytest.fixture
def worker_project(sample, engine, request):
    """The sample project, its journal (and store) on the engine under test."""
    if engine == "postgresql":
        _URLS[sample] = str(request.getfixturevalue("postgres_url"))
    yield sample
    _URLS.pop(sample, None)


def configure(project, **tables) -> None:
    """``support.smtpd.configure``, and ``[database] url`` for a project on PostgreSQL."""
    path = configure_project(project, **tables)
    if project in _URLS:
        with open(path, "a", encoding="utf-8") as toml:
            toml.write(f'\n[database]\nurl = "{_URLS[project]}"\n')


def journal_rows(project, query: str, *values) -> list[tuple]:
    if project in _URLS:
        from broadsheet.data.db.dialect import postgres_query
        from broadsheet.data.db.postgres import direct

        with direct(_URLS[project]) as db:
            return db.execute(postgres_query(query), values or None).fetchall()
    db = sqlite3.connect(project / ".broadsheet" / "state.db", timeout=10)
    try:
        return db.execute(query, values).fetchall()
    finally:
        db.close()


def states(project) -> dict[str, str]:
    return dict(journal_rows(project, "SELECT email, state FROM recipients"))


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


def live_workers(project) -> list[tuple]:
    path = project / ".broadsheet" / "state.db"
    if project not in _URLS and not path.exists():
        return []
    try:
        return journal_rows(project, "SELECT host, pid FROM workers WHERE stopped = 0")
    except sqlite3.OperationalError:  # not made yet, or migrating
        return []
    except Exception as exc:  # PostgreSQL: the table not made yet
        if type(exc).__name__ != "UndefinedTable":
            raise
        return []


def finish(processes) -> list[tuple[int, str]]:
    ended = []
    for process in processes:
        _out, err = process.communicate(timeout=120)
        ended.append((process.returncode, err))
    return ended


@pytest.mark.parametrize("count", [2, 4])
def test_workers_share_a_campaign_and_each_recipient_arrives_once(worker_project, count, capsys):
    people = [email for email, _ in write_subscribers(worker_project / "list.csv", 120)]
    sink = Sink(delay=0.002, hold_after=10)  # held after ten messages until every worker has joined
    with smtp_server(sink) as (host, port):
        configure(
            worker_project,
            send={"transport": "smtp", "list": "list.csv", "connections": 2, "batch_size": 1},
            smtp=smtp(host, port),
        )
        workers = [send_process(worker_project, ISSUE, "--yes", "--worker") for _ in range(count)]
        try:
            wait_for(lambda: len(live_workers(worker_project)) == count or any(w.poll() is not None for w in workers))
            assert sorted(pid for _host, pid in live_workers(worker_project)) == sorted(w.pid for w in workers)
            capsys.readouterr()
            assert cli(worker_project, "status", ISSUE) == 0
            shown = capsys.readouterr().out
            assert f"workers: {count}" in shown
            for worker in workers:
                assert f"pid {worker.pid}:" in shown
            sink.released.set()
            ended = finish(workers)
        finally:
            sink.released.set()
            for worker in workers:
                worker.kill()
    for returncode, err in ended:
        assert returncode == 0, err
        assert "Traceback" not in err
    assert sink.recipients() == {email: 1 for email in people}  # counted at the receiver: once each
    assert set(states(worker_project).values()) == {"sent"}
    assert live_workers(worker_project) == []  # each stopped and said so
    sent_by = journal_rows(worker_project, "SELECT count(*) FROM workers WHERE batches > 0")[0][0]
    assert sent_by >= 2  # the campaign was shared, not sent by whoever came first


def test_a_worker_killed_mid_campaign_leaves_its_rows_to_another_by_the_lease(worker_project, capsys):
    people = [email for email, _ in write_subscribers(worker_project / "list.csv", 30)]
    first, second = people[0], people[1]
    sink = Sink(stored_silent={first})  # stored, its reply never comes: handed over, no answer
    with smtp_server(sink) as (host, port):
        configure(
            worker_project,
            send={"transport": "smtp", "list": "list.csv", "connections": 1, "batch_size": 1, "worker_lease": 1.5},
            smtp=smtp(host, port, timeout=60),
        )
        killed = send_process(worker_project, ISSUE, "--yes", "--worker")
        try:
            wait_for(lambda: first in sink.recipients() or killed.poll() is not None)
            assert killed.poll() is None
            held = journal_rows(
                worker_project, "SELECT email, state FROM recipients JOIN leases ON recipient = id ORDER BY id"
            )
            assert held[0] == (first, "sending") and held[1][0] == second  # one handed over, the next ones
            assert {state for _email, state in held[1:]} == {"queued"}  # leased ahead, not handed over
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            survivor = send_process(worker_project, ISSUE, "--yes", "--worker")
            [(returncode, err)] = finish([survivor])
        finally:
            for process in (killed, locals().get("survivor")):
                if process is not None:
                    process.kill()
    assert returncode == 1, err  # someone is unknown
    assert "Traceback" not in err
    assert sink.recipients() == {email: 1 for email in people}
    final = states(worker_project)
    assert final[first] == "unknown"  # never resent by itself
    assert {state for email, state in final.items() if email != first} == {"sent"}
    [(detail,)] = journal_rows(worker_project, "SELECT detail FROM recipients WHERE email = ?", first)
    assert detail in (EXPIRED_DETAIL, "in flight when an earlier send stopped")  # by a lease or at the start
    assert killed.pid in [pid for _host, pid in live_workers(worker_project)]  # status shows it, heartbeat ageing
    capsys.readouterr()
    assert cli(worker_project, "status", ISSUE) == 0
    [shown] = [line for line in capsys.readouterr().out.splitlines() if f"pid {killed.pid}:" in line]
    assert "gone?" in shown


def test_three_workers_send_exactly_the_daily_limit_together(worker_project):
    people = [email for email, _ in write_subscribers(worker_project / "list.csv", 40)]
    limit = 13
    sink = Sink(delay=0.002)
    with smtp_server(sink) as (host, port):
        configure(
            worker_project,
            send={
                "transport": "smtp", "list": "list.csv", "connections": 2, "batch_size": 1, "daily_limit": limit,
            },
            smtp=smtp(host, port),
        )  # fmt: skip
        workers = [send_process(worker_project, ISSUE, "--yes", "--worker") for _ in range(3)]
        try:
            ended = finish(workers)
        finally:
            for worker in workers:
                worker.kill()
    for returncode, err in ended:
        assert returncode == 0, err
        assert "Traceback" not in err
    received = sink.recipients()
    assert sum(received.values()) == limit and set(received.values()) == {1}
    final = states(worker_project)
    assert sum(1 for state in final.values() if state == "sent") == limit
    assert sum(1 for state in final.values() if state == "queued") == len(people) - limit


def test_a_plain_send_and_workers_keep_each_other_out(worker_project, capsys):
    write_subscribers(worker_project / "list.csv", 20)
    sink = Sink(hold_after=1)
    with smtp_server(sink) as (host, port):
        configure(
            worker_project,
            send={"transport": "smtp", "list": "list.csv", "connections": 1, "batch_size": 1},
            smtp=smtp(host, port),
        )
        worker = send_process(worker_project, ISSUE, "--yes", "--worker")
        try:
            wait_for(lambda: len(sink.received) >= 1 or worker.poll() is not None)
            assert worker.poll() is None
            capsys.readouterr()
            assert cli(worker_project, "send", ISSUE, "--yes") == 2
            assert "another 'broadsheet send' is running" in capsys.readouterr().err
            sink.released.set()
            [(returncode, err)] = finish([worker])
        finally:
            sink.released.set()
            worker.kill()
    assert returncode == 0, err
    assert set(states(worker_project).values()) == {"sent"}


def test_worker_does_not_go_with_due_or_test(sample, capsys):
    assert cli(sample, "send", "--due", "--worker") == 2
    assert "--worker does not go with --due" in capsys.readouterr().err
    assert cli(sample, "send", ISSUE, "--worker", "--test", "me@example.org") == 2
    assert "--worker does not go with --test" in capsys.readouterr().err


# -- the journal's side, in one process: times are given, not waited for ---------------------------------


@pytest.fixture
def sample_config():
    return load_config(ROOT / "broadsheet.toml")


@pytest.fixture
def two_workers(open_journal):
    """Two connections to one journal (as two worker processes have) and a campaign of 20, on each engine."""
    first, second = open_journal(), open_journal()
    campaign, _ = first.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
    first.load_recipients(campaign, "list-1", [(f"r{i:02d}@example.com", i, "{}") for i in range(20)])
    campaign = first.current("issue-1", "smtp")
    yield first, second, campaign
    first.close()
    second.close()


def lease(journal, campaign, worker, now, *, size=4, hand=2, carried=(), allow=lambda n: n, until=None):
    return journal.lease(
        campaign, worker, carried=list(carried), hand=hand, size=size, now=now,
        until=now + 10 if until is None else until, allow=allow,
    )  # fmt: skip


def test_two_workers_never_lease_the_same_row_and_a_dead_ones_rows_are_recovered_by_the_rule(two_workers):
    first, second, campaign = two_workers
    one = first.register_worker(campaign, "host-a", 1, 100.0)
    two = second.register_worker(campaign, "host-b", 2, 100.0)
    handed, ahead = lease(first, campaign, one, 100.0)
    theirs, _ = lease(second, campaign, two, 100.0)
    assert len(handed) == len(ahead) == len(theirs) == 2
    assert not {r.id for r in handed + ahead} & {r.id for r in theirs}
    assert second.hand_over(two, ahead, 101.0) == []  # not its own: left out
    # the first worker dies; its lease runs out at 110: the second takes what was not handed over
    taken, more = lease(second, campaign, two, 111.0, size=20, hand=20)
    assert {r.id for r in ahead} <= {r.id for r in taken}
    assert not {r.id for r in handed} & {r.id for r in taken + more}
    states = dict(second.db.execute("SELECT id, state FROM recipients"))
    assert {states[r.id] for r in handed} == {"unknown"}  # handed over, no answer: never resent by itself
    assert first.hand_over(one, ahead, 112.0) == []  # back from a pause: its rows are the other's now


def test_the_rate_limit_is_one_bucket_for_every_worker(two_workers, sample_config):
    first, second, campaign = two_workers
    config = dataclasses.replace(sample_config, send=dataclasses.replace(sample_config.send, rate_per_second=4))
    one = first.register_worker(campaign, "host-a", 1, 100.0)
    two = second.register_worker(campaign, "host-b", 2, 100.0)
    budgets = [SharedBudget(journal, campaign, config, "smtp") for journal in (first, second)]
    for budget in budgets:
        budget.now = 100.0
    handed, _ = lease(first, campaign, one, 100.0, size=4, hand=4, allow=budgets[0])
    assert len(handed) == 4  # the bucket's four tokens
    assert lease(second, campaign, two, 100.0, size=2, hand=2, allow=budgets[1]) == ([], [])  # none left for it
    budgets[1].now = 100.5
    handed, _ = lease(second, campaign, two, 100.5, size=2, hand=2, allow=budgets[1])
    assert len(handed) == 2  # half a second later: two more, for whichever worker asks


def capped_workers(first, second, campaign, sample_config, limit: int):
    """Each journal as a worker of ``campaign`` (their ids), with its budget of ``limit`` messages a day, now."""
    config = dataclasses.replace(sample_config, send=dataclasses.replace(sample_config.send, daily_limit=limit))
    now = time.time()
    one = first.register_worker(campaign, "host-a", 1, now)
    two = second.register_worker(campaign, "host-b", 2, now)
    budgets = [SharedBudget(journal, campaign, config, "smtp") for journal in (first, second)]
    for budget in budgets:
        budget.now = now
    return one, two, budgets, now


def test_the_daily_cap_counts_what_every_worker_holds(two_workers, sample_config):
    first, second, campaign = two_workers
    one, two, budgets, now = capped_workers(first, second, campaign, sample_config, 5)
    handed, ahead = lease(first, campaign, one, now, size=4, hand=2, allow=budgets[0])
    assert len(handed + ahead) == 4
    handed, ahead = lease(second, campaign, two, now, size=4, hand=2, allow=budgets[1])
    assert len(handed + ahead) == 1 and not budgets[1].capped  # five held in all
    assert lease(second, campaign, two, now, size=4, hand=0, allow=budgets[1]) == ([], [])
    assert budgets[1].capped


def test_a_worker_whose_own_lease_ran_out_hands_each_row_over_once(two_workers):
    first, _second, campaign = two_workers
    one = first.register_worker(campaign, "host-a", 1, 100.0)
    handed, ahead = lease(first, campaign, one, 100.0, size=3, hand=1)  # one handed over, two held until 110
    assert len(handed) == 1 and len(ahead) == 2
    # back from a pause at 120, nobody took its rows: the lease it asks for finds them free again
    batch, rest = lease(first, campaign, one, 120.0, carried=ahead, size=2, hand=4)
    ids = [row.id for row in batch + rest]
    assert len(ids) == len(set(ids))  # each row once in what goes to the transport
    assert {row.id for row in ahead} <= set(ids)


def test_the_reserve_is_kept_until_the_last_worker_closes_the_journal(tmp_path):
    path = tmp_path / ".broadsheet" / "state.db"
    room = room_path(path)
    first = Journal(path, lock=True, shared=True)
    second = Journal(path, lock=True, shared=True)
    first.keep_room()
    second.keep_room()
    with Journal(path, read_only=True):  # status, meanwhile
        pass
    assert room.exists()
    first.close()
    assert room.exists()  # the other worker still sends: its outcomes keep their room on a full disk
    second.close()
    assert not room.exists()


def test_a_worker_whose_lease_ran_out_hands_nothing_over_past_the_daily_cap(two_workers, sample_config):
    first, second, campaign = two_workers
    other, _ = second.start_campaign("issue-2", "smtp", "issues/issue-2", "list-2")
    second.load_recipients(other, "list-2", [(f"s{i:02d}@example.com", i, "{}") for i in range(20)])
    other = second.current("issue-2", "smtp")
    config = dataclasses.replace(sample_config, send=dataclasses.replace(sample_config.send, daily_limit=4))
    now = time.time()
    one = first.register_worker(campaign, "host-a", 1, now)
    two = second.register_worker(other, "host-a", 2, now)
    budgets = [SharedBudget(first, campaign, config, "smtp"), SharedBudget(second, other, config, "smtp")]
    budgets[0].now = now
    _handed, ahead = lease(first, campaign, one, now, size=4, hand=0, allow=budgets[0])
    assert len(ahead) == 4  # today's four, held by the first worker until now + 10
    budgets[1].now = now + 20  # the first worker is paused past its lease; a worker of another issue asks
    theirs, _ = lease(second, other, two, now + 20, size=4, hand=4, allow=budgets[1])
    assert len(theirs) == 4  # the first worker's hold ran out: the cap is the other's now
    first.renew(one, now + 21, now + 31)  # back from its pause: a lease that ran out is not renewed
    assert first.hand_over(one, ahead, now + 21) == []  # nor handed over: the cap went to the other


def test_workers_done_with_are_forgotten_when_a_worker_registers(two_workers):
    """Stopped workers of a campaign with nothing left to send go at the next registration, any worker
    silent for a week too; one still holding a lease, and the running ones, stay (``status`` shows them)."""
    first, second, campaign = two_workers
    day, now = 86400, time.time()

    def left() -> list[int]:
        return [id_ for (id_,) in first.db.execute("SELECT id FROM workers ORDER BY id")]

    stopped, killed, holding, running = (first.register_worker(campaign, "host-a", n, now) for n in range(4))
    first.release(stopped, now + 1)
    lease(second, campaign, holding, now, size=1, hand=0, until=now + 10)  # killed holding a row: never expired
    joined = first.register_worker(campaign, "host-b", 9, now + 2)
    assert stopped in left()  # its campaign still sends
    first.db.execute("UPDATE recipients SET state = 'sent'")  # the campaign is done
    late = first.register_worker(campaign, "host-b", 10, now + 3)
    assert stopped not in left()
    assert [w.id for w in first.workers(campaign)] == [killed, holding, running, joined, late]
    first.renew(running, now + 8 * day, now + 8 * day + 10)
    newest = second.register_worker(campaign, "host-c", 11, now + 8 * day)
    assert left() == [holding, running, newest]
    assert [w.id for w in second.workers(campaign)] == [holding, running, newest]


def test_an_outcome_recorded_while_a_lease_reads_the_daily_cap_is_counted(postgres_url, tmp_path, sample_config):
    """PostgreSQL reads what is held and what went out at two moments; a message recorded sent between them
    must not leave room for one more (SQLite's write transaction keeps the outcome out meanwhile)."""
    from broadsheet.data.journal.postgres import PostgresJournal

    path = tmp_path / ".broadsheet" / "state.db"
    with PostgresJournal(postgres_url, path) as first, PostgresJournal(postgres_url, path) as second:
        campaign, _ = first.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
        first.load_recipients(campaign, "list-1", [(f"r{i:02d}@example.com", i, "{}") for i in range(6)])
        campaign = first.current("issue-1", "smtp")
        one, two, budgets, now = capped_workers(first, second, campaign, sample_config, 3)
        handed, _ = lease(first, campaign, one, now, size=3, hand=3, allow=budgets[0])
        assert len(handed) == 3  # the day's three, handed over by the first worker

        def after_the_first_read(name: str):
            method = getattr(second, name)

            def read(*args):
                found = method(*args)
                if not reads:  # the first worker's outcomes commit between the second's two reads
                    first.record([Outcome(row.id, "sent") for row in handed])
                reads.append(name)
                return found

            return read

        reads: list[str] = []
        second.in_flight = after_the_first_read("in_flight")
        second.sent_between = after_the_first_read("sent_between")
        assert lease(second, campaign, two, now, size=4, hand=4, allow=budgets[1]) == ([], [])
        assert len(reads) == 2 and budgets[1].capped
