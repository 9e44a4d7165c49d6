"""The subscriber store on real SQLite files and a real PostgreSQL: the interface serve and events code against."""

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta

import pytest

from broadsheet.core.errors import StoreError
from broadsheet.data.store import MailboxLimit, Store, store_path
from broadsheet.data.store.schema import SCHEMA_VERSION, TIME_FORMAT
from broadsheet.data.store.store import PAGE, utc_now


@pytest.fixture
def store(store_location):
    """A store on each engine (SQLite, PostgreSQL): every test that takes it runs on both."""
    with Store(store_location) as opened:
        yield opened


def test_file_is_created_in_wal_mode_with_the_schema(tmp_path):
    assert not Store.exists_for(tmp_path)
    with Store.for_project(tmp_path):
        pass
    path = store_path(tmp_path)
    assert path == tmp_path / ".broadsheet" / "audience.db" and Store.exists_for(tmp_path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "subscribers", "tags", "events", "forgotten"} <= tables
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION and "schema_version" not in meta
    assert len(bytes.fromhex(meta["hash_key"])) == 32


def test_exists_for_is_false_for_a_file_that_is_not_a_store(tmp_path):
    store_path(tmp_path).parent.mkdir()
    sqlite3.connect(store_path(tmp_path)).execute("CREATE TABLE other (x)")
    assert not Store.exists_for(tmp_path)


def test_a_file_that_is_not_sqlite_is_a_one_line_store_error(tmp_path):
    store_path(tmp_path).parent.mkdir()
    store_path(tmp_path).write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError) as caught:
        Store.for_project(tmp_path)
    assert caught.value.where == str(store_path(tmp_path)) and "\n" not in str(caught.value)


def test_add_normalises_and_get_is_case_insensitive(store):
    added = store.add("Ann@Bücher.Example", name="Ann Lee", fields={"city": "Gent"}, tags=["news", "Art"])
    assert added.email == "Ann@xn--bcher-kva.example" and added.status == "subscribed"
    assert added.tags == ("Art", "news") and added.fields == {"city": "Gent"}  # tags in case-folded order
    assert added.created.endswith("Z") and added.created == added.updated
    assert store.get("ANN@BÜCHER.example") == added
    assert store.get("ann@elsewhere.example") is None
    [event] = store.events("ann@xn--bcher-kva.example")
    assert (event.kind, event.source, event.subscriber) == ("added", "cli", added.id)


def test_add_refuses_a_present_or_invalid_address_and_a_name_with_a_line_break(store):
    store.add("ann@example.org")
    with pytest.raises(StoreError, match="already in the store"):
        store.add("ANN@example.org")
    with pytest.raises(StoreError, match="invalid address"):
        store.add("not-an-address")
    with pytest.raises(StoreError, match="line break"):
        store.add("bob@example.org", name="Bob\r\nBcc: x@y.org")
    with pytest.raises(StoreError, match="unknown status"):
        store.add("bob@example.org", status="maybe")
    assert store.count() == 1


def test_set_status_records_the_event_and_says_whether_it_changed(store):
    store.add("ann@example.org")
    assert store.set_status("ANN@example.org", "unsubscribed", source="one-click", campaign="2026-12", detail="ok")
    assert not store.set_status("ann@example.org", "unsubscribed", source="unsubscribe-page")  # recorded, unchanged
    assert store.get("ann@example.org").status == "unsubscribed"
    kinds = [(e.kind, e.source, e.campaign) for e in store.events("ann@example.org")]
    assert kinds == [
        ("added", "cli", ""),
        ("unsubscribed", "one-click", "2026-12"),
        ("unsubscribed", "unsubscribe-page", ""),
    ]
    assert store.set_status("ann@example.org", "bounced", source="webhook:postmark")
    assert store.events("ann@example.org")[-1].kind == "bounced_hard"


