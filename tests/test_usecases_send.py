"""send_issue and send_due in-process, told through a recording Reporter: real outbox, SMTP server and SQLite."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
from support.reporting import Recorder
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_schedule import moment, scheduled, sent_to
from test_send_cli import sample, smtp  # noqa: F401 - sample is the fixture

from broadsheet.core.config import Config, load_config
from broadsheet.core.errors import CampaignError
from broadsheet.data.journal.engines import open_journal_for
from broadsheet.data.store import Store
from broadsheet.usecases.due import send_due
from broadsheet.usecases.send import SendOptions, resume_command, send_issue

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"


def outbox_project(project: Path, people: int) -> tuple[Config, list[str]]:
    emails = [email for email, _ in write_subscribers(project / "list.csv", people)]
    configure(project, send={"transport": "outbox", "list": "list.csv"})
    return load_config(project / "broadsheet.toml"), emails


def states(project: Path) -> dict[str, str]:
    """Each recipient's state in the project's configured journal (SQLite or PostgreSQL)."""
    with open_journal_for(load_config(project / "broadsheet.toml"), read_only=True) as journal:
        return dict(journal.db.execute("SELECT email, state FROM recipients"))


def test_a_send_to_the_outbox_asks_once_then_resumes_where_the_limit_stopped_it(sample):
    config, people = outbox_project(sample, 5)
    options = SendOptions(issue_dir=sample / ISSUE, limit=3)
    first = Recorder()
    result = send_issue(options, config, first)
    assert result.complete and result.counts["sent"] == 3 and result.counts["queued"] == 2
    assert len(first.questions) == 1 and "to 3 recipient(s) via outbox" in first.questions[0]
    assert "list.csv: 5 recipient(s)" in first.infos and "campaign: queued 2, sent 3" in first.infos
    assert not first.warnings
    again = Recorder()
    result = send_issue(dataclasses.replace(options, limit=None, yes=True), config, again)
    assert again.questions == []  # --yes: nobody asked
    assert "list.csv: unchanged since this campaign started; resuming" in again.infos
    assert result.counts["sent"] == 5 and states(sample) == dict.fromkeys(people, "sent")
    assert len(list((sample / "outbox").rglob("*.eml"))) == 5


def test_a_send_not_confirmed_is_no_error_sends_nobody_and_says_it_waits(sample):
    config, _ = outbox_project(sample, 3)
    declined = Recorder(answer=False)
    result = send_issue(SendOptions(issue_dir=sample / ISSUE), config, declined)
    assert result.complete and result.counts["queued"] == 3  # exit code 0: not an error
    assert declined.infos[-1].startswith("not sent: the campaign is set up with 3 recipient(s) to go, and waits")
    assert declined.infos[-1].endswith(f"\n  broadsheet send {sample / ISSUE}")
    assert not list(sample.glob("outbox/**/*.eml"))
    assert set(states(sample).values()) == {"queued"}


def test_the_same_subject_sent_lately_is_refused_then_forced(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 4)]
    copy = sample / "issues" / "2021-06-08-copy"  # the same subject under another id: a copy not yet edited
    shutil.copytree(sample / ISSUE, copy)
    text = re.sub(r"^id: .*$", 'id: "2021-06-08-copy"', (copy / "issue.md").read_text(encoding="utf-8"), flags=re.M)
    (copy / "issue.md").write_text(text, encoding="utf-8")
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        config = load_config(sample / "broadsheet.toml")
        assert send_issue(SendOptions(issue_dir=sample / ISSUE, yes=True), config, Recorder()).complete
        refused = Recorder()
        with pytest.raises(CampaignError, match=r"4 recipient\(s\) got an issue with this subject") as caught:
            send_issue(SendOptions(issue_dir=copy, yes=True), config, refused)
        assert "add --force" in str(caught.value)
        assert len(refused.warnings) == 1 and "got “" in refused.warnings[0]
        assert sink.recipients() == dict.fromkeys(people, 1)
        forced = Recorder()
        assert send_issue(SendOptions(issue_dir=copy, yes=True, force=True), config, forced).complete
        assert "sending to them again (--force)" in forced.warnings
    assert sink.recipients() == dict.fromkeys(people, 2)


def test_a_failed_recipient_is_reported_and_sent_again_only_with_retry_failed(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 4)]
    sink = Sink(replies={people[1]: "554 5.7.1 refused by policy"})  # a 5.1.1 would bounce the address for good
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "retries": 0}, smtp=smtp(host, port))
        config = load_config(sample / "broadsheet.toml")
        options = SendOptions(issue_dir=sample / ISSUE, yes=True)
        reporter = Recorder()
        result = send_issue(options, config, reporter)
        assert not result.complete and result.counts["failed"] == 1
        assert any("send to them again with --retry-failed" in line for line in reporter.infos)
        sink.replies.clear()
        again = Recorder()
        assert send_issue(dataclasses.replace(options, retry_failed=True), config, again).complete
        assert "re-queued 1 failed recipient(s)" in again.infos
    assert sink.recipients() == dict.fromkeys(people, 1)


def test_a_test_copy_and_a_dry_run_leave_no_journal(sample, monkeypatch):
    monkeypatch.delenv("BROADSHEET_SECRET")
    config, _ = outbox_project(sample, 3)
    reporter = Recorder()
    options = SendOptions(issue_dir=sample / ISSUE, test="editor@example.net", as_email="reader0001@example.com")
    assert send_issue(options, config, reporter).complete
    assert len(reporter.infos) == 1
    assert reporter.infos[0].startswith(
        "test copy to editor@example.net (personalised as reader0001@example.com): sent"
    )
    assert any("throw-away secret" in line for line in reporter.warnings)  # no secret: said, not printed
    dry = Recorder()
    assert send_issue(SendOptions(issue_dir=sample / ISSUE, dry_run=True), config, dry).complete
    assert dry.infos[-1].startswith("dry run: composed 3 message(s)")
    assert not (sample / ".broadsheet" / "state.db").exists()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "no issue to send"),
        ({"issue_dir": Path("x"), "as_email": "a@example.com"}, "--as only goes with --test"),
        ({"issue_dir": Path("x"), "test": "a@example.com", "limit": 2}, "--limit does not go with --test"),
        ({"due": True, "resend_all": True}, "--resend-all does not go with --due"),
        ({"issue_dir": Path("x"), "limit": 0}, "--limit must be 1 or more"),
    ],
)
def test_options_that_do_not_go_together_are_refused_when_made(given, message):
    with pytest.raises(CampaignError, match=message):
        SendOptions(**given)


def test_the_resume_command_names_what_the_send_was_given():
    options = SendOptions(
        issue_dir=Path("issues/a b"), list_file=Path("l.csv"), segments=("x",), transport="smtp", config_file="c.toml"
    )
    assert resume_command(options) == (
        "broadsheet --config c.toml send 'issues/a b' --list l.csv --segment x --transport smtp"
    )


def test_send_due_sends_what_is_due_once_and_tells_a_bad_issue_as_a_problem(sample):
    config, _ = outbox_project(sample, 2)
    scheduled(sample, "2021-07-01-past", send_at=moment(-1))
    scheduled(sample, "2021-08-01-later", send_at=moment(5))
    bad = sample / scheduled(sample, "2021-09-01-bad", send_at=None)
    text = (bad / "issue.md").read_text(encoding="utf-8").replace('id: "2021-09-01-bad"', "send_at: soon")
    (bad / "issue.md").write_text(text, encoding="utf-8")
    reporter = Recorder()
    result = send_due(SendOptions(due=True), config, reporter)
    assert result.errors == 1 and "send_at" in str(reporter.problems[0])
    assert [sent.counts["sent"] for sent in result.sent] == [2]
    assert any(line.startswith("send --due: 2021-07-01-past (send_at ") for line in reporter.infos)
    assert reporter.questions == []  # --due implies --yes
    again = send_due(SendOptions(due=True), config, Recorder())
    assert again.sent == [] and sent_to(sample) == {"2021-07-01-past": 2}


def store_project(project: Path, location: Path | str, people: int) -> tuple[Config, list[str]]:
    """The project sending from its subscriber store at ``location`` (the SQLite file, or PostgreSQL)."""
    path = configure(project, send={"transport": "outbox", "list": "none.csv"})
    if isinstance(location, str):
        path.write_text(path.read_text(encoding="utf-8") + f'\n[database]\nurl = "{location}"\n', encoding="utf-8")
    emails = [f"reader{n:02}@example.com" for n in range(people)]
    with Store(location) as store:
        for n, email in enumerate(emails):
            store.add(email, name=f"Reader {n}", tags=["news"] if n % 2 else ["art"])
        store.add("cy@example.com", status="unconfirmed")
        store.add("dee@example.com")
        store.set_status("dee@example.com", "unsubscribed", source="one-click")
    return load_config(path), emails


def test_a_send_from_the_store_mails_the_same_people_on_either_engine_and_resumes_once(sample, store_location):
    """Who gets the issue, an unsubscribe recorded while the campaign waits honoured before its next batch,
    and a resume that sends no one twice: the same with the store in SQLite or in PostgreSQL."""
    config, people = store_project(sample, store_location, 6)
    options = SendOptions(issue_dir=sample / ISSUE, limit=2, yes=True)
    first = Recorder()
    assert send_issue(options, config, first).counts["sent"] == 2
    assert any(line.startswith("audience: the subscriber store") for line in first.infos)
    store_name = "audience.db" if isinstance(store_location, Path) else "(PostgreSQL store)"
    assert any(store_name in line and "6 recipient(s)" in line for line in first.infos)
    sent_first = {email for email, state in states(sample).items() if state == "sent"}
    assert set(states(sample)) == set(people)  # not the unconfirmed, not the unsubscribed
    gone = sorted(set(people) - sent_first)[0]
    with Store(store_location) as store:  # as serve records a one-click while the campaign waits
        store.set_status(gone, "unsubscribed", source="one-click")
        store.set_status(sorted(sent_first)[0], "unsubscribed", source="one-click")  # after its copy: kept sent
    result = send_issue(dataclasses.replace(options, limit=None), config, Recorder())
    assert result.complete and result.counts["sent"] == 5 and not result.counts.get("queued")
    sent = {email for email, state in states(sample).items() if state == "sent"}
    assert sent == set(people) - {gone}  # the list reloaded: the unsubscribed row dropped, never sent
    assert len(list((sample / "outbox").rglob("*.eml"))) == 5  # each once
    assert send_issue(dataclasses.replace(options, limit=None), config, Recorder()).counts["sent"] == 5
    assert len(list((sample / "outbox").rglob("*.eml"))) == 5  # nothing sent twice


def test_a_dry_run_a_segment_and_a_test_copy_from_the_store_on_either_engine(sample, store_location):
    config, people = store_project(sample, store_location, 6)
    dry = Recorder()
    assert send_issue(SendOptions(issue_dir=sample / ISSUE, dry_run=True, segments=("news",)), config, dry).complete
    assert dry.infos[-1].startswith("dry run: composed 3 message(s)")
    assert any("not in segment" in line for line in dry.infos)
    test = Recorder()
    options = SendOptions(issue_dir=sample / ISSUE, test="editor@example.net", as_email=people[1])
    assert send_issue(options, config, test).complete
    assert test.infos[0].startswith(f"test copy to editor@example.net (personalised as {people[1]}): sent")
    assert not (sample / ".broadsheet" / "state.db").exists()
