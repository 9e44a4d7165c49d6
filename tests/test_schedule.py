"""Scheduled and capped sending: `send_at` + `send --due`, `[send] daily_limit` and the warm-up, and the
dry run / test copies that leave no trace (issues 10 and 11), through the real CLI, aiosmtpd and SQLite."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_send_cli import cli, sample, smtp  # noqa: F401 - sample is the fixture

from broadsheet.core.config import load_config
from broadsheet.data.journal.file import SCHEMA_VERSION
from broadsheet.data.journal.journal import Outcome
from broadsheet.usecases.campaign import Journal, journal_path
from broadsheet.usecases.campaign.caps import DAY, WARMUP, WARMUP_DAYS, daily_cap, day_start, warmup_cap

SAMPLE = "2021-06-01-chengdu-flemish-brabant"
ISSUE = f"issues/{SAMPLE}"


def scheduled(project, name: str, *, send_at: str | None, draft: bool = False) -> str:
    """A copy of the sample issue as issues/<name>, with its own id and subject, and this front matter."""
    folder = project / "issues" / name
    if folder.name != SAMPLE and not folder.exists():
        shutil.copytree(project / ISSUE, folder)
    text = (folder / "issue.md").read_text(encoding="utf-8")
    head, body = text.split("\n---\n", 1)
    head = re.sub(r"^(send_at|draft): .*\n?", "", head, flags=re.M).rstrip("\n")
    head = re.sub(r"^id: .*$", f'id: "{name}"', head, flags=re.M)
    head = re.sub(r"^subject: .*$", f'subject: "Issue {name}"', head, flags=re.M)
    head += (f"\nsend_at: {send_at}" if send_at else "") + ("\ndraft: true" if draft else "")
    (folder / "issue.md").write_text(head + "\n---\n" + body, encoding="utf-8")
    return f"issues/{name}"


def moment(hours: float) -> str:
    """A send_at ``hours`` from now, written with an offset of +02:00."""
    at = dt.datetime.now(dt.timezone(dt.timedelta(hours=2))) + dt.timedelta(hours=hours)
    return at.strftime("%Y-%m-%d %H:%M:%S%z")


def sent_to(project) -> dict[str, int]:
    """Outbox files per issue folder name."""
    outbox = project / "outbox"
    return {folder.name: len(list(folder.glob("*.eml"))) for folder in outbox.iterdir()} if outbox.exists() else {}


def back_date(project, days: float = 1.0) -> None:
    """Move every journal row's time ``days`` back: the next run is 'tomorrow' for the daily cap."""
    with sqlite3.connect(journal_path(project)) as db:
        db.execute("UPDATE recipients SET updated = updated - ?", (days * DAY,))


# -- send_at and send --due --------------------------------------------------------------------------


def test_due_sends_the_issue_whose_time_has_come_once_and_leaves_future_and_draft_ones(sample, capsys):
    write_subscribers(sample / "list.csv", 5)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    due = scheduled(sample, SAMPLE, send_at=moment(-1))
    later = scheduled(sample, "2021-07-01-later", send_at=moment(+3))
    scheduled(sample, "2021-08-01-draft", send_at=moment(-2), draft=True)
    scheduled(sample, "2021-09-01-unscheduled", send_at=None)

    assert cli(sample, "send", "--due") == 0
    out = capsys.readouterr().out
    assert f"send --due: {SAMPLE}" in out and "later" not in out and "draft" not in out
    assert sent_to(sample) == {SAMPLE: 5}
    assert cli(sample, "send", "--due") == 0  # every minute from cron: the finished issue is left alone
    assert capsys.readouterr().out == ""
    assert sent_to(sample) == {SAMPLE: 5}
    assert cli(sample, "status", later) == 0  # waiting for its time: no error
    assert re.fullmatch(
        r"2021-07-01-later: scheduled for \S+ \S+ UTC; broadsheet send --due sends it then \(nothing sent yet\)\n",
        capsys.readouterr().out,
    )
    assert cli(sample, "status", due) == 0
    assert "sent 5" in capsys.readouterr().out


def test_an_issue_scheduled_for_later_is_not_sent_by_hand_without_force(sample, capsys):
    write_subscribers(sample / "list.csv", 2)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    scheduled(sample, SAMPLE, send_at=moment(+1))
    assert cli(sample, "send", ISSUE, "--yes") == 2
    assert "this issue is scheduled: send_at" in capsys.readouterr().err
    assert sent_to(sample) == {} and not journal_path(sample).exists()
    assert cli(sample, "send", ISSUE, "--test", "editor@example.org") == 0  # a test copy is always fine
    assert cli(sample, "send", ISSUE, "--yes", "--force") == 0
    assert len(list((sample / "outbox" / SAMPLE).glob("*.eml"))) == 2