def test_set_status_for_an_unknown_address(store):
    assert not store.set_status("new@example.org", "subscribed", source="cli")
    assert store.get("new@example.org") is None and store.count() == 0
    assert store.set_status("New@Example.org", "complained", source="webhook:ses", detail="abuse")
    row = store.get("new@example.org")
    assert row.status == "complained" and row.email == "New@example.org"
    assert [e.kind for e in store.events("new@example.org")] == ["complained"]


def test_a_dedupe_key_changes_nothing_the_second_time(store):
    store.add("ann@example.org")
    assert store.set_status("ann@example.org", "bounced", source="webhook:postmark", dedupe_key="pm-1")
    store.set_status("ann@example.org", "subscribed", source="cli", resubscribe=True)
    assert not store.set_status("ann@example.org", "bounced", source="webhook:postmark", dedupe_key="pm-1")
    assert store.get("ann@example.org").status == "subscribed"
    assert store.record_event("ann@example.org", "bounced_soft", source="sync:ses", dedupe_key="ses-9")
    assert not store.record_event("ann@example.org", "bounced_soft", source="sync:ses", dedupe_key="ses-9")
    assert not store.set_status("ann@example.org", "bounced", source="sync:ses", dedupe_key="ses-9")
    assert [e.dedupe_key for e in store.events("ann@example.org")].count("ses-9") == 1


def test_suppression_only_gets_stronger_unless_resubscribed(store):
    """complained > bounced > unsubscribed: a weaker status is recorded as an event, never set, so a
    one-click cannot turn a complaint into an unsubscribe that a sign-up would revive."""
    store.add("ann@example.org")
    assert store.set_status("ann@example.org", "bounced", source="webhook:ses").newly_suppressed
    complaint = store.set_status("ann@example.org", "complained", source="webhook:ses")
    assert (complaint.before, complaint.after, complaint.newly_suppressed) == ("bounced", "complained", False)
    assert store.set_status("ann@example.org", "bounced", source="webhook:ses") is None
    assert store.set_status("ann@example.org", "unsubscribed", source="one-click") is None
    assert store.get("ann@example.org").status == "complained"
    assert [e.kind for e in store.events("ann@example.org")][-3:] == ["complained", "bounced_hard", "unsubscribed"]
    assert store.sign_up("ann@example.org") is None  # no confirmation for a complainer
    back = store.set_status("ann@example.org", "subscribed", source="cli", resubscribe=True)
    assert (back.before, back.after) == ("complained", "subscribed")


def test_record_event_keeps_the_status_and_counts_in_a_window(store):
    store.add("ann@example.org")
    for at in ("2026-11-01T10:00:00Z", "2026-11-20T10:00:00Z", "2026-11-28T10:00:00Z"):
        assert store.record_event("ann@example.org", "bounced_soft", source="webhook:mailgun", at=at)
    assert not store.record_event("nobody@example.org", "bounced_soft", source="webhook:mailgun")
    assert store.get("ann@example.org").status == "subscribed"
    assert store.count_events("ann@example.org", "bounced_soft", "2026-11-15T00:00:00Z") == 2
    assert store.count_events("ann@example.org", "bounced_soft", "2026-01-01T00:00:00Z") == 3
    assert store.count_events("ann@example.org", "delivered", "2026-01-01T00:00:00Z") == 0
    assert store.count_events("nobody@example.org", "bounced_soft", "2026-01-01T00:00:00Z") == 0


def test_suppressed_answers_the_addresses_as_given(store):
    store.add("ann@example.org")
    store.add("bob@example.org", status="unsubscribed")
    store.set_status("cy@example.org", "bounced", source="webhook:postmark")
    store.add("dee@example.org", status="unconfirmed")
    store.add("eve@example.org")
    store.forget("eve@example.org")
    given = ["ANN@example.org", "Bob@Example.ORG", "bob@example.org", "cy@example.org", "dee@example.org",
             "eve@EXAMPLE.org", "zed@example.org", "not an address"]  # fmt: skip
    assert store.suppressed(given) == {"Bob@Example.ORG", "bob@example.org", "cy@example.org", "eve@EXAMPLE.org"}
    many = [f"user{i}@example.org" for i in range(1200)] + ["cy@example.org"]  # more than one IN (...) chunk
    assert store.suppressed(many) == {"cy@example.org"}
    assert store.suppressed([]) == set()


