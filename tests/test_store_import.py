"""`subscribers import` into the store: staged, sorted, moved in bounded transactions (real SQLite files, a
real PostgreSQL)."""

from __future__ import annotations

import itertools
import random
import sqlite3
import types

import pytest

from broadsheet.core.audience import RowProblem
from broadsheet.core.errors import AudienceError, StoreError
from broadsheet.data.store import Store, importer, staged


@pytest.fixture
def store(store_location):
    """A store on each engine (SQLite, PostgreSQL): every test that takes it runs on both."""
    with Store(store_location) as opened:
        yield opened


def write_csv(path, rows, header="email,name,status,tags,city"):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def staging_left(store) -> list[str]:
    if store.url:  # PostgreSQL stages in temporary tables of the import's connection
        found = store.db.execute("SELECT relname FROM pg_class WHERE relname LIKE 'import_%' AND relkind = 'r'")
        return [name for (name,) in found]
    return [path.name for path in store.path.parent.iterdir() if path.name.startswith(".staging-")]


def imported_subscribers(store) -> list[int]:
    return [id_ for (id_,) in store.db.execute("SELECT subscriber FROM events WHERE kind = 'imported' ORDER BY id")]


def imported_event_ids(store) -> list[int]:
    return [id_ for (id_,) in store.db.execute("SELECT id FROM events WHERE kind = 'imported' ORDER BY id")]


def test_new_subscribers_get_ids_in_address_order_with_their_tags_and_event(store, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "ROWS_PER_TRANSACTION", 70)  # 500 rows: eight transactions
    numbers = list(range(500))
    random.Random(9).shuffle(numbers)
    path = write_csv(tmp_path / "list.csv", [f"u{n:03d}@Example.org,User {n},,t{n % 4};All,City {n}" for n in numbers])
    report = importer.import_csv(store, path)
    assert (report.rows, report.added, report.by_status) == (500, 500, {"subscribed": 500})
    listed = list(store.subscribers())
    assert [s.email for s in listed] == [f"u{n:03d}@example.org" for n in range(500)]
    assert [s.id for s in listed] == sorted(s.id for s in listed)
    assert imported_subscribers(store) == [s.id for s in listed]  # one event each, in the same order
    for subscriber in listed[::37]:
        n = int(subscriber.email[1:4])
        assert (subscriber.name, subscriber.fields, set(subscriber.tags)) == (f"User {n}", {"city": f"City {n}"},
                                                                              {f"t{n % 4}", "All"})  # fmt: skip
    assert sum(1 for _ in store.subscribers(tag="all")) == 500
    assert staging_left(store) == []


def test_tag_keys_are_python_casefold_and_the_first_spelling_wins(store, tmp_path):
    path = write_csv(
        tmp_path / "list.csv", ["ann@example.org,Ann,,Straße;STRASSE;news", "bob@example.org,Bob,,İstanbul,"]
    )
    importer.import_csv(store, path)
    assert store.get("ann@example.org").tags == ("news", "Straße")
    assert [s.email for s in store.subscribers(tag="STRASSE")] == ["ann@example.org"]
    keys = [key for (key,) in store.db.execute("SELECT tag_key FROM tags ORDER BY tag_key")]
    assert keys == ["istanbul".replace("i", "i\u0307", 1), "news", "strasse"]  # str.casefold, not SQLite's lower()