def test_due_with_a_bad_send_at_names_the_line_and_still_sends_the_others(sample, capsys):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    scheduled(sample, SAMPLE, send_at=moment(-1))
    scheduled(sample, "2021-07-01-bad", send_at="next tuesday")
    assert cli(sample, "send", "--due") == 2
    err = capsys.readouterr().err
    assert re.search(r"issues/2021-07-01-bad/issue.md:\d+: 'send_at' is not a date and time", err)
    assert "Traceback" not in err
    assert sent_to(sample) == {SAMPLE: 3}


def test_a_send_at_out_of_range_is_one_line_in_every_command_and_the_others_still_go(sample, capsys):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    scheduled(sample, SAMPLE, send_at=moment(-1))
    bad = scheduled(sample, "2021-07-01-bad", send_at="9999-12-31 23:59:59-12:00")  # year 10000 in UTC
    line = r"issues/2021-07-01-bad/issue.md:\d+: 'send_at' is out of range: 9999-12-31 23:59:59-12:00 \(give"
    for command in (["send", "--due"], ["build", bad], ["publish"]):
        assert cli(sample, *command) == 2, command
        err = capsys.readouterr().err
        assert re.search(line, err) and "Traceback" not in err, command
    assert sent_to(sample) == {SAMPLE: 3}
    for written in ('"0001-01-01 00:00 +12:00"', "1969-12-31 23:00:00Z"):
        scheduled(sample, "2021-07-01-bad", send_at=written)
        assert cli(sample, "build", bad) == 2
        assert "'send_at' is out of range" in capsys.readouterr().err


def test_send_at_without_an_offset_is_utc_and_a_date_alone_is_refused(sample, capsys):
    from broadsheet.core.content import read_schedule

    config = load_config(sample / "broadsheet.toml")
    scheduled(sample, SAMPLE, send_at="2026-12-03 09:00:00")
    assert read_schedule(sample / ISSUE, config).send_at == dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC)
    scheduled(sample, "2021-07-01-offset", send_at='"2026-12-03 09:00 +01:00"')
    assert read_schedule(sample / "issues/2021-07-01-offset", config).send_at.hour == 8
    scheduled(sample, "2021-08-01-date", send_at="2026-12-03")
    assert cli(sample, "build", "issues/2021-08-01-date") == 2
    assert re.search(r"issue.md:\d+: 'send_at' needs a time of day", capsys.readouterr().err)


def test_due_needs_no_issue_and_refuses_what_does_not_go_with_it(sample, capsys):
    assert cli(sample, "send", "--due", ISSUE) == 2
    assert "ISSUE_DIR does not go with --due" in capsys.readouterr().err
    assert cli(sample, "send") == 2
    assert "or --due" in capsys.readouterr().err


def test_two_due_runs_at_once_send_each_message_once(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 12)]
    sink = Sink(hold_after=1)  # the run that sends waits on its second message until the other has ended
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "connections": 1}, smtp=smtp(host, port))
        scheduled(sample, SAMPLE, send_at=moment(-0.5))
        env = {
            **os.environ,
            "BROADSHEET_SECRET": "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0",
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", "broadsheet", "send", "--due"]
        runs = [
            subprocess.Popen(command, cwd=sample, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 60
            while all(run.poll() is None for run in runs) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            sink.released.set()
        results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert sink.recipients() == {email: 1 for email in people}
    outs = [out for out, _ in results]
    assert sum("another send is running" in out for out in outs) == 1, outs
    assert sum(f"send --due: {SAMPLE}" in out for out in outs) == 1, outs


# -- the daily cap -------------------------------------------------------------------------------------


def test_a_capped_campaign_stops_at_the_limit_and_goes_on_the_next_day(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 10)]
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "daily_limit": 4}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes") == 0
        out = capsys.readouterr().out
        assert re.search(
            r"daily limit reached: 4 sent today \(daily limit: 4\); the rest \(6\) stays queued "
            r"and goes with the next send of this issue after \d{4}-\d\d-\d\d 00:00 UTC",
            out,
        ), out
        assert len(sink.received) == 4
        assert cli(sample, "status", ISSUE) == 0
        status = capsys.readouterr().out
        assert "left: 6; daily limit: 4 a day, 4 sent today: today's cap is used up" in status
        tomorrow = dt.datetime.fromtimestamp(day_start(time.time()) + DAY, dt.UTC).strftime("%Y-%m-%d")
        assert f"at the daily cap they go: {tomorrow} 4," in status

        assert cli(sample, "send", ISSUE, "--yes") == 0  # the same day: nothing more goes
        assert "daily limit reached: 4 sent today" in capsys.readouterr().out
        assert len(sink.received) == 4

        back_date(sample)  # a day later
        assert cli(sample, "send", ISSUE, "--yes") == 0
        assert "this run: sent 4" in capsys.readouterr().out
        back_date(sample)
        assert cli(sample, "send", ISSUE, "--yes") == 0
        out = capsys.readouterr().out
        assert "this run: sent 2" in out and "daily limit reached" not in out
    assert sink.recipients() == {email: 1 for email in people}


def test_due_goes_on_with_a_capped_campaign_with_the_next_days_run(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 5)]
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "daily_limit": 3}, smtp=smtp(host, port))
        scheduled(sample, SAMPLE, send_at=moment(-1))
        assert cli(sample, "send", "--due") == 0
        assert "daily limit reached: 3 sent today" in capsys.readouterr().out
        assert cli(sample, "send", "--due") == 0  # every minute until midnight UTC: quiet, nothing sent
        assert capsys.readouterr().out == ""
        assert len(sink.received) == 3
        back_date(sample)
        assert cli(sample, "send", "--due") == 0
        assert "this run: sent 2" in capsys.readouterr().out
    assert sink.recipients() == {email: 1 for email in people}


