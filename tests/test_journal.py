"""The campaign journal: set-up, claims, crash recovery, retries, list changes, the send lock."""

from __future__ import annotations

import json
import threading
import time

import pytest

from broadsheet.core.audience import Subscriber
from broadsheet.core.errors import CampaignError
from broadsheet.data.subscriber_list import CsvList
from broadsheet.usecases.campaign import Journal, Outcome, prepare_campaign, subscriber_from_row


def people(count: int, start: int = 0) -> list[Subscriber]:
    return [
        Subscriber(
            f"p{i}@example.com",
            f"Person {i}",
            f"P{i}",
            ("members",),
            {"email": f"p{i}@example.com", "city": "Gent"},
            i + 2,
        )
        for i in range(start, start + count)
    ]


def prepare(journal: Journal, subscribers, fingerprint="list-1"):
    return prepare_campaign(
        journal,
        slug="issue-1",
        transport="smtp",
        issue_dir="issues/issue-1",
        fingerprint=fingerprint,
        subscribers=subscribers,
    )


@pytest.fixture
def journal(open_journal):
    """The journal on each engine."""
    with open_journal() as journal:
        yield journal


@pytest.fixture
def sqlite_journal(tmp_path):
    with Journal.for_project(tmp_path) as journal:
        yield journal


def test_set_up_is_wal_and_keeps_what_compose_needs(journal, tmp_path, engine):
    prepared = prepare(journal, people(3))
    assert prepared.loaded == 3
    if engine == "sqlite":
        assert journal.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (tmp_path / ".broadsheet" / "state.db").is_file()
    else:
        assert not (tmp_path / ".broadsheet" / "state.db").exists()  # all of it in the database
    row = next(journal.rows(prepared.record, ("queued",)))
    assert subscriber_from_row(row) == people(1)[0]
    assert journal.counts(prepared.record)["queued"] == 3


def test_unchanged_list_is_not_loaded_again(journal):
    prepare(journal, people(3))
    assert prepare(journal, iter(()), fingerprint="list-1").loaded is None


def test_claim_marks_sending_and_a_crash_leaves_them_unknown(journal):
    record = prepare(journal, people(10)).record
    claimed = journal.claim(record, 4, time.time())
    assert [row.email for row in claimed] == [f"p{i}@example.com" for i in range(4)]
    assert journal.counts(record)["sending"] == 4
    journal.record([Outcome(claimed[0].id, "sent", "250", "<id@x>")])
    assert prepare(journal, iter(())).recovered == 3  # a new send after a crash
    counts = journal.counts(record)
    assert (counts["unknown"], counts["sent"], counts["queued"]) == (3, 1, 6)
    assert journal.requeue(record, "unknown") == 3
    assert journal.counts(record)["queued"] == 9


def test_deferred_rows_wait_for_their_time(journal):
    record = prepare(journal, people(2)).record
    first, second = journal.claim(record, 2, time.time())
    journal.record(
        [
            Outcome(first.id, "deferred", "451 later", next_attempt=time.time() + 60),
            Outcome(second.id, "deferred", "451 later", next_attempt=time.time() - 1),
        ]
    )
    assert [row.email for row in journal.claim(record, 5, time.time())] == [second.email]
    assert journal.claim(record, 5, time.time()) == []
    assert [row.email for row in journal.claim(record, 5, time.time() + 61)] == [first.email]


def test_a_changed_list_adds_new_people_and_drops_unsent_ones_who_left(journal):
    record = prepare(journal, people(4)).record
    sent = journal.claim(record, 1, time.time())[0]
    journal.record([Outcome(sent.id, "sent")])
    prepared = prepare(journal, people(2, start=2) + people(1, start=9), fingerprint="list-2")
    emails = {row.email: row.state for row in journal.rows(prepared.record, ("queued", "sent"))}
    assert emails == {
        "p0@example.com": "sent",
        "p2@example.com": "queued",
        "p3@example.com": "queued",
        "p9@example.com": "queued",
    }