def test_repeats_first_row_is_added_later_rows_are_present_rows_across_transactions(store, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "ROWS_PER_TRANSACTION", 3)  # the repeats of rep@ straddle transactions
    rows = ["a1@example.org,A1,,,", "rep@example.org,First,,one,Gent", "zz@example.org,Z,,,",
            "rep@example.org,Second,,two,Leuven", "a2@example.org,A2,,,", "rep@example.org,Third,unsubscribed,,",
            "rep@example.org,Fourth,bounced,,", "a0@example.org,A0,,,"]  # fmt: skip
    path = write_csv(tmp_path / "list.csv", rows)
    plain = importer.import_csv(store, path)
    assert (plain.rows, plain.added, plain.opted_out, plain.updated) == (8, 5, 1, 0)
    assert plain.by_status == {"subscribed": 5}
    rep = store.get("rep@example.org")  # unsubscribed, then bounced: the stronger one stays
    assert (rep.name, rep.fields, rep.tags, rep.status) == ("First", {"city": "Gent"}, ("one",), "bounced")
    events = [(e.kind, e.detail) for e in store.events("rep@example.org")]
    assert events == [("imported", "list.csv"), ("unsubscribed", "list.csv:7"), ("bounced_hard", "list.csv:8")]

    other = tmp_path / "other"
    other.mkdir()
    with Store.for_project(other) as fresh:
        update = importer.import_csv(fresh, path, update=True)
        assert (update.added, update.opted_out, update.updated) == (5, 1, 3)
        rep = fresh.get("rep@example.org")  # each later row merged in, in file order
        assert (rep.name, rep.fields, rep.tags, rep.status) == (
            "Fourth", {"city": "Leuven"}, ("one", "two"), "bounced")  # fmt: skip
        assert [(e.kind, e.detail) for e in fresh.events("rep@example.org")] == [
            ("imported", "list.csv"), ("updated", "list.csv:5"), ("unsubscribed", "list.csv:7"),
            ("updated", "list.csv:7"), ("bounced_hard", "list.csv:8"), ("updated", "list.csv:8"),
        ]  # fmt: skip


def test_present_rows_opt_outs_update_resubscribe_and_forgotten(store, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "ROWS_PER_TRANSACTION", 4)
    store.add("sub@example.org", name="Sub", tags=["old"])
    store.add("unc@example.org", status="unconfirmed")
    store.add("gone@example.org", status="unsubscribed")
    store.add("forgot@example.org")
    store.forget("forgot@example.org")
    rows = ["new@example.org,New,,,", "sub@example.org,,complained,,", "unc@example.org,Unc,,x,Lyon",
            "gone@example.org,Gone,,,", "forgot@example.org,F,,,", "FORGOT@example.org,F,,,",
            "new2@example.org,N2,bounced,,"]  # fmt: skip
    path = write_csv(tmp_path / "list.csv", rows)
    plain = importer.import_csv(store, path)
    assert (plain.added, plain.opted_out, plain.updated, plain.forgotten, plain.kept_suppressed) == (2, 1, 0, 2, 0)
    assert plain.by_status == {"subscribed": 1, "bounced": 1}
    assert store.get("sub@example.org").status == "complained" and store.get("unc@example.org").name == ""
    assert store.get("forgot@example.org") is None and store.is_forgotten("forgot@example.org")

    update = importer.import_csv(store, path, update=True)
    assert (update.added, update.opted_out, update.updated, update.forgotten, update.kept_suppressed) == (0, 0, 2, 2, 1)
    unc, gone = store.get("unc@example.org"), store.get("gone@example.org")
    assert (unc.status, unc.name, unc.fields, unc.tags) == ("subscribed", "Unc", {"city": "Lyon"}, ("x",))
    assert (gone.status, gone.name) == ("unsubscribed", "Gone")  # never resubscribed without being asked
    again = importer.import_csv(store, path, update=True, resubscribe=True)
    assert again.updated == 0 and store.get("gone@example.org").status == "subscribed"
    assert again.resubscribed == 1
    assert store.get("sub@example.org").status == "complained"  # its row still says complained
    assert store.events("gone@example.org")[-1].detail == "list.csv:5"


@pytest.mark.parametrize("update", [False, True])
def test_an_import_makes_suppression_stronger_never_weaker(store, tmp_path, update):
    store.add("left@example.org", status="unsubscribed")
    store.add("angry@example.org", status="complained")
    path = write_csv(tmp_path / "list.csv", ["left@example.org,,complained,,", "angry@example.org,,unsubscribed,,",
                                             "angry@example.org,,bounced,,"])  # fmt: skip
    report = importer.import_csv(store, path, update=update)
    assert store.get("left@example.org").status == "complained"
    assert store.get("angry@example.org").status == "complained"
    assert report.opted_out == 0  # both were suppressed already: none newly opted out
    assert store.events("left@example.org")[-1].kind == "complained"