def test_subscribers_stream_by_status_and_tag_across_pages(store):
    for i in range(PAGE + 150):
        tags = ["odd"] if i % 2 else ["Even", "all"]
        store.add(f"user{i}@example.org", tags=tags, status="unsubscribed" if i % 10 == 0 else "subscribed")
    everyone = list(store.subscribers())
    assert len(everyone) == PAGE + 150 == store.count() and [s.id for s in everyone] == sorted(s.id for s in everyone)
    assert sum(1 for _ in store.subscribers(status="unsubscribed")) == store.count("unsubscribed") == 115
    even = list(store.subscribers(tag="EVEN"))
    assert len(even) == (PAGE + 150) // 2 and all(s.tags == ("all", "Even") for s in even)
    assert sum(1 for _ in store.subscribers(status="subscribed", tag="even")) == (PAGE + 150) // 2 - 115
    with pytest.raises(StoreError):
        list(store.subscribers(status="gone"))


def test_forget_erases_personal_data_and_keeps_the_address_suppressed(store, tmp_path):
    store.add("ann@example.org", name="Ann Lee", fields={"city": "Gent"}, tags=["news"])
    store.set_status("ann@example.org", "unsubscribed", source="one-click", detail="ann@example.org clicked")
    assert store.take_sign_up("ann@example.org", name="Ann Lee", source="form", limit=10)  # not yet applied
    assert store.forget("Ann@Example.org")
    assert store.waiting_sign_ups(10) == []
    assert not store.forget("ann@example.org")
    assert store.get("ann@example.org") is None and store.events("ann@example.org") == []
    assert store.suppressed(["ann@example.org"]) == {"ann@example.org"} and store.is_forgotten("ANN@example.org")
    assert store.sign_up("ann@example.org") is None
    assert not store.set_status("ann@example.org", "bounced", source="webhook:ses")  # no new row for it
    with pytest.raises(StoreError, match="forgotten"):
        store.add("ann@example.org")
    if store.engine == "sqlite":  # PostgreSQL keeps dead row versions until its vacuum (the guide says so)
        dump = b"".join(path.read_bytes() for path in (tmp_path / ".broadsheet").iterdir())  # the db and its WAL
        for personal in (b"ann@example.org", b"Ann Lee", b"Gent", b"clicked"):
            assert personal not in dump
    kinds = [row for row in store.db.execute("SELECT subscriber, kind, detail FROM events ORDER BY id")]
    assert kinds == [(None, "added", ""), (None, "unsubscribed", ""), (None, "forgotten", "")]
    again = store.add("ann@example.org", resubscribe=True)
    assert again.status == "subscribed" and not store.is_forgotten("ann@example.org")


def test_forgetting_an_unknown_address_suppresses_it(store):
    assert store.forget("stranger@example.org")
    assert store.suppressed(["stranger@example.org"]) == {"stranger@example.org"}


def test_sign_up_then_confirm_works_once(store):
    nonce = store.sign_up("New@Example.org", name="New", fields={"source": "footer"})
    assert nonce and store.get("new@example.org").status == "unconfirmed"
    assert not store.confirm("new@example.org", "wrong")
    assert store.confirm("NEW@example.org", nonce)
    assert not store.confirm("new@example.org", nonce)
    row = store.get("new@example.org")
    assert (row.status, row.name, row.fields) == ("subscribed", "New", {"source": "footer"})
    assert [(e.kind, e.source) for e in store.events("new@example.org")] == [
        ("signed_up", "form"),
        ("confirmed", "confirm"),
    ]
    assert nonce not in str(list(store.db.execute("SELECT * FROM subscribers")))  # only its digest is kept