def test_a_second_send_is_refused_while_one_runs(open_journal):
    with open_journal() as first, open_journal() as second:
        first.lock()
        assert second.send_running()
        with pytest.raises(CampaignError, match="another 'broadsheet send' is running"):
            second.lock()
        with pytest.raises(CampaignError, match="another 'broadsheet send' is running"):
            open_journal(lock=True, shared=True)  # nor a worker
        first.unlock()
        assert not second.send_running()
        with (
            open_journal(lock=True, shared=True),  # workers together
            open_journal(lock=True, shared=True),
            pytest.raises(CampaignError, match="another 'broadsheet send' is running"),
        ):
            second.lock()  # but no plain send among them


def test_claims_take_deferred_rows_in_order_from_the_index_without_sorting_them(sqlite_journal):
    journal = sqlite_journal
    record = prepare(journal, (Subscriber(f"r{i}@example.com", "", "", (), {}, i) for i in range(2_000))).record
    now = time.time()
    journal.record(
        [
            Outcome(row.id, "deferred", "451 greylisted", next_attempt=now - 1 - row.id % 600)
            for row in journal.claim(record, 2_000, now)
        ]
    )  # a greylisting wave, all due again
    statements: list[str] = []
    journal.db.set_trace_callback(statements.append)
    try:
        claimed = journal.claim(record, 3, time.time())  # SMTP claims a few rows at a time, the deferred first
    finally:
        journal.db.set_trace_callback(None)
    assert [row.id % 600 for row in claimed] == [599, 599, 599]  # the longest-waiting first
    plans = [
        " | ".join(step[3] for step in journal.db.execute("EXPLAIN QUERY PLAN " + sql))
        for sql in statements
        if sql.lstrip().upper().startswith("SELECT") and "recipients" in sql
    ]
    assert plans, statements
    for plan in plans:  # sorting every deferred row on each claim made a wave of them slow to send
        assert "TEMP B-TREE" not in plan and "USING INDEX" in plan, plan


def test_a_claim_in_postgresql_reads_queued_rows_in_order_from_the_index(postgres_url, tmp_path):
    """A campaign of millions of queued rows: each claim takes the first few by id from the index, not by
    sorting them all (which took a worker of a ten-million campaign half a minute per claim)."""
    from broadsheet.data.journal.journal import journal_path
    from broadsheet.data.journal.postgres import PostgresJournal

    with PostgresJournal(postgres_url, journal_path(tmp_path)) as journal:
        record = prepare(journal, people(50)).record
        journal.db.execute("SET enable_seqscan = off")  # a table this small would be read whole otherwise
        statement = "SELECT id FROM recipients WHERE campaign = ? AND state = 'queued' ORDER BY id LIMIT 5"
        plan = json.dumps(journal.db.execute("EXPLAIN (FORMAT JSON) " + statement, (record.id,)).fetchone()[0])
        assert '"Sort"' not in plan and "recipients_by_state" in plan, plan
        assert [row.email for row in journal.claim(record, 2, time.time())] == sorted(p.email for p in people(50))[:2]


@pytest.mark.slow
def test_hundred_thousand_rows_set_up(journal):
    prepared = prepare(journal, (Subscriber(f"r{i}@example.com", "", "", (), {}, i) for i in range(100_000)))
    assert prepared.loaded == 100_000
    assert journal.counts(prepared.record)["queued"] == 100_000


@pytest.mark.parametrize("make", [lambda path: path.write_bytes(b"not a database " * 20), lambda path: path.mkdir()])
def test_an_unusable_journal_is_an_error_naming_it(tmp_path, make):
    path = tmp_path / ".broadsheet" / "state.db"
    path.parent.mkdir()
    make(path)
    with pytest.raises(CampaignError) as caught:
        Journal.for_project(tmp_path)
    assert caught.value.where == str(path)


def test_repeats_of_an_address_keep_the_first_row_and_are_not_counted(journal):
    campaign, _ = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
    rows = [("ann@example.com", 2, "first"), ("ANN@example.com", 3, "second"), ("bob@example.com", 4, "bob")]
    assert journal.load_recipients(campaign, "list-1", rows) == 2
    stored = {row.email.lower(): (row.line, row.data) for row in journal.rows(campaign, ("queued",))}
    assert stored == {"ann@example.com": (2, "first"), "bob@example.com": (4, "bob")}


