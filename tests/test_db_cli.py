"""`broadsheet db migrate` and `db copy --to postgresql://…`, by the real CLI, against the PostgreSQL the suite
starts; and what the other commands do once ``[database] url`` is set."""

from __future__ import annotations

import pytest
from test_cli_build import assert_one_line_error, run_cli

from broadsheet.data.db import copy as db_copy
from broadsheet.data.db.migrate import postgres_version
from broadsheet.data.store import MailboxLimit, Store, copy, sequences
from broadsheet.data.store.clicks import Click, record_clicks
from broadsheet.data.store.schema import SCHEMA_VERSION


def use_database(project, url: str) -> None:
    path = project / "broadsheet.toml"
    path.write_text(path.read_text(encoding="utf-8") + f'\n[database]\nurl = "{url}"\n', encoding="utf-8")


def table_rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table the copy moves, in key order (meta: less the revision, which counts writes)."""
    found = {}
    for table in copy.TABLES:
        rows = store.db.execute(
            f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {', '.join(table.key)}"  # noqa: S608
        ).fetchall()
        found[table.name] = [tuple(row) for row in rows if table.name != "meta" or row[0] != "revision"]
    return found


def fill(store: Store) -> None:
    """A store with a row in every table."""
    store.add("ann@example.org", name="Ann", fields={"city": "Gent"}, tags=["news", "Art"])
    store.add("bob@example.org", tags=["news"])
    store.add("cat@example.org")
    store.set_status("bob@example.org", "unsubscribed", source="one-click", campaign="c1", dedupe_key="k1")
    store.choose_topic("ann@example.org", "art", leave=True, source="unsubscribe-page")
    sequences.enter_all(store, "welcome", at=1_000_000)
    store.take_sign_up("bob@example.org", name="", source="unsubscribe-page", limit=10)  # mailed: counted
    store.sign_up_waiting(store.waiting_sign_ups(1)[0], per_mailbox=MailboxLimit(1, 3))
    store.take_sign_up("new@example.org", name="New", source="form", limit=10)
    record_clicks(store, [Click("c1", 0, "https://example.org/", "2026-01-01T00:00:00Z", email="ann@example.org")])
    store.forget("gone@example.org")
    store.set_note("imported:list.csv", "abc")


def test_db_migrate_creates_the_configured_store_on_either_engine(project, postgres_url):
    result = run_cli(project, "db", "migrate")
    assert result.returncode == 0, result.stderr
    assert f"schema version {SCHEMA_VERSION}" in result.stdout and Store.exists_for(project)
    use_database(project, postgres_url)
    result = run_cli(project, "db", "migrate")
    assert result.returncode == 0, result.stderr
    assert postgres_url in result.stdout
    with Store(postgres_url) as store:
        assert postgres_version(store.db, "store") == SCHEMA_VERSION and store.count() == 0
    again = run_cli(project, "db", "migrate")
    assert again.returncode == 0 and again.stdout == result.stdout


def test_db_copy_moves_every_row_and_a_second_run_catches_up(project, postgres_url):
    with Store.for_project(project) as source:
        fill(source)
    result = run_cli(project, "db", "copy", "--to", postgres_url)
    assert result.returncode == 0, result.stderr
    assert "subscribers: 3 row(s) copied" in result.stdout and "[database] url" in result.stdout
    with Store.for_project(project) as source, Store(postgres_url) as target:
        assert table_rows(target) == table_rows(source)
        assert target.is_forgotten("gone@example.org")  # the hash key came along: forgotten stays forgotten
        # what serve records meanwhile: a new event, a forgotten address, an applied sign-up
        source.set_status("ann@example.org", "bounced", source="webhook:ses")
        source.forget("cat@example.org")
        source.drop_sign_up(source.waiting_sign_ups(1)[0].id)
    result = run_cli(project, "db", "copy", "--to", postgres_url)
    assert result.returncode == 0, result.stderr
    assert "subscribers: 2 row(s) copied, 1 gone from SQLite removed" in result.stdout
    with Store.for_project(project) as source, Store(postgres_url) as target:
        assert table_rows(target) == table_rows(source)
        assert target.get("cat@example.org") is None and target.is_forgotten("cat@example.org")
        added = target.add("dan@example.org")  # new ids come after the copied ones
        assert added.id > max(s.id for s in source.subscribers())
        assert target.sign_up("eve@example.org") is not None


def test_an_interrupted_copy_goes_on_when_run_again(project, postgres_url, monkeypatch):
    with Store.for_project(project) as source:
        for n in range(25):
            source.add(f"u{n}@example.org", tags=["a"])
    monkeypatch.setattr(db_copy, "BATCH", 10)
    batches = []

    def stop_at_the_second_batch(table: str, rows: int) -> None:
        batches.append((table, rows))
        if len(batches) == 2:
            raise KeyboardInterrupt

    with Store.for_project(project) as source, Store(postgres_url) as target:
        with pytest.raises(KeyboardInterrupt):
            copy.copy_store(source, target, progress=stop_at_the_second_batch)
        assert target.count() == 20
        report = copy.copy_store(source, target)
        assert table_rows(target) == table_rows(source) and report.copied["subscribers"] == 25


def test_db_copy_refuses_a_password_on_the_command_line_and_a_foreign_store(project, postgres_url):
    result = run_cli(project, "db", "copy", "--to", "postgresql://news:hunter2@127.0.0.1/broadsheet")
    assert_one_line_error(result, "holds a password")
    assert "hunter2" not in result.stderr
    assert_one_line_error(run_cli(project, "db", "copy", "--to", postgres_url), "there is no SQLite store")
    with Store(postgres_url) as other:
        other.add("someone@example.org")  # a store of its own, not a copy of this one
    with Store.for_project(project) as source:
        source.add("ann@example.org")
    assert_one_line_error(run_cli(project, "db", "copy", "--to", postgres_url), "subscribers of another store")


def test_commands_use_the_postgresql_store_once_configured_and_send_mails_from_it(project, postgres_url, monkeypatch):
    use_database(project, postgres_url)
    assert run_cli(project, "subscribers", "add", "ann@example.org").returncode == 0
    shown = run_cli(project, "subscribers", "show", "ann@example.org")
    assert shown.returncode == 0 and "subscribed" in shown.stdout
    assert not Store.exists_for(project)  # nothing went to SQLite
    with Store(postgres_url) as store:
        assert store.get("ann@example.org") is not None
    monkeypatch.setenv("BROADSHEET_SECRET", "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    sent = run_cli(project, "send", "issues/2021-06-01-chengdu-flemish-brabant", "--transport", "outbox", "--yes")
    assert sent.returncode == 0, sent.stderr
    mailed = [path.name for path in (project / "outbox").rglob("*.eml")]
    assert any(name.endswith("-ann@example.org.eml") for name in mailed) and len(mailed) > 1  # the list imported
    assert not Store.exists_for(project)  # still nothing in SQLite
    assert not (project / ".broadsheet" / "state.db").exists()  # the send journal is in PostgreSQL too


def test_a_password_in_the_configured_url_is_one_line_exit_2(project):
    use_database(project, "postgresql://news:hunter2@127.0.0.1/broadsheet")
    result = run_cli(project, "db", "migrate")
    assert_one_line_error(result, "database.url holds a password")
    assert "hunter2" not in result.stderr


def test_db_copy_carries_the_send_journal_and_a_resumed_send_mails_no_one_again(project, postgres_url, monkeypatch):
    from support.smtpd import Sink, configure, smtp_server, write_subscribers
    from test_send_integrity import ISSUE, smtp

    from broadsheet.data.journal.postgres import PostgresJournal

    monkeypatch.setenv("BROADSHEET_SECRET", "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    people = [email for email, _ in write_subscribers(project / "list.csv", 12)]
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(project, send={"transport": "smtp", "list": "list.csv", "batch_size": 1}, smtp=smtp(host, port))
        first = run_cli(project, "send", ISSUE, "--yes", "--limit", "5")
        assert first.returncode == 0, first.stderr
        assert sum(sink.recipients().values()) == 5
        copied = run_cli(project, "db", "copy", "--to", postgres_url)
        assert copied.returncode == 0, copied.stderr
        assert "journal recipients: 12 row(s) copied" in copied.stdout
        again = run_cli(project, "db", "copy", "--to", postgres_url)  # run again: nothing new, nothing lost
        assert again.returncode == 0 and "journal recipients: 12 row(s) copied" in again.stdout
        use_database(project, postgres_url)
        (project / ".broadsheet" / "state.db").rename(project / "state.db.old")  # the journal is in PostgreSQL
        rest = run_cli(project, "send", ISSUE, "--yes")
        assert rest.returncode == 0, rest.stderr
    assert sink.recipients() == {email: 1 for email in people}  # each once, over both engines
    with PostgresJournal(postgres_url, project / ".broadsheet" / "state.db", read_only=True) as journal:
        [campaign] = journal.recent_campaigns(5)
        assert journal.counts(campaign)["sent"] == 12
        assert journal.db.execute("SELECT count(*) FROM recipients").fetchone()[0] == 12


def test_db_copy_refuses_a_database_holding_another_journal(project, postgres_url):
    from broadsheet.data.journal.journal import Journal, journal_path
    from broadsheet.data.journal.postgres import PostgresJournal

    with PostgresJournal(postgres_url, journal_path(project / "elsewhere")) as other:
        other.start_campaign("issue-9", "smtp", "issues/issue-9", "list")
    with Journal.for_project(project) as journal:
        journal.start_campaign("issue-1", "smtp", "issues/issue-1", "list")
    assert_one_line_error(run_cli(project, "db", "copy", "--to", postgres_url), "another send journal's campaigns")