def test_sign_up_answers_by_status_and_never_renames(store):
    store.add("sub@example.org", name="Sub")
    store.add("gone@example.org", name="Gone", status="unsubscribed")
    store.add("angry@example.org", status="complained")
    store.add("dead@example.org", status="bounced")
    assert store.sign_up("sub@example.org", name="Attacker") is None
    assert store.sign_up("angry@example.org") is None and store.sign_up("dead@example.org") is None
    first = store.sign_up("gone@example.org", name="Attacker")
    second = store.sign_up("gone@example.org")
    assert first and second and first != second
    assert store.get("gone@example.org").status == "unsubscribed"  # not until confirmed
    assert not store.confirm("gone@example.org", first)  # only the latest works
    assert store.confirm("gone@example.org", second)
    assert store.get("gone@example.org").name == "Gone" and store.get("sub@example.org").name == "Sub"


def test_suppress_changes_and_records_only_what_is_weaker(store):
    store.add("ann@example.org")
    store.add("angry@example.org", status="complained")
    assert store.suppress("ANN@example.org", "unsubscribed", source="one-click")
    assert not store.suppress("ann@example.org", "unsubscribed", source="one-click")  # a repeat: nothing
    assert not store.suppress("angry@example.org", "unsubscribed", source="one-click")  # never weakened
    assert store.suppress("ann@example.org", "complained", source="inbox")
    assert [(e.kind, e.source) for e in store.events("ann@example.org")] == [
        ("added", "cli"),
        ("unsubscribed", "one-click"),
        ("complained", "inbox"),
    ]
    assert [e.kind for e in store.events("angry@example.org")] == ["added"]
    assert store.suppress("csv-only@example.org", "unsubscribed", source="one-click")  # kept, never mailed
    assert store.get("csv-only@example.org").status == "unsubscribed"
    store.forget("gone@example.org")
    assert not store.suppress("gone@example.org", "unsubscribed", source="one-click")
    assert store.get("gone@example.org") is None
    with pytest.raises(StoreError, match="does not suppress"):
        store.suppress("ann@example.org", "subscribed", source="cli")


def test_the_intake_is_bounded_and_each_sign_up_is_applied_once(store, store_location):
    store.add("member@example.org")
    taken = [store.take_sign_up(f"{who}@example.org", name="A Reader", source="form", limit=3)
             for who in ("new", "member", "new", "late")]  # fmt: skip
    assert taken == [True, True, True, False]
    first, member, second = store.waiting_sign_ups(10)
    other = Store(store_location)  # another serve draining the same intake
    nonce = store.sign_up_waiting(first)
    assert nonce and other.sign_up_waiting(first) is None  # marked: never applied (or mailed) twice
    assert store.sign_up_waiting(member) is None  # nothing to mail: done with
    assert [one.id for one in other.waiting_sign_ups(10)] == [second.id]
    assert store.get("new@example.org").status == "unconfirmed" and store.confirm("new@example.org", nonce)
    store.drop_sign_up(first.id)
    assert store.db.execute("SELECT count(*) FROM intake").fetchone() == (1,)
    assert other.sign_up_waiting(second) is None  # subscribed by now
    other.close()


def mail_waiting(stores: list[Store], addresses: list[str], limit: MailboxLimit) -> list[str | None]:
    """Take a sign-up of each address, then apply them in turn by ``stores`` (serve replicas) alternately."""
    for address in addresses:
        stores[0].take_sign_up(address, name="", source="form", limit=100)
    waiting = stores[0].waiting_sign_ups(100)
    return [stores[n % len(stores)].sign_up_waiting(one, per_mailbox=limit) for n, one in enumerate(waiting)]