def test_a_second_load_of_a_changed_list_still_refreshes_known_rows(journal):
    campaign, _ = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
    journal.load_recipients(campaign, "list-1", [("ann@example.com", 2, "old")])
    campaign, changed = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-2")
    assert changed
    rows = [("ann@example.com", 5, "new"), ("Ann@example.com", 6, "repeat")]
    assert journal.load_recipients(campaign, "list-2", rows) == 1
    [ann] = journal.rows(campaign, ("queued",))
    assert (ann.line, ann.data) == (5, "new")


def test_a_list_leaves_its_repeats_to_the_journal_and_still_counts_them(journal, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        "email,name\nann@example.org,Ann\nbob@example.org,Bob\nANN@example.org,Ann Again\n"
        "ann@EXAMPLE.ORG,Ann Thrice\nann@Bücher.example,Ann B\nann@bÜCHER.example,Ann B Again\n",
        encoding="utf-8",
    )
    subscribers = CsvList(path)
    prepared = prepare(journal, subscribers)
    assert prepared.loaded == 3
    assert subscribers.skipped == {"duplicate": 3}
    assert len(list(subscribers)) == 3  # the list itself still hands each address on once
    loaded = {row.email: row.line for row in journal.rows(prepared.record, ("queued",))}
    assert loaded == {"ann@example.org": 2, "bob@example.org": 3, "ann@xn--bcher-kva.example": 6}
    assert sorted(s.email for s in CsvList(path)) == sorted(loaded)  # what a dry run would hand on


def test_a_loaded_list_is_claimed_in_address_order_whatever_its_own(journal):
    """The load moves the list in through SQLite's sort (the UNIQUE index filled front to back): ids, and
    so the sending order, follow the addresses; a repeat keeps the first row's line and data."""
    campaign, _ = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
    offered = [("carl@example.org", 2, "c"), ("Ann@example.org", 3, "a"), ("bob@example.org", 4, "b"),
               ("ann@example.org", 5, "repeat"), ("abe@example.org", 6, "e")]  # fmt: skip
    assert journal.load_recipients(campaign, "list-1", offered) == 4
    claimed = journal.claim(journal.current("issue-1", "smtp"), 10, now=1.0)
    assert [(row.email, row.line, row.data) for row in claimed] == [
        ("abe@example.org", 6, "e"), ("Ann@example.org", 3, "a"), ("bob@example.org", 4, "b"),
        ("carl@example.org", 2, "c")]  # fmt: skip


def test_a_load_gives_back_the_connection_settings_it_changed(sqlite_journal):
    journal = sqlite_journal
    settings = [journal.db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "temp_store")]
    campaign, _ = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
    journal.load_recipients(campaign, "list-1", [("ann@example.com", 2, "{}")])
    assert [journal.db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "temp_store")] == settings


def test_checkpoints_aside_leave_the_log_to_a_thread_of_the_journals_own(tmp_path):
    """As a send runs it: the load's commit does not copy the write-ahead log into the file (it would
    stall the send's start); the journal's checkpoint thread does, once started."""
    database = tmp_path / ".broadsheet" / "state.db"
    with Journal.for_project(tmp_path) as journal:
        start = journal.checkpoints_aside()
        assert journal.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        assert prepare(journal, people(30_000)).loaded == 30_000
        log = database.with_name("state.db-wal").stat().st_size
        assert log > 4 * 1024 * 1024 and database.stat().st_size < log / 4  # still in the log
        start()
        deadline = time.monotonic() + 10
        while database.stat().st_size < log / 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size >= log / 2  # copied by the thread
    with Journal.for_project(tmp_path) as journal:
        assert journal.db.execute("SELECT count(*) FROM recipients").fetchone()[0] == 30_000