def test_the_store_is_not_locked_while_the_csv_is_read(store, tmp_path):
    rows = [f"u{n}@example.org,U,,," for n in range(3000)]
    rows[1500] = "not-an-address,Nobody,,,"
    written = []

    def on_problem(problem: RowProblem) -> None:  # called from the reading thread, mid-file
        if store.engine == "postgresql":
            from broadsheet.data.db.postgres import direct
            from broadsheet.data.store.store import WRITE_LOCK

            with direct(store.url) as other:  # as another program would: the store's lock is free
                other.execute("BEGIN")
                assert other.execute("SELECT pg_try_advisory_xact_lock(%s)", (WRITE_LOCK,)).fetchone() == (True,)
                other.execute("UPDATE meta SET value = value WHERE key = 'revision'")
                other.execute("COMMIT")
            written.append(problem.line)
            return
        other = sqlite3.connect(store.path, timeout=0, isolation_level=None)  # as another program would
        try:
            other.execute("BEGIN IMMEDIATE")  # fails at once if the import held the write lock
            other.execute("UPDATE meta SET value = value WHERE key = 'revision'")
            other.execute("COMMIT")
            written.append(problem.line)
        finally:
            other.close()

    report = importer.import_csv(store, write_csv(tmp_path / "list.csv", rows), on_problem=on_problem)
    assert written == [1502] and (report.added, report.problems) == (2999, 1)


def test_another_writer_gets_the_store_between_the_moves_transactions(store, store_location, tmp_path, monkeypatch):
    """At each pause between two transactions of the move, another connection (serve recording a sign-up)
    writes at once: the import holds the write lock only inside its bounded transactions."""
    monkeypatch.setattr(importer, "ROWS_PER_TRANSACTION", 2_000)  # 40,000 rows: twenty transactions
    path = write_csv(tmp_path / "list.csv", [f"u{(n * 7919) % 40_000}@example.org,U {n},,a;b,X" for n in range(40_000)])
    written: list[str] = []
    with Store(store_location) as other:
        # a lock still held fails at once instead of waiting
        other.db.execute("SET lock_timeout = 1" if other.url else "PRAGMA busy_timeout = 0")

        def pause(seconds: float) -> None:
            written.append(f"writer{len(written)}@example.org")
            other.add(written[-1], source="form")

        monkeypatch.setattr(importer, "time", types.SimpleNamespace(sleep=pause))
        report = importer.import_csv(store, path)
    assert report.added == 40_000 and len(written) == 19
    assert all(store.get(address) is not None for address in written)
    ids = imported_event_ids(store)
    gaps = sum(1 for before, after in itertools.pairwise(ids) if after != before + 1)
    assert gaps == 19  # a writer's event between every two transactions