def age_mails(store: Store, seconds: int) -> None:
    """The mails counted so far, as if sent ``seconds`` earlier."""
    for id_, at in store.db.execute("SELECT id, at FROM confirmation_mails").fetchall():
        earlier = datetime.strptime(at, TIME_FORMAT) - timedelta(seconds=seconds)
        store.db.execute("UPDATE confirmation_mails SET at = ? WHERE id = ?", (earlier.strftime(TIME_FORMAT), id_))


def test_one_mailbox_gets_its_few_confirmations_whichever_store_applies_the_sign_ups(store, store_location):
    """Two serve replicas apply the sign-ups of one mailbox (ann@, ann+1@ …): together they mail it once a
    minute, three times an hour; a refused sign-up keeps the nonce already mailed; no address is kept."""
    limit = MailboxLimit(per_minute=1, per_hour=3)
    other = Store(store_location)
    mailbox = ["ann@example.org", "ann+1@example.org", "Ann@Example.org", "ann+2@example.org"]
    first = mail_waiting([store, other], mailbox, limit)
    assert first[0] and first[1:] == [None] * 3  # the same sign-up taken twice too: mailed once
    assert store.db.execute("SELECT count(*) FROM intake").fetchone() == (1,)  # the first: being mailed
    assert mail_waiting([other, store], ["bob@example.org"], limit)[0]  # another mailbox: its own budget
    mailed = [first[0]]
    for _ in range(3):  # a minute later each time
        age_mails(store, 61)
        mailed += [nonce for nonce in mail_waiting([other, store], mailbox[1:3], limit) if nonce]
    assert len(mailed) == 3  # the third minute's sign-ups: over the hour's budget
    assert store.confirm("ann@example.org", first[0])  # the nonces mailed still work: the refused made none
    assert store.confirm("ann+1@example.org", mailed[2])
    age_mails(store, 3600)
    assert mail_waiting([store], ["ann+3@example.org"], limit)[0]  # an hour later: the budget is back
    kept = " ".join(f"{row}" for row in store.db.execute("SELECT mailbox, at FROM confirmation_mails"))
    assert store.db.execute("SELECT count(*) FROM confirmation_mails").fetchone() == (1,)  # the old ones: gone
    assert "ann" not in kept and "example" not in kept
    other.close()