def test_each_issue_of_a_due_run_stops_the_last_checkpoint_thread_before_its_load(tmp_path):
    """send --due sends several issues through one journal: a checkpoint thread left running would make
    the next load spawn its part readers instead of forking them, and would outlive the journal."""
    before = set(threading.enumerate())  # other tests' threads in this worker are not this test's business

    def ours() -> list[threading.Thread]:
        return [t for t in set(threading.enumerate()) - before if t.name.startswith("checkpoint-") and t.is_alive()]

    with Journal.for_project(tmp_path) as journal:
        journal.checkpoints_aside()()
        assert len(ours()) == 1
        start = journal.checkpoints_aside()  # the next issue
        assert not ours()  # nothing of ours runs while it loads
        start()
        assert len(ours()) == 1
    assert not ours()


def test_a_list_kind_loads_itself_through_its_one_method(journal):
    class Kind:
        """A list kind the campaign knows nothing of but ``load_into``."""

        def load_into(self, loader):
            return loader.chunks([people(2), people(2)])  # the journal keeps the first row of each address

        def __iter__(self):
            raise AssertionError("a list kind is loaded through load_into, not iterated")

    prepared = prepare(journal, Kind())
    assert prepared.loaded == 2
    assert len(list(journal.rows(prepared.record, ("queued",)))) == 2


def test_sends_of_two_machines_on_one_database_keep_each_other_out(postgres_url, tmp_path):
    """The send lock of a journal in PostgreSQL is the database's, not a project folder's: a project on another
    machine (here another folder) pointing at the same database cannot send meanwhile, and can once it ends."""
    from broadsheet.data.journal.journal import journal_path
    from broadsheet.data.journal.postgres import PostgresJournal

    first = PostgresJournal(postgres_url, journal_path(tmp_path / "a"), lock=True)
    try:
        with pytest.raises(CampaignError, match="another 'broadsheet send' is running") as caught:
            PostgresJournal(postgres_url, journal_path(tmp_path / "b"), lock=True)
        assert caught.value.where == postgres_url
    finally:
        first.close()
    PostgresJournal(postgres_url, journal_path(tmp_path / "b"), lock=True).close()


def test_the_same_address_in_another_case_is_one_recipient_on_either_engine(journal):
    campaign, _ = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
    journal.load_recipients(campaign, "list-1", [("Ann@Example.com", 2, "{}")])
    assert journal.forget("ann@example.COM") == 1
    [row] = journal.rows(campaign, ("skipped",))
    assert row.email == f"forgotten-{row.id}@invalid"


def test_a_journal_database_that_cannot_be_reached_is_one_line_naming_it(postgres_url, tmp_path):
    from broadsheet.data.journal.journal import journal_path
    from broadsheet.data.journal.postgres import PostgresJournal, has_journal

    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(CampaignError, match="cannot reach the send journal's database") as caught:
        PostgresJournal(url, journal_path(tmp_path))
    assert caught.value.where == url
    with pytest.raises(CampaignError, match="cannot reach the send journal's database"):
        has_journal(url)


def test_times_keep_their_fractions_on_either_engine(journal):
    record = prepare(journal, people(1)).record
    [row] = journal.claim(record, 1, 1_800_000_000.25)
    journal.record([Outcome(row.id, "deferred", "451 later", next_attempt=1_800_000_060.5)])
    assert journal.claim(record, 1, 1_800_000_060.4) == []  # not due a tenth of a second early
    assert [r.id for r in journal.claim(record, 1, 1_800_000_060.5)] == [row.id]


def test_a_journal_connection_lost_mid_send_is_one_line(postgres_url, tmp_path):
    from broadsheet.data.db.postgres import direct
    from broadsheet.data.journal.journal import journal_path
    from broadsheet.data.journal.postgres import PostgresJournal

    journal = PostgresJournal(postgres_url, journal_path(tmp_path), lock=True)
    try:
        campaign, _ = journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list-1")
        [pid] = journal.db.execute("SELECT pg_backend_pid()").fetchone()
        with direct(postgres_url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # the server restarted, say
        with pytest.raises(CampaignError, match="cannot reach the send journal's database"):
            journal.counts(campaign)
        with pytest.raises(CampaignError, match="cannot take the send lock"), journal.preparing():
            pass
    finally:
        journal.close()
    with PostgresJournal(postgres_url, journal_path(tmp_path), lock=True) as again:  # its lock went with it
        assert again.counts(campaign)["queued"] == 0
