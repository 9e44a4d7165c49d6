"""Sequences (issue 20): step files read as issues, `send --due` sending each step when it falls due, once per
subscriber and step, stopped by a suppression; simulate and status. In-process with the send use case, the
outbox or a real aiosmtpd server, and SQLite; time is passed as ``now``, never slept."""

from __future__ import annotations

import email
import email.policy
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from support.reporting import Recorder
from support.smtpd import Sink, configure, smtp_server
from test_send_cli import cli, sample, smtp  # noqa: F401 - sample is the fixture

from broadsheet.core.config import load_config
from broadsheet.data.store import Store
from broadsheet.data.store.sequences import enter, membership
from broadsheet.usecases.campaign import journal_path
from broadsheet.usecases.due import send_due
from broadsheet.usecases.send import SendOptions
from broadsheet.usecases.sequences.timeline import sequence_status, simulate

DAY = 86400.0
STEPS = (("01-hello", "0 days", "Welcome aboard"), ("02-tips", "2 days", "Two tips"), ("03-more", "1 week", "More"))


def write_sequence(project: Path, name: str = "welcome", steps=STEPS) -> Path:
    folder = project / "sequences" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, after, subject in steps:
        (folder / f"{file}.md").write_text(
            f"---\nsubject: {subject}\npreheader: A short note\nafter: {after}\n---\n"
            "Hello {{ subscriber.first_name }}, this is **" + subject + "**.\n",
            encoding="utf-8",
        )
    return folder


def subscribe(project: Path, *emails: str, sequence: str | None = "welcome", at: float | None = None) -> None:
    with Store.for_project(project) as store:
        for email in emails:
            store.add(email, name=f"{email.split('@')[0].title()} Tester")
        if sequence:
            enter(store, sequence, emails, time.time() if at is None else at)


def due(project: Path, now: float, **options) -> Recorder:
    reporter = Recorder()
    send_due(SendOptions(due=True, **options), load_config(project / "broadsheet.toml"), reporter, now=now)
    return reporter


def outbox(project: Path) -> dict[str, list[str]]:
    """Who each step's folder in the outbox holds a message for."""
    folders = sorted(p for p in (project / "outbox").iterdir() if p.is_dir()) if (project / "outbox").exists() else []
    return {f.name: sorted(p.name.split("-", 1)[1][:-4] for p in f.glob("*.eml")) for f in folders}


@pytest.fixture
def seq(sample):
    configure(sample, send={"transport": "outbox"})
    assert load_config(sample / "broadsheet.toml").sequences.welcome == "welcome"  # the sample project's
    write_sequence(sample)
    return sample


def test_each_step_goes_when_due_once_per_subscriber(seq):
    now = time.time()
    subscribe(seq, "ann@example.com", "bob@example.com", at=now)
    assert "step 01-hello: 2 due" in due(seq, now).out
    assert outbox(seq) == {"welcome-01-hello": ["ann@example.com", "bob@example.com"]}
    assert due(seq, now + 60).infos == []  # every minute from cron: nothing twice, nothing said
    assert due(seq, now + 1 * DAY).infos == []  # step 2 waits two days after step 1
    due(seq, now + 2.01 * DAY)
    assert outbox(seq)["welcome-02-tips"] == ["ann@example.com", "bob@example.com"]
    due(seq, now + 9.1 * DAY)
    assert outbox(seq)["welcome-03-more"] == ["ann@example.com", "bob@example.com"]
    subscribe(seq, "cat@example.com", at=now + 9.5 * DAY)  # joins later: starts at step 1, one step a run
    due(seq, now + 9.5 * DAY)
    assert outbox(seq)["welcome-01-hello"] == ["ann@example.com", "bob@example.com", "cat@example.com"]
    assert outbox(seq)["welcome-02-tips"] == ["ann@example.com", "bob@example.com"]
    raw = next((seq / "outbox" / "welcome-01-hello").glob("*ann@example.com.eml")).read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert message["Subject"] == "Welcome aboard" and message["List-Unsubscribe"]
    assert "Hello Ann, this is Welcome aboard" in " ".join(text.split())
    status = sequence_status(load_config(seq / "broadsheet.toml"), "welcome")
    assert [(row.step.name, row.at, row.counts.get("sent", 0)) for row in status.steps] == [
        ("01-hello", 1, 3), ("02-tips", 0, 2), ("03-more", 2, 2)
    ]  # fmt: skip