def test_the_outbox_is_not_capped_and_its_files_are_not_counted(sample, capsys):
    write_subscribers(sample / "list.csv", 6)
    configure(sample, send={"transport": "outbox", "list": "list.csv", "daily_limit": 2})
    assert cli(sample, "send", ISSUE, "--yes") == 0
    assert sent_to(sample) == {SAMPLE: 6}
    with Journal.for_project(sample) as journal:
        assert journal.sent_between(day_start(time.time()), time.time() + 1) == 0


def test_the_warm_up_grows_each_day_for_six_weeks():
    assert WARMUP[0] == 200 and len(WARMUP) == WARMUP_DAYS == 42
    assert all(later > earlier for earlier, later in itertools.pairwise(WARMUP))
    assert all(later <= earlier * 1.3 for earlier, later in itertools.pairwise(WARMUP))  # never a jump
    assert warmup_cap(1) == 200 and warmup_cap(42) == WARMUP[-1] >= 300_000 and warmup_cap(43) is None


def test_the_cap_is_the_smaller_of_the_daily_limit_and_the_warm_up_counted_from_the_journal(sample):
    configure(sample, send={"transport": "smtp", "list": "list.csv", "daily_limit": 700, "warmup": True})
    config = load_config(sample / "broadsheet.toml")
    now = time.time()
    with Journal.for_project(sample, lock=True) as journal:
        assert daily_cap(config, journal, "smtp", now).limit == 200  # nothing sent yet: day 1 is today
        record, _ = journal.start_campaign("c1", "smtp", "issues/x", "fp", slug="x")
        journal.load_recipients(record, "fp", [(f"r{i}@example.com", i, "[]") for i in range(30)])
        rows = journal.claim(journal.current("c1", "smtp"), 30, now)
        journal.record(Outcome(row.id, "sent") for row in rows)
        back = day_start(now) - 9 * DAY + 60  # the first message went out nine days ago: today is day 10
        journal.db.execute("UPDATE recipients SET updated = ? WHERE id = ?", (back, rows[0].id))
        cap = daily_cap(config, journal, "smtp", now)
        assert (cap.limit, cap.sent_today, cap.reason) == (700, 29, "daily limit")  # day 10 allows 1,000
        assert daily_cap(config, journal, "outbox", now) is None
    configure(sample, send={"transport": "smtp", "warmup": True, "warmup_start": "2000-01-01"})
    with Journal.for_project(sample) as journal:
        assert daily_cap(load_config(sample / "broadsheet.toml"), journal, "smtp", now) is None  # warm-up over


def test_a_warmup_start_that_is_no_date_is_a_config_error(sample, capsys):
    write_subscribers(sample / "list.csv", 2)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(
            sample,
            send={"transport": "smtp", "list": "list.csv", "warmup": True, "warmup_start": "monday"},
            smtp=smtp(host, port),
        )
        assert cli(sample, "send", ISSUE, "--yes") == 2
    err = capsys.readouterr().err
    assert re.search(r"broadsheet.toml:\d+: 'warmup_start' is not a date", err) and not sink.received