def test_a_mailing_whose_process_stopped_is_dropped_once_it_is_old(store):
    for who in ("stopped", "sending"):
        store.take_sign_up(f"{who}@example.org", name="", source="form", limit=10)
        assert store.sign_up_waiting(store.waiting_sign_ups(1)[0])
    store.db.execute("UPDATE intake SET mailing = '2026-01-01T00:00:00Z' WHERE email = 'stopped@example.org'")
    assert store.drop_unfinished_mailings(3600) == 1  # the other may be being sent right now
    assert [email for (email,) in store.db.execute("SELECT email FROM intake")] == ["sending@example.org"]
    assert store.waiting_sign_ups(10) == []


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE subscribers (id INTEGER PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '', fields TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL,
    nonce TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE tags (subscriber INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE, tag TEXT NOT NULL,
    tag_key TEXT NOT NULL, PRIMARY KEY (subscriber, tag_key)) WITHOUT ROWID;
CREATE TABLE events (id INTEGER PRIMARY KEY, subscriber INTEGER REFERENCES subscribers (id), at TEXT NOT NULL,
    kind TEXT NOT NULL, source TEXT NOT NULL, campaign TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',
    dedupe_key TEXT);
CREATE UNIQUE INDEX events_by_dedupe_key ON events (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX events_by_subscriber ON events (subscriber, kind, at);
CREATE TABLE forgotten (email_hash TEXT PRIMARY KEY, at TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1'), ('hash_key', '%s'), ('revision', '7');
INSERT INTO subscribers VALUES (1, 'ann@example.org', 'ann@example.org', 'Ann', '{}', 'subscribed', '',
    '2026-11-30T10:00:00Z', '2026-11-30T10:00:00Z');
INSERT INTO events VALUES (1, 1, '2026-11-30T10:00:00Z', 'added', 'cli', '', '', NULL);
"""


def test_a_store_of_schema_1_opens_with_the_intake_and_keeps_everything(tmp_path):
    """A store written by the broadsheet before the intake (schema 1: the same tables, less the intake)."""
    store_path(tmp_path).parent.mkdir()
    with sqlite3.connect(store_path(tmp_path)) as db:
        db.executescript(SCHEMA_1 % ("ab" * 32))
    with Store.for_project(tmp_path) as store:
        assert store.get("ann@example.org").name == "Ann" and store.revision() == 7
        assert [e.kind for e in store.events("ann@example.org")] == ["added"]
        assert store.take_sign_up("bob@example.org", name="Bob", source="form", limit=10)
        assert store.sign_up_waiting(store.waiting_sign_ups(1)[0])
    db = sqlite3.connect(store_path(tmp_path))
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT value FROM meta WHERE key = 'hash_key'").fetchone() == ("ab" * 32,)
    db.execute("BEGIN IMMEDIATE")  # the migrated store opens without writing again
    try:
        Store.for_project(tmp_path).close()
    finally:
        db.rollback()


def test_revision_grows_with_changes_to_who_is_subscribed(store):
    before = store.revision()
    store.add("ann@example.org")
    after_add = store.revision()
    store.record_event("ann@example.org", "delivered", source="webhook:postmark")
    assert after_add > before and store.revision() == after_add
    store.set_status("ann@example.org", "unsubscribed", source="cli")
    assert store.revision() > after_add


def test_every_change_is_committed_before_the_method_returns(tmp_path):
    with Store.for_project(tmp_path) as writer, Store.for_project(tmp_path) as reader:
        writer.add("ann@example.org")
        assert reader.get("ann@example.org") is not None
        writer.set_status("ann@example.org", "unsubscribed", source="one-click")
        assert reader.suppressed(["ann@example.org"]) == {"ann@example.org"}


def test_one_store_per_thread_in_several_threads(tmp_path):
    Store.for_project(tmp_path).close()
    errors = []

    def work(n):
        try:
            with Store.for_project(tmp_path) as store:
                for i in range(50):
                    store.add(f"t{n}-{i}@example.org")
                    store.set_status(f"t{n}-{i}@example.org", "unsubscribed", source="one-click", dedupe_key=f"k{i}")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Store.for_project(tmp_path) as store:
        assert store.count() == 200
        assert store.count("unsubscribed") == 50  # each dedupe key counted once, whichever thread came first


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from broadsheet.data.store import Store
    root, name = Path(sys.argv[1]), sys.argv[2]
    with Store.for_project(root) as store:
        for i in range(150):
            store.add(f"{name}{i}@example.org")
            store.set_status(f"shared{i}@example.org", "unsubscribed", source="cli", dedupe_key=f"shared-{i}")
            store.record_event(f"{name}{i}@example.org", "delivered", source="webhook:test")
""")


@pytest.mark.slow
def test_two_processes_write_at_once_and_nothing_is_lost(tmp_path):
    Store.for_project(tmp_path).close()
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name], stderr=subprocess.PIPE)
                 for name in ("a", "b")]  # fmt: skip
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()
    with Store.for_project(tmp_path) as store:
        assert store.count("subscribed") == 300 and store.count("unsubscribed") == 150
        kinds = dict(store.db.execute("SELECT kind, count(*) FROM events GROUP BY kind"))
        assert kinds == {"added": 300, "unsubscribed": 150, "delivered": 300}


def test_a_store_from_a_newer_broadsheet_is_refused(tmp_path):
    with Store.for_project(tmp_path) as store:
        store.db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="schema version 99"):
        Store.for_project(tmp_path)


def test_opening_a_store_takes_no_write_lock(tmp_path):
    with Store.for_project(tmp_path) as first:
        first.add("ann@example.org")
        first.db.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        try:
            with Store.for_project(tmp_path) as second:
                assert second.get("ann@example.org") is not None
        finally:
            first.db.execute("ROLLBACK")