def test_unsubscribe_bounce_and_complaint_stop_the_sequence(seq):
    now = time.time()
    people = ["ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com"]
    subscribe(seq, *people, at=now)
    due(seq, now)
    with Store.for_project(seq) as store:
        store.set_status("bob@example.com", "unsubscribed", source="test")
        store.suppress("cat@example.com", "bounced", source="test")
        store.suppress("dan@example.com", "complained", source="test")
    due(seq, now + 3 * DAY)
    assert outbox(seq)["welcome-02-tips"] == ["ann@example.com"]
    with Store.for_project(seq) as store:
        assert membership(store, "welcome").stopped == 3
        store.set_status("bob@example.com", "subscribed", source="test", resubscribe=True)
    due(seq, now + 12 * DAY)  # a resubscribe does not resume a stopped sequence
    assert outbox(seq)["welcome-03-more"] == ["ann@example.com"]


def test_one_unsubscribed_after_being_queued_is_dropped_not_sent(seq):
    now = time.time()
    subscribe(seq, "ann@example.com", "bob@example.com", at=now)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(seq, send={"transport": "smtp", "daily_limit": 1}, smtp=smtp(host, port))
        due(seq, now)  # the cap counts real transports only
        assert sum(sink.recipients().values()) == 1  # today's cap: the other stays queued
        first = next(iter(sink.recipients()))
        other = ({"ann@example.com", "bob@example.com"} - {first}).pop()
        with Store.for_project(seq) as store:
            store.set_status(other, "unsubscribed", source="test")
        _back_date(seq, DAY)
        due(seq, now + DAY)
        assert sink.recipients() == {first: 1}


def test_a_crash_leaves_unknown_never_resent_by_itself_and_the_rest_resumes(seq):
    now = time.time()
    sink = Sink()
    subscribe(seq, "ann@example.com", "bob@example.com", "cat@example.com", at=now)
    with smtp_server(sink) as (host, port):
        configure(seq, send={"transport": "smtp", "daily_limit": 1}, smtp=smtp(host, port))
        due(seq, now)
        with sqlite3.connect(journal_path(seq)) as db:  # a batch claimed when the process died
            db.execute("UPDATE recipients SET state = 'sending' WHERE id = (SELECT max(id) FROM recipients)")
        _back_date(seq, DAY)
        configure(seq, send={"transport": "smtp"}, smtp=smtp(host, port))
        due(seq, now + DAY)
    with sqlite3.connect(journal_path(seq)) as db:
        states = dict(db.execute("SELECT email, state FROM recipients"))
    assert sorted(states.values()) == ["sent", "sent", "unknown"]
    assert sorted(sink.recipients()) == sorted(e for e, s in states.items() if s == "sent")
    assert all(n == 1 for n in sink.recipients().values())


def test_two_due_runs_at_once_send_each_step_once(seq):
    now = time.time()
    people = [f"reader{n:03d}@example.com" for n in range(40)]
    subscribe(seq, *people, at=now - 3 * DAY)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(seq, send={"transport": "smtp", "connections": 2}, smtp=smtp(host, port))
        start = threading.Barrier(2)
        reports: list[Recorder] = []

        def run() -> None:
            start.wait()
            reports.append(due(seq, now))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        due(seq, now)  # and a third, after them
    assert sink.recipients() == dict.fromkeys(people, 1)  # step 1 only: step 2 counts from step 1's send


def test_backfill_is_off_unless_asked_and_sign_ups_enter_the_welcome_sequence(seq):
    now = time.time()
    subscribe(seq, "old@example.com", "older@example.com", sequence=None)  # before the sequence ran
    assert due(seq, now).infos == [] and outbox(seq) == {}
    with Store.for_project(seq) as store:
        nonce = store.sign_up("new@example.com", name="New Reader")
        assert nonce is not None and store.confirm("new@example.com", nonce)
        nonce = store.sign_up("unconfirmed@example.com")
    due(seq, time.time())
    assert outbox(seq) == {"welcome-01-hello": ["new@example.com"]}
    report = due(seq, time.time(), backfill=True)
    assert "2 subscriber(s) entered the sequence welcome (--backfill)" in report.out
    assert outbox(seq) == {"welcome-01-hello": ["new@example.com", "old@example.com", "older@example.com"]}


