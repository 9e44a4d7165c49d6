"""No hidden behaviour (issue 18): who a send mails and why, said on every send; rejections at send time
counted as bounces; unsubscribes counted against their issue. In-process, real outbox, SMTP and SQLite."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import sqlite3
from collections.abc import Iterator

import pytest
import requests
from support.providers import api  # noqa: F401 - the fixture
from support.reporting import Recorder
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_api_cli import use_fake
from test_schedule import moment, scheduled
from test_send_cli import cli, sample, smtp  # noqa: F401 - sample is the fixture

from broadsheet.core.config import Config, load_config
from broadsheet.core.events import rejection_kind
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
    with open(sample / "list.csv", "a", encoding="utf-8") as handle:
        handle.write("not-an-address,Nobody\n")
    with Store.for_project(sample) as store:  # as serve records one confirmed sign-up
        store.add("newcomer@example.org", source="confirm")
        store.set_status(people[3], "unsubscribed", source="one-click")  # the store's opt-out wins over the list
    reporter = Recorder()
    result = send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, reporter)
    assert result.complete
    assert mailed(sample) == {"newcomer@example.org", *people} - {people[3]}
    assert rule(reporter) == [
        "audience: the subscriber store, with list.csv ([send] list) imported into it first (8 new address(es), "
        "1 bad row(s) skipped; the store's unsubscribes, bounces and complaints win)"
    ]
    assert len(reporter.warnings) == 1 and reporter.warnings[0].startswith("list.csv:11: ")
    assert reporter.warnings[0].endswith("(not-an-address); skipped")
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


# -- 2. a rejection at send time is a bounce --------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("550 5.1.1 <x@example.com>: mailbox unavailable", "hard_bounce"),
        ("550-5.1.1 The email account that you tried to reach does not exist", "hard_bounce"),
        ("550 5.2.1 mailbox disabled", "hard_bounce"),
        ("553 mailbox name not allowed", "hard_bounce"),
        ("452 4.2.2 mailbox full", "soft_bounce"),
        ("451 4.7.1 greylisted, try again", "soft_bounce"),
        ("552 5.2.2 mailbox full", "soft_bounce"),
        ("554 5.7.1 message refused as spam", "soft_bounce"),
        ("554 transaction failed", "soft_bounce"),
    ],
)
def test_the_enhanced_status_code_decides_hard_or_soft(reply, kind):
    assert rejection_kind(reply) == kind


def test_an_smtp_refusal_at_send_time_bounces_the_address_for_the_next_issue(sample, capsys, store_location):
    """On either engine of the store: the refusal is recorded in the configured store (PostgreSQL too)."""
    people = [email for email, _ in write_subscribers(sample / "list.csv", 5)]
    hard, soft = people[1], people[3]
    sink = Sink(replies={hard: "550 5.1.1 no such user", soft: "452 4.2.2 mailbox full"})
    with Store(store_location) as store:  # the store is the audience: soft bounces count for whom it knows
        store.add("newcomer@example.org", source="confirm")
    with smtp_server(sink) as (host, port):
        path = configure(sample, send={"transport": "smtp", "list": "list.csv", "retries": 0}, smtp=smtp(host, port))
        if isinstance(store_location, str):
            path.write_text(path.read_text(encoding="utf-8") + f'\n[database]\nurl = "{store_location}"\n')
        config = load_config(sample / "broadsheet.toml")
        reporter = Recorder()
        result = send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, reporter)
        assert result.counts["failed"] == 2 and result.counts["sent"] == 4
        assert any(
            line.startswith("refused at send time, recorded as bounces in the subscriber store: 1 hard bounce, "
                            "1 soft bounce; 1 newly suppressed") for line in reporter.infos
        )  # fmt: skip
        with Store(store_location) as store:
            assert store.get(hard).status == "bounced" and store.get(soft).status == "subscribed"
            assert [e.kind for e in store.events(soft)] == ["imported", "bounced_soft"]
        capsys.readouterr()
        assert cli(sample, "status", ISSUE) == 0
        assert "bounced 2 (hard 1, soft 1)" in capsys.readouterr().out
        sink.replies.clear()
        nxt = sample / scheduled(sample, "2021-06-08-next", send_at=None)
        assert send_issue(SendOptions(issue_dir=nxt, yes=True), config, Recorder()).complete
    assert sink.recipients()[hard] == 0 and sink.recipients()[soft] == 1 and sink.recipients()[people[0]] == 2


def test_a_providers_synchronous_rejection_bounces_the_address(api, sample):
    fake, transport = api("postmark")
    people = [email for email, _ in write_subscribers(sample / "list.csv", 3)]
    inactive = "inactive@example.com"
    with open(sample / "list.csv", "a", encoding="utf-8") as handle:
        handle.write(f"{inactive},Ina\n")
    use_fake(sample, "postmark", transport.base_url)
    config = load_config(sample / "broadsheet.toml")
    result = send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, Recorder())
    assert result.counts["failed"] == 1 and sorted(fake.recipients()) == sorted(people)
    with Store.for_project(sample) as store:
        subscriber = store.get(inactive)
        assert subscriber.status == "bounced"
        [event] = [e for e in store.events(inactive) if e.kind == "bounced_hard"]
        assert event.source == "send:postmark" and "406" in event.detail and event.campaign == ISSUE.split("/")[1]


# -- 3. unsubscribes count against their issue --------------------------------------------------------


def test_a_one_click_from_an_issues_link_counts_in_that_issues_status(sample, capsys):
    from support.ports import free_port
    from support.serve import configure as serve_on
    from support.serve import serving

    from broadsheet.faces.serve.app import make_app

    port = free_port()
    serve_on(sample, port)
    people = [email for email, _ in write_subscribers(sample / "list.csv", 4)]
    with Store.for_project(sample) as store:
        store.add("newcomer@example.org")
    sink = Sink()
    with smtp_server(sink) as (host, port_smtp):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port_smtp))
        config = load_config(sample / "broadsheet.toml")
        assert send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, Recorder()).complete
    url = re.search(r"<(http://[^>]+/u/[^>]+)>", sink.by_recipient()[people[2]].message["List-Unsubscribe"])[1]
    with serving(make_app(config), config, port):
        answer = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert answer.status_code == 200
    with Store.for_project(sample) as store:
        [event] = [e for e in store.events(people[2]) if e.kind == "unsubscribed"]
        assert event.campaign == ISSUE.split("/")[1] and event.source == "one-click"
    capsys.readouterr()
    assert cli(sample, "status", ISSUE) == 0
    assert "unsubscribed 1 20.00%" in capsys.readouterr().out


# -- 5. waiting is no error -----------------------------------------------------------------------------


def test_status_of_an_issue_waiting_for_its_send_at_says_when_and_a_broken_one_is_sends_error(sample, capsys):
    outbox_project(sample, 2)
    later = scheduled(sample, "2021-07-01-later", send_at=moment(+3))
    assert cli(sample, "status", later) == 0  # no journal yet
    out = capsys.readouterr().out
    assert out.startswith("2021-07-01-later: scheduled for ") and "broadsheet send --due sends it then" in out
    broken = sample / later / "issue.md"
    broken.write_text(re.sub(r"send_at: .*", "send_at: soon", broken.read_text(encoding="utf-8")), encoding="utf-8")
    assert cli(sample, "send", later, "--yes") == 2
    said_by_send = capsys.readouterr().err
    assert cli(sample, "status", later) == 2
    said_by_status = capsys.readouterr().err
    assert said_by_status == said_by_send and said_by_status.count("\n") == 1
    assert "issue.md:" in said_by_status and "'send_at' is not a date and time: 'soon'" in said_by_status


# -- 6. status with no issue lists every issue -------------------------------------------------------------


def test_status_without_an_issue_lists_every_issue_as_scheduled_sending_or_sent(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 4)]
    later = scheduled(sample, "2021-07-01-later", send_at=moment(+3))
    halfway = scheduled(sample, "2021-06-15-halfway", send_at=None)
    scheduled(sample, "2021-08-01-draft", send_at=None, draft=True)
    scheduled(sample, "2021-09-01-unsent", send_at=None)
    sink = Sink(replies={people[0]: "550 5.1.1 no such user"})
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "retries": 0}, smtp=smtp(host, port))
        config = load_config(sample / "broadsheet.toml")
        send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, Recorder())
        send_issue(SendOptions(issue_dir=sample / halfway, yes=True, limit=1), config, Recorder())
    capsys.readouterr()
    assert cli(sample, "status") == 0
    lines = capsys.readouterr().out.splitlines()
    sent = ISSUE.split("/")[1]
    assert lines[0].startswith(f"{sent}: sent over smtp (started ") and lines[0].endswith("UTC): sent 3, failed 1")
    assert lines[1].startswith("  after sending: bounced 1 (hard 1, soft 0) 33.33%")
    assert lines[2] == "  warning: hard bounces 33.33% are above 2% (providers review accounts at about 5 %): " \
        "clean the list, confirm new sign-ups"  # fmt: skip
    assert lines[3] == "2021-06-15-halfway: sending over smtp: sent 1 of 3, 2 to go"  # the bounced one left out
    assert lines[4].startswith("  after sending: bounced 0 (hard 0, soft 0) 0.00%")
    assert lines[5].startswith("2021-07-01-later: scheduled for ") and later.endswith("later")
    assert lines[6:] == ["2021-08-01-draft: draft (not sent)", "2021-09-01-unsent: not sent"]


# -- 7. same-day issues keep their number order in the archive ------------------------------------------------


def test_same_day_issues_keep_their_number_order_in_the_archive_and_its_links(tmp_path):
    import datetime as dt

    import lxml.html
    from support.archive import dated_issue, sample_project

    from broadsheet.usecases.publish import publish_site

    project = sample_project(tmp_path / "project")
    day = dt.date(2021, 9, 1)
    for number in (10, 9, 11):  # folder names sort 10, 11, 9
        dated_issue(project, number, day, image=False, articles=1)
    site = tmp_path / "site"
    publish_site(load_config(project / "broadsheet.toml"), site)
    index = lxml.html.parse(str(site / "index.html")).getroot()
    order = [a.get("href").split("/")[0] for a in index.cssselect("article.issue h2 a")]
    assert order[:3] == ["2021-09-01-issue-11", "2021-09-01-issue-10", "2021-09-01-issue-9"]
    page = lxml.html.parse(str(site / "2021-09-01-issue-10" / "index.html")).getroot()
    links = {a.get("rel"): a.get("href").split("/")[1] for a in page.cssselect("nav.archive-bar a[rel]")}
    links = {rel: href for rel, href in links.items() if rel in ("prev", "next")}
    assert links == {"prev": "2021-09-01-issue-9", "next": "2021-09-01-issue-11"}


# -- 4. serve says what it does ----------------------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


@contextlib.contextmanager
def serve_log() -> Iterator[list[tuple[int, str]]]:
    """(level, message) of each line serve logs in the block, INFO and up."""
    log = logging.getLogger("broadsheet.faces.serve")
    lines, level = _Lines(), log.level
    log.addHandler(lines)
    log.setLevel(logging.INFO)
    try:
        yield lines.lines
    finally:
        log.removeHandler(lines)
        log.setLevel(level)


def test_serve_says_what_sends_confirmations_and_logs_a_sign_up_from_an_unlisted_site(sample):
    from support.ports import free_port
    from support.serve import configure as serve_on
    from support.serve import serving

    from broadsheet.faces.serve.app import make_app

    port = free_port()
    base = serve_on(sample, port)
    config = load_config(sample / "broadsheet.toml")  # the sample sends through the outbox
    with serve_log() as lines, serving(make_app(config), config, port):
        refused = requests.post(
            f"{base}/subscribe", data={"email": "ann@example.org"},
            headers={"Origin": "https://www.bcecc.example"}, timeout=10,
        )  # fmt: skip
    assert lines[0] == (
        logging.WARNING,
        f"confirmation messages go to the outbox ({sample / 'outbox'}): nobody who signs up will receive one; "
        "set [send] transport to smtp or a provider for serve",
    )
    assert refused.status_code == 403
    [(level, said)] = [line for line in lines if "sign-up refused" in line[1]]
    assert level == logging.WARNING and said.startswith(
        "sign-up refused: the form was posted from https://www.bcecc.example, which [serve] form_origins does not "
        "list; if that is your site, add it to "
    )
    assert said.endswith(': form_origins = ["https://www.bcecc.example"]') and "broadsheet.toml" in said


def test_serve_names_a_real_transport_in_its_log(sample):
    from support.serve import configure as serve_on

    from broadsheet.faces.serve.app import make_app

    serve_on(sample, 8026)
    configure(sample, send={"transport": "smtp"}, smtp={"host": "127.0.0.1", "port": 2525})
    app = make_app(load_config(sample / "broadsheet.toml"))
    try:
        with serve_log() as lines:
            app.say_transport()
    finally:
        app.close()
    assert lines == [(logging.INFO, "confirmation messages are sent through smtp ([send] transport)")]