def test_import_across_chunks_and_statement_groups_keeps_each_row_with_its_tags(tmp_path, monkeypatch):
    from broadsheet.data.store import importer

    monkeypatch.setattr(importer, "ROWS_PER_TRANSACTION", 1000)  # 2,346 rows: three transactions
    lines = ["email,name,status,tags,n"]
    for i in range(2345):
        status = "bounced" if i % 100 == 7 else ""
        lines.append(f"u{i}@example.org,User {i},{status},t{i % 3};all,{i}")
    lines.append("u5@example.org,Again,,extra,")  # a repeat: the first row wins
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Store.for_project(tmp_path) as store:
        store.add("u10@example.org", name="Present")
        report = importer.import_csv(store, tmp_path / "big.csv")
        assert (report.rows, report.added, report.problems) == (2346, 2344, 0)
        assert report.by_status == {"subscribed": 2320, "bounced": 24}
        for i in (0, 99, 100, 107, 999, 1000, 1001, 2344):
            row = store.get(f"u{i}@example.org")
            assert (row.name, row.fields, set(row.tags)) == (f"User {i}", {"n": str(i)}, {f"t{i % 3}", "all"})
            assert row.status == ("bounced" if i % 100 == 7 else "subscribed")
            assert [(e.kind, e.detail) for e in store.events(row.email)] == [("imported", "big.csv")]
        assert store.get("u10@example.org").name == "Present" and store.get("u5@example.org").name == "User 5"
        assert store.count() == 2345 and sum(1 for _ in store.subscribers(tag="T2")) == 781


@pytest.mark.parametrize("fields", [{}, {"company": "ACME"}, {'quo"te\n': "é \u2028 \x01 \\ </script>", "empty": ""}])
def test_fields_are_stored_as_the_json_the_stdlib_writes(fields):
    import json

    from broadsheet.data.store.store import dump_fields

    assert dump_fields(fields) == json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(dump_fields(fields)) == fields


def test_a_write_waits_for_another_programs_postgresql_transaction_and_fails_busy_after_its_timeout(postgres_url):
    from broadsheet.data.db.postgres import direct
    from broadsheet.data.store.store import WRITE_LOCK

    with Store(postgres_url) as store, direct(postgres_url) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))  # another process writing for a moment
        timer = threading.Timer(0.3, other.execute, ("COMMIT",))
        timer.start()
        try:
            store.add("ann@example.org")  # waits for the lock, then gets in
        finally:
            timer.join()
        assert store.get("ann@example.org") is not None
        store.db.execute("SET lock_timeout = 200")
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        try:
            with pytest.raises(StoreError, match="busy"):
                store.add("bob@example.org")
        finally:
            other.execute("ROLLBACK")
        assert store.get("bob@example.org") is None


def test_a_write_waits_for_another_programs_transaction_and_gets_in_when_it_ends(tmp_path, monkeypatch):
    store = Store.for_project(tmp_path)
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another program writing for a moment
    timer = threading.Timer(0.3, other.execute, ("COMMIT",))
    timer.start()
    try:
        store.add("ann@example.org")  # tried again every millisecond: in as soon as the other one commits
    finally:
        timer.join()
    assert store.get("ann@example.org") is not None
    assert store.db.execute("PRAGMA busy_timeout").fetchone() == (10_000,)  # given back for reads

    from broadsheet.data.store import store as module

    monkeypatch.setattr(module, "BUSY_MS", 200)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="busy"):
            store.add("bob@example.org")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.get("bob@example.org") is None
    store.close()