def test_subscribers_add_and_import_with_sequence_enter(seq, capsys):
    assert cli(seq, "subscribers", "add", "eve@example.com") == 0
    assert "entered the sequence welcome" in capsys.readouterr().out
    (seq / "new.csv").write_text("email,name\nfay@example.com,Fay\ngus@example.com,Gus\n", encoding="utf-8")
    assert cli(seq, "subscribers", "import", "new.csv", "--sequence", "welcome") == 0
    assert "2 entered the sequence welcome" in capsys.readouterr().out
    (seq / "more.csv").write_text("email,name\nhal@example.com,Hal\n", encoding="utf-8")
    assert cli(seq, "subscribers", "import", "more.csv") == 0  # without --sequence: nobody enters
    due(seq, time.time())
    assert outbox(seq) == {"welcome-01-hello": ["eve@example.com", "fay@example.com", "gus@example.com"]}


def test_simulate_prints_the_timeline_without_sending(seq, capsys):
    config = load_config(seq / "broadsheet.toml")
    start = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    timeline = simulate(config, "welcome", days=5, now=start)
    assert [(e.step.name, e.at - start) for e in timeline.entries] == [("01-hello", 0), ("02-tips", 2 * DAY)]
    assert timeline.later == 1
    assert cli(seq, "sequences", "simulate", "welcome", "--days", "30") == 0
    out = capsys.readouterr().out
    assert "01-hello" in out and "day  9.0  More" in out and "Two tips" in out
    assert not (seq / "outbox").exists() and not journal_path(seq).exists()


def test_simulate_as_a_member_shows_what_went_and_when_the_rest_goes(seq, capsys):
    now = time.time()
    subscribe(seq, "ann@example.com", at=now)
    due(seq, now)
    assert cli(seq, "sequences", "simulate", "welcome", "--as", "ann@example.com") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("welcome: ann@example.com, from ")
    assert "sent  Welcome aboard" in lines[1] and "sent" not in lines[2]


def test_status_counts_members_and_what_went(seq, capsys):
    now = time.time()
    subscribe(seq, "ann@example.com", "bob@example.com", at=now)
    due(seq, now)
    with Store.for_project(seq) as store:
        store.set_status("bob@example.com", "unsubscribed", source="test")
    due(seq, now + 60)
    assert cli(seq, "sequences", "status", "welcome") == 0
    out = capsys.readouterr().out
    assert "welcome: 1 in it, 1 stopped" in out
    assert "01-hello                 at this step       2   sent 2" in out
    assert cli(seq, "status", "sequences/welcome/01-hello.md") == 0  # the step's campaign, as an issue's
    assert "sent 2" in capsys.readouterr().out
    assert cli(seq, "send", "--backfill", "sequences/welcome/01-hello.md") == 2
    assert "--backfill only goes with --due" in capsys.readouterr().err


def test_a_step_builds_lints_and_goes_as_a_test_copy_but_never_sent_by_hand(seq, capsys):
    step = "sequences/welcome/01-hello.md"
    assert cli(seq, "build", step) == 0
    assert (seq / "dist" / "welcome-01-hello" / "email.html").is_file()
    assert cli(seq, "lint", step) == 0
    subscribe(seq, "ann@example.com")
    assert cli(seq, "send", step, "--test", "me@example.com") == 0
    assert len(list((seq / "outbox" / "welcome-01-hello" / "test").glob("*.eml"))) == 1
    capsys.readouterr()
    assert cli(seq, "send", step, "--yes") == 2
    assert "a sequence step is sent by send --due" in capsys.readouterr().err
    assert not journal_path(seq).exists()


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("subject: Hi\nafter: soon", "01-hello.md:3: 'after' is not a delay"),
        ("subject: Hi", "01-hello.md:1: missing after"),
        ("after: 1 day", "01-hello.md:1: missing subject"),
        ("subject: Hi\nafter: 1 day\ntitle: x", "01-hello.md:4: unknown front matter key 'title'"),
    ],
)
def test_a_bad_step_is_one_line_naming_file_and_line(seq, capsys, front, message):
    (seq / "sequences" / "welcome" / "01-hello.md").write_text(f"---\n{front}\n---\nText.\n", encoding="utf-8")
    assert cli(seq, "sequences", "simulate", "welcome") == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_bad_sequence_is_reported_and_the_others_still_go(seq):
    write_sequence(seq, "broken", (("1-x", "soon", "Broken"),))
    with Store.for_project(seq) as store:
        store.add("ann@example.com")
        enter(store, "welcome", ["ann@example.com"], time.time())
    report = due(seq, time.time())
    assert any("'after' is not a delay" in str(problem) for problem in report.problems)
    assert outbox(seq) == {"welcome-01-hello": ["ann@example.com"]}