def test_the_day_count_and_the_first_send_read_the_sent_index(sample):
    statements = []
    with Journal.for_project(sample) as journal:
        journal.db.set_trace_callback(statements.append)
        journal.sent_between(0, 1)
        journal.first_sent()
        journal.db.set_trace_callback(None)
        for statement in statements:  # the statements the journal really ran
            plan = " ".join(row[-1] for row in journal.db.execute("EXPLAIN QUERY PLAN " + statement))
            assert "USING INDEX recipients_sent" in plan and "TEMP B-TREE" not in plan, (statement, plan)
    assert len(statements) == 2


def test_a_schema_2_journal_gains_the_sent_index(sample, capsys):
    write_subscribers(sample / "list.csv", 2)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes") == 0
    with sqlite3.connect(journal_path(sample)) as db:
        db.execute("DROP INDEX recipients_sent")
        db.execute("PRAGMA user_version=2")
    assert cli(sample, "send", ISSUE, "--yes") == 0
    with sqlite3.connect(journal_path(sample)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'recipients_sent'").fetchone()


# -- dry runs and test copies leave no trace ------------------------------------------------------------


def test_a_dry_run_writes_nothing_to_an_existing_journal(sample, capsys):
    write_subscribers(sample / "list.csv", 4)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    other = scheduled(sample, "2021-07-01-other", send_at=None)
    assert cli(sample, "send", other, "--yes") == 0
    before = journal_path(sample).read_bytes()
    assert cli(sample, "send", ISSUE, "--dry-run", "--limit", "3") == 0
    out = capsys.readouterr().out
    assert "dry run: composed 3 message(s)" in out and "nothing written" in out
    assert journal_path(sample).read_bytes() == before
    assert cli(sample, "status", ISSUE) == 2
    assert "no send has started for this issue" in capsys.readouterr().err


def test_test_copies_go_to_their_own_folder_without_the_secret(sample, capsys, monkeypatch):
    monkeypatch.delenv("BROADSHEET_SECRET")
    write_subscribers(sample / "list.csv", 2)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--test", "editor@example.org") == 0
    err = capsys.readouterr().err
    assert "BROADSHEET_SECRET is not set" in err and "throw-away" in err
    copies = list((sample / "outbox" / SAMPLE / "test").glob("*.eml"))
    assert [copy.name for copy in copies] == ["1-editor@example.org.eml"]
    assert b"Subject: [TEST] " in copies[0].read_bytes()
    assert list((sample / "outbox" / SAMPLE).glob("*.eml")) == []  # the campaign's folder stays the readers'
    assert cli(sample, "send", ISSUE, "--yes") == 0  # the outbox mails no one: a throw-away secret is enough
    assert sent_to(sample) == {SAMPLE: 2}
    assert len(list((sample / "outbox" / SAMPLE / "test").glob("*.eml"))) == 1


def refused_by_a_real_send(sample, capsys) -> str:
    """What a real send over SMTP to two readers said on stderr, having sent nothing and journaled nothing."""
    write_subscribers(sample / "list.csv", 2)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes") == 2
    assert not sink.received and not journal_path(sample).exists()
    err = capsys.readouterr().err
    assert "python -c 'import secrets; print(secrets.token_urlsafe(32))'" in err and err.count("\n") == 1
    return err


def test_a_real_send_without_the_secret_says_what_it_is_for_and_how_to_make_one(sample, capsys, monkeypatch):
    monkeypatch.delenv("BROADSHEET_SECRET")
    err = refused_by_a_real_send(sample, capsys)
    assert "environment variable BROADSHEET_SECRET: not set: it signs each reader's unsubscribe link" in err


@pytest.mark.parametrize(
    "weak", ["x", " " * 40, "ab" * 32, "demo-only-not-a-real-secret"], ids=["one-char", "spaces", "abab", "make-demo"]
)
def test_a_weak_secret_is_refused_by_a_real_send_and_kept_by_the_outbox(sample, capsys, monkeypatch, weak):
    """One received message is enough to guess a weak secret by brute force and forge anyone's link."""
    monkeypatch.setenv("BROADSHEET_SECRET", weak)
    err = refused_by_a_real_send(sample, capsys)
    assert err.startswith("broadsheet: error: environment variable BROADSHEET_SECRET: too weak to sign links: it ")
    assert len(weak.strip()) < 8 or weak not in err
    configure(sample, send={"transport": "outbox", "list": "list.csv"})  # make demo: copies that reach no reader
    assert cli(sample, "send", ISSUE, "--test", "editor@example.org") == 0
    assert cli(sample, "send", ISSUE, "--yes") == 0
    assert sent_to(sample) == {SAMPLE: 2}
