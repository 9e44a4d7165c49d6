"""After-send figures in broadsheet status, and the store's health warnings, over a real store and journal."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import SAMPLE_ISSUE

from broadsheet.core.config import load_config
from broadsheet.data.journal.engines import open_journal_for
from broadsheet.data.journal.journal import Outcome
from broadsheet.data.store import Store, store_path
from broadsheet.faces.cli import main
from broadsheet.faces.commands.status import _identity
from broadsheet.usecases.campaign import issue_key
from broadsheet.usecases.events.report import AfterSend, store_warnings


def test_rates_and_warnings_against_the_thresholds():
    quiet = AfterSend(sent=10_000, hard=150, soft=30, complained=5, unsubscribed=20)
    assert quiet.lines() == [
        "  after sending: bounced 180 (hard 150, soft 30) 1.50% · complained 5 0.05% · unsubscribed 20 0.20%"
    ]
    loud = AfterSend(sent=1_000, hard=25, complained=2)
    warnings = loud.lines()[1:]
    assert (
        len(warnings) == 2
        and "complaints 0.20% are above 0.1%" in warnings[0]
        and "hard bounces 2.50% are above 2%" in warnings[1]
    )
    assert AfterSend(sent=0).lines() == []


def test_store_warnings_for_unconfirmed_and_long_unchanged_addresses(store_location):
    with Store(store_location) as store:
        for n in range(8):
            store.add(f"s{n}@example.com")
        assert store_warnings(store) == []
        for n in range(2):
            store.add(f"u{n}@example.com", status="unconfirmed")
        [warning] = store_warnings(store)
        assert warning.startswith("2 of 10 addresses in the store are unconfirmed (20%)")
        later = store_warnings(store, now=datetime(2030, 1, 1, tzinfo=UTC))
        assert "8 subscribed addresses have not changed in over 365 days" in later[1]


def configured_store(project: Path, engine: str, request: pytest.FixtureRequest) -> Path | str:
    """The project's store on ``engine``: its SQLite file, or a fresh PostgreSQL database set as ``[database] url``."""
    if engine == "sqlite":
        return store_path(project)
    location = str(request.getfixturevalue("postgres_url"))
    path = project / "broadsheet.toml"
    path.write_text(path.read_text(encoding="utf-8") + f'\n[database]\nurl = "{location}"\n', encoding="utf-8")
    return location


def add_unconfirmed_heavy_store(location: Path | str) -> None:
    """8 subscribed and 3 unconfirmed addresses: above the unconfirmed share that earns a warning."""
    with Store(location) as store:
        for n in range(8):
            store.add(f"s{n}@example.com")
        for n in range(3):
            store.add(f"u{n}@example.com", status="unconfirmed")


def test_status_shows_what_came_back_after_the_send(project, engine, request, monkeypatch, capsys):
    # the send in the configured journal, what came back in the configured store
    location = configured_store(project, engine, request)
    config = load_config(project / "broadsheet.toml")
    issue = project / "issues" / SAMPLE_ISSUE.name
    slug = _identity(issue, config)[1]
    people = [f"p{n}@example.com" for n in range(200)]
    with open_journal_for(config) as journal:
        campaign, _ = journal.start_campaign(slug, "smtp", issue_key(issue, project), "")
        journal.load_recipients(campaign, "fp", [(p, n, "{}") for n, p in enumerate(people)])
        journal.record([Outcome(r.id, "sent") for r in journal.claim(campaign, 200, time.time())])
    with Store(location) as store:
        for person in people:
            store.add(person)
        store.set_status("p1@example.com", "bounced", source="inbox", campaign=slug)
        store.set_status("p2@example.com", "complained", source="webhook:ses", campaign=slug)
        store.record_event("p3@example.com", "bounced_soft", source="inbox", campaign=slug)
        store.set_status("p4@example.com", "unsubscribed", source="webhook:ses", campaign="another-issue")
    monkeypatch.chdir(project)
    assert main(["status", str(issue)]) == 0
    out = capsys.readouterr().out
    assert "after sending: bounced 2 (hard 1, soft 1) 0.50% · complained 1 0.50% · unsubscribed 0 0.00%" in out
    assert "warning: complaints 0.50% are above 0.1%" in out and "hard bounces" not in out


def test_send_warns_before_mailing_a_store_with_many_unconfirmed_addresses(
    project, engine, request, monkeypatch, capsys
):
    monkeypatch.setenv("BROADSHEET_SECRET", "report-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.chdir(project)
    location = configured_store(project, engine, request)
    add_unconfirmed_heavy_store(location)
    (project / "subscribers.example.csv").unlink()  # the store alone: no [send] list imported into it
    assert main(["send", str(project / "issues" / SAMPLE_ISSUE.name), "--yes"]) == 0
    captured = capsys.readouterr()
    assert "warning: 3 of 11 addresses in the store are unconfirmed (27%)" in captured.err
    assert len(list((project / "outbox").rglob("*.eml"))) == 8  # the unconfirmed are not mailed


def test_lint_warns_about_a_store_with_many_unconfirmed_addresses(project, engine, request, monkeypatch, capsys):
    monkeypatch.chdir(project)
    issue = str(project / "issues" / SAMPLE_ISSUE.name)
    if engine == "sqlite":
        assert main(["lint", issue, "--no-validator"]) in (0, 1)
        assert "store-health" not in capsys.readouterr().out  # no store: nothing to say
    location = configured_store(project, engine, request)
    add_unconfirmed_heavy_store(location)
    main(["lint", issue, "--no-validator"])
    out = capsys.readouterr().out
    assert f"{location}: warning: 3 of 11 addresses in the store are unconfirmed (27%)" in out
    assert "[store-health]" in out
    assert (engine == "sqlite") == store_path(project).is_file()  # on PostgreSQL, no SQLite store is made