def _back_date(project: Path, seconds: float) -> None:
    """Every journal row's time ``seconds`` back: the next run is another day for the daily cap."""
    with sqlite3.connect(journal_path(project)) as db:
        db.execute("UPDATE recipients SET updated = updated - ?", (seconds,))


def test_preview_serves_a_step_and_rebuilds_when_it_changes(seq):
    import http.client

    from broadsheet.faces.preview import Preview

    step = seq / "sequences" / "welcome" / "02-tips.md"
    with Preview(step, port=0, config_path=seq / "broadsheet.toml") as preview:
        assert preview.current.error is None
        connection = http.client.HTTPConnection("127.0.0.1", preview.server.server_address[1], timeout=10)
        connection.request("GET", "/email.html")
        answer = connection.getresponse()
        assert answer.status == 200 and b"Two tips" in answer.read()
        assert preview.builder is not None and step.parent.resolve() in preview.builder.watched()[0]


def test_template_syntax_in_a_step_is_shown_never_run_and_its_subject_stays_one_line(seq, capsys):
    step = seq / "sequences" / "welcome" / "01-hello.md"
    step.write_text(
        "---\nsubject: Hello\nafter: 0 days\n---\nDear {{ subscriber.first_name }}, {{ 7 * 7 }} {% if 1 %}x{% endif %}\n",
        encoding="utf-8",
    )
    subscribe(seq, "ann@example.com")
    due(seq, time.time())
    raw = next((seq / "outbox" / "welcome-01-hello").glob("*.eml")).read_bytes()
    text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Dear Ann, {{ 7 * 7 }} {% if 1 %}x{% endif %}" in " ".join(text.split())
    step.write_text('---\nsubject: "Hello\\r\\nBcc: evil@example.com"\nafter: 0 days\n---\nText.\n', encoding="utf-8")
    assert cli(seq, "build", str(step)) == 2
    err = capsys.readouterr().err
    assert "01-hello.md:2: 'subject' holds the control character U+000D" in err and "one line" in err


def test_steps_go_when_due_once_and_stop_on_unsubscribe_on_either_engine(seq, store_location):
    """send --due reads the members from the configured store (SQLite, or PostgreSQL into the SQLite journal)."""
    if isinstance(store_location, str):
        path = seq / "broadsheet.toml"
        path.write_text(
            path.read_text(encoding="utf-8") + f'\n[database]\nurl = "{store_location}"\n', encoding="utf-8"
        )
    now = time.time()
    people = ["ann@example.com", "bob@example.com", "cat@example.com"]
    with Store(store_location) as store:
        for person in people:
            store.add(person, name=f"{person.split('@')[0].title()} Tester")
        enter(store, "welcome", people, now)
        store.add("later@example.com")
        enter(store, "welcome", ["later@example.com"], now + DAY)  # not due for step 1 yet at `now`
    assert "step 01-hello: 3 due" in due(seq, now).out
    assert outbox(seq) == {"welcome-01-hello": people}
    assert due(seq, now + 60).infos == []  # nothing twice
    with Store(store_location) as store:
        store.set_status("bob@example.com", "unsubscribed", source="test")
    due(seq, now + 2.01 * DAY)
    assert outbox(seq)["welcome-02-tips"] == ["ann@example.com", "cat@example.com"]
    assert outbox(seq)["welcome-01-hello"] == [*people, "later@example.com"]
    status = sequence_status(load_config(seq / "broadsheet.toml"), "welcome")
    assert (status.members.active, status.members.stopped) == (3, 1)
    assert [row.counts.get("sent", 0) for row in status.steps] == [4, 2, 0]
    assert not Store.exists_for(seq) or not isinstance(store_location, str)  # nothing went to SQLite