def test_topics_notes_fields_and_campaign_counts(store):
    store.add("ann@example.org", fields={"city": "Gent"}, tags=["news", "Art"])
    store.add("bob@example.org", fields={"company": "ACME", "city": "Oslo"})
    assert store.field_names() == ["city", "company"]
    assert store.choose_topic("ann@example.org", "Art", leave=True, source="unsubscribe-page", campaign="c1")
    assert not store.choose_topic("ann@example.org", "art", leave=True, source="unsubscribe-page")  # no change
    assert list(store.left_topics("Ann@example.org")) == ["art"] and store.left_topics("nobody@example.org") == {}
    assert store.choose_topic("ann@example.org", "Art", leave=False, source="unsubscribe-page")
    assert store.left_topics("ann@example.org") == {}
    store.set_status("bob@example.org", "unsubscribed", source="one-click", campaign="c1")
    assert store.campaign_counts("c1") == {"left_topic": 1, "unsubscribed": 1}
    assert store.count_unchanged("subscribed", "2999-01-01T00:00:00Z") == 1
    assert store.note("imported:x") is None
    store.set_note("imported:x", "one")
    store.set_note("imported:x", "two")
    assert store.note("imported:x") == "two"


def test_the_reports_history_counts_events_per_day_and_campaign(store):
    from broadsheet.data.store.history import events_per_campaign, events_per_day

    store.add("ann@example.org")
    store.add("bob@example.org")
    store.set_status("bob@example.org", "unsubscribed", source="one-click", campaign="c1")
    store.suppress("cat@example.org", "complained", source="webhook:ses", campaign="c1")
    today = utc_now()[:10]
    assert sorted(events_per_day(store)) == [(today, "complained", 1), (today, "joined", 2), (today, "left", 1)]
    assert events_per_campaign(store) == {"c1": {"complained": 1, "unsubscribed": 1}}


def test_sequence_members_enter_once_and_stop_when_they_leave(store):
    from broadsheet.data.store import sequences

    for who in ("ann", "bob", "cat"):
        store.add(f"{who}@example.org", tags=["news"] if who != "cat" else [])
    store.add("dan@example.org", status="unconfirmed")
    assert sequences.enter(store, "welcome", ["ann@example.org", "dan@example.org"], at=1_000_000) == 1
    assert sequences.enter_tagged(store, "welcome", "News", at=2_000_000) == 1  # bob; ann is a member already
    assert sequences.enter_all(store, "welcome", at=3_000_000) == 1  # cat
    assert sequences.enter_all(store, "welcome", at=3_000_000) == 0
    assert sequences.entered_at(store, "welcome", "ANN@example.org") == sequences.store_time(1_000_000)
    assert sequences.entered_at(store, "welcome", "dan@example.org") is None
    store.set_status("bob@example.org", "unsubscribed", source="one-click")
    assert sequences.stop_left(store, "welcome", 4_000_000) == 1 and sequences.stop_left(store, "welcome", 5e6) == 0
    assert sequences.membership(store, "welcome") == sequences.Membership(active=2, stopped=1)
    assert sequences.enter_added(store, "other", source="list.csv", since=0, at=1) == 0  # nobody imported
    assert sequences.enter_confirmed(store, "other", now=time.time()) == 0  # notes when it began
    nonce = store.sign_up("eve@example.org")
    assert nonce and store.confirm("eve@example.org", nonce)
    assert sequences.enter_confirmed(store, "other", now=time.time()) == 1
    assert sequences.membership(store, "other") == sequences.Membership(active=1, stopped=0)


def test_a_postgresql_store_that_cannot_be_reached_is_a_one_line_store_error(postgres_url, monkeypatch):
    from support.ports import refused_port

    with refused_port() as port, pytest.raises(StoreError) as caught:
        Store(f"postgresql://broadsheet@127.0.0.1:{port}/nowhere?connect_timeout=5")
    assert "\n" not in str(caught.value) and "BROADSHEET_DATABASE_PASSWORD" in caught.value.fix
    monkeypatch.setenv("BROADSHEET_DATABASE_PASSWORD", "not-the-password")
    with pytest.raises(StoreError, match="password authentication failed") as caught:
        Store(postgres_url)
    assert "not-the-password" not in str(caught.value)
