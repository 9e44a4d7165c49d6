"""No hidden behaviour (issue 18): who a send mails and why, said on every send; rejections at send time
counted as bounces; unsubscribes counted against their issue. In-process, real outbox, SMTP and SQLite."""

from __future__ import annotations

import dataclasses
import sqlite3

from support.reporting import Recorder
from support.smtpd import configure, write_subscribers
from test_send_cli import sample  # noqa: F401 - the fixture

from broadsheet.core.config import Config, load_config
from broadsheet.data.store import Store
from broadsheet.usecases.send import SendOptions, send_issue

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"


def outbox_project(project, people: int, **send: object) -> tuple[Config, list[str]]:
    emails = [email for email, _ in write_subscribers(project / "list.csv", people)]
    configure(project, send={"transport": "outbox", "list": "list.csv", **send})
    return load_config(project / "broadsheet.toml"), emails


def mailed(project) -> set[str]:
    with sqlite3.connect(project / ".broadsheet" / "state.db") as db:
        return {email for (email,) in db.execute("SELECT email FROM recipients WHERE state = 'sent'")}


def rule(reporter: Recorder) -> list[str]:
    return [line for line in reporter.infos if line.startswith("audience: ")]


# -- 1. the audience never switches silently ------------------------------------------------------


def test_one_sign_up_does_not_drop_the_configured_list_and_the_rule_is_said(sample):
    config, people = outbox_project(sample, 9)
    with Store.for_project(sample) as store:  # as serve records one confirmed sign-up
        store.add("newcomer@example.org", source="confirm")
        store.set_status(people[3], "unsubscribed", source="one-click")  # the store's opt-out wins over the list
    reporter = Recorder()
    result = send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, reporter)
    assert result.complete
    assert mailed(sample) == {"newcomer@example.org", *people} - {people[3]}
    assert rule(reporter) == [
        "audience: the subscriber store, with list.csv ([send] list) imported into it first (8 new address(es); "
        "the store's unsubscribes, bounces and complaints win)"
    ]
    with Store.for_project(sample) as store:
        assert store.get(people[3]).status == "unsubscribed" and store.get(people[0]).status == "subscribed"
    again = Recorder()
    send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, again)
    assert "(unchanged since it was last imported;" in rule(again)[0]


def test_a_dry_run_counts_what_a_send_would_import_and_writes_nothing(sample):
    config, _ = outbox_project(sample, 4)
    with Store.for_project(sample) as store:
        store.add("newcomer@example.org")
        store.add("reader0001@example.com")
    reporter = Recorder()
    send_issue(SendOptions(issue_dir=sample / ISSUE, dry_run=True), config, reporter)
    assert rule(reporter) == [
        "audience: the subscriber store, with list.csv ([send] list) imported into it first (3 new address(es) a "
        "send would import; the store's unsubscribes, bounces and complaints win)"
    ]
    with Store.for_project(sample) as store:
        assert store.count() == 2


def test_the_rule_names_the_list_when_no_store_or_list_is_given(sample):
    config, people = outbox_project(sample, 3)
    alone = Recorder()
    send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, alone)
    assert rule(alone) == ["audience: list.csv ([send] list); there is no subscriber store"]
    (sample / "other.csv").write_text(f"email\n{people[0]}\nextra@example.org\n", encoding="utf-8")
    with Store.for_project(sample) as store:
        store.add("newcomer@example.org")
    named = Recorder()
    options = SendOptions(issue_dir=sample / ISSUE, yes=True, list_file=sample / "other.csv")
    send_issue(dataclasses.replace(options), config, named)
    assert rule(named) == [
        "audience: other.csv (--list), less whom the subscriber store has unsubscribed, bounced or complained; "
        "the store's own subscribers are not mailed"
    ]
    assert "newcomer@example.org" not in mailed(sample) and "extra@example.org" in mailed(sample)