def test_a_file_that_fails_mid_read_imports_nothing_and_leaves_no_staging_file(store, tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(
        b"email,name\n" + b"".join(b"u%d@example.org,U\n" % n for n in range(20_000)) + b"bad@x.org,\xff\n"
    )
    with pytest.raises(AudienceError, match="not UTF-8"):
        importer.import_csv(store, path)
    assert store.count() == 0 and staging_left(store) == []

    def interrupt(problem: RowProblem) -> None:
        raise KeyboardInterrupt

    rows = [f"u{n}@example.org,U" for n in range(20_000)] + ["broken", "late@example.org,L"]
    with pytest.raises(KeyboardInterrupt):
        importer.import_csv(store, write_csv(tmp_path / "cut.csv", rows, header="email,name"), on_problem=interrupt)
    assert store.count() == 0 and staging_left(store) == []


def test_a_write_error_mid_move_keeps_the_transactions_before_whole(store, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "ROWS_PER_TRANSACTION", 100)
    if store.url:  # an error the database raises in the middle of the third transaction
        store.db.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.email_key = 'u250@example.org' THEN RAISE EXCEPTION 'disk says no'; END IF; RETURN NEW; END $$"
        )
        store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON subscribers FOR EACH ROW EXECUTE FUNCTION refuse()")
    else:
        store.db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON subscribers WHEN NEW.email_key = 'u250@example.org'"
            " BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    rows = [f"u{n:03d}@example.org,U,,a;b," for n in range(400)]
    with pytest.raises(StoreError, match="the import stopped: disk says no") as raised:
        importer.import_csv(store, write_csv(tmp_path / "list.csv", rows))
    assert "200 subscriber(s) were added before it" in raised.value.fix
    assert store.count() == 200 and staging_left(store) == []
    assert len(imported_subscribers(store)) == 200
    assert store.db.execute("SELECT count(*) FROM tags").fetchone() == (400,)
    assert store.db.execute("SELECT count(*) FROM subscribers WHERE email_key > 'u199@example.org'").fetchone() == (0,)
    store.db.execute("DROP TRIGGER refuse ON subscribers" if store.url else "DROP TRIGGER refuse")
    again = importer.import_csv(store, tmp_path / "list.csv")  # run again: the rest goes in
    assert (again.added, store.count()) == (200, 400)


def test_a_quoted_value_with_line_breaks_is_imported_whole(store, tmp_path):
    rows = [f'u{n}@example.org,U {n},,,"line one\nline two of {n}"' for n in range(400)]
    report = importer.import_csv(store, write_csv(tmp_path / "list.csv", rows))
    assert (report.rows, report.added, report.problems) == (400, 400, 0)
    assert store.get("u0@example.org").fields == {"city": "line one\nline two of 0"}


def test_a_line_that_is_not_utf8_stops_the_import_naming_it(store, tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(b"email,name\n" + b"".join(b"u%d@example.org,U\n" % n for n in range(3000)) + b"z@x.org,\xff\n")
    with pytest.raises(AudienceError, match="not UTF-8") as raised:
        importer.import_csv(store, path)
    assert raised.value.where.endswith("list.csv:3002")
    assert store.count() == 0 and staging_left(store) == []


@pytest.mark.parametrize("fails", [False, True])
def test_the_store_enforces_foreign_keys_again_after_an_import(store, tmp_path, fails):
    if store.engine == "postgresql":
        pytest.skip("SQLite's import turns foreign-key checks off for its move; PostgreSQL's keeps them on")
    if fails:
        store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON subscribers BEGIN SELECT RAISE(ABORT, 'no'); END")
    path = write_csv(tmp_path / "list.csv", [f"u{n}@example.org,U,,a," for n in range(50)])
    try:
        importer.import_csv(store, path)
    except StoreError:
        assert fails
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        store.db.execute("INSERT INTO tags (subscriber, tag, tag_key) VALUES (999999, 'x', 'x')")


def test_each_row_keeps_its_own_tags_when_tag_lists_outnumber_those_remembered(store, tmp_path, monkeypatch):
    monkeypatch.setattr(staged, "TAGSETS_KEPT", 3)  # the numbers are forgotten (and given anew) every three lists
    monkeypatch.setattr(importer, "ROWS_PER_TRANSACTION", 40)
    rows = [f"u{n:03d}@example.org,U,,t{n % 7};All;all;u{n % 50},C" for n in range(200)]
    importer.import_csv(store, write_csv(tmp_path / "list.csv", rows))
    for n in range(200):
        assert store.get(f"u{n:03d}@example.org").tags == tuple(sorted({f"t{n % 7}", "All", f"u{n % 50}"}))
    again = [f"u{n:03d}@example.org,U,,t{n % 5};New,C" for n in range(0, 200, 3)]
    report = importer.import_csv(store, write_csv(tmp_path / "again.csv", again), update=True)
    assert report.updated == len(again)
    for n in range(0, 200, 3):
        expected = {f"t{n % 7}", "All", f"u{n % 50}", f"t{n % 5}", "New"}
        assert set(store.get(f"u{n:03d}@example.org").tags) == expected
