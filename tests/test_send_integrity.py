"""Nothing sent twice, no traceback: campaign identity, recent same-subject sends, the send lock, the
journal's file (empty, foreign, old, read-only, locked, removed mid-send) and signals before the runner.

Real processes (`python -m broadsheet send`), a real SMTP server, real SQLite held by another process,
real read-only files (see support/unprivileged.py for running as root).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from support.unprivileged import without_permission_override
from test_send_cli import cli, sample  # noqa: F401 - sample is a fixture

from broadsheet.core.compose import Composer, RecipientRejected
from broadsheet.core.config import Smtp
from broadsheet.core.content import read_issue
from broadsheet.core.errors import CampaignError, ContentError
from broadsheet.core.render import read_and_build
from broadsheet.data.journal.file import APPLICATION_ID, SCHEMA_VERSION
from broadsheet.data.journal.journal import pending_path
from broadsheet.data.subscriber_list import CsvList
from broadsheet.delivery.transports.smtp import SmtpTransport
from broadsheet.faces.commands import send as send_command
from broadsheet.usecases.campaign import CampaignRunner, Journal, Settings, prepare_campaign
from broadsheet.usecases.send import SendOptions

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
ENV = {**os.environ, "BROADSHEET_SECRET": "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0", "PYTHONUNBUFFERED": "1"}


def send_process(project, *args: str, **options) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "broadsheet", "send", *args],
        cwd=project,
        env=with_database_password(ENV),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def with_database_password(env: dict[str, str]) -> dict[str, str]:
    """``env`` and the test database's password when a fixture set it (``postgres_url``)."""
    password = os.environ.get("BROADSHEET_DATABASE_PASSWORD")
    return {**env, "BROADSHEET_DATABASE_PASSWORD": password} if password else env


def send(project, *args: str, timeout: float = 60, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "broadsheet", "send", *args],
        cwd=project,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        **options,
    )


def states(project) -> dict[str, str]:
    with sqlite3.connect(project / ".broadsheet" / "state.db") as db:
        return dict(db.execute("SELECT email, state FROM recipients"))


@dataclass
class Ran:
    returncode: int
    stderr: str


def one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("broadsheet: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def smtp(host, port, **extra):
    return {"host": host, "port": port, "security": "none", "timeout": 10, **extra}


def outbox_files(project) -> list[Path]:
    return list((project / "outbox").rglob("*.eml"))


def set_front_matter(folder: Path, key: str, value: str | None) -> None:
    """Replace (or with None remove) one front-matter line of the issue."""
    path = folder / "issue.md"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(f"{key}:")]
    if value is not None:
        lines.insert(1, f"{key}: {value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- identity ---------------------------------------------------------------------------------------


def test_a_renamed_moved_and_edited_issue_resumes_its_campaign(sample, capsys):
    people = {email for email, _ in write_subscribers(sample / "list.csv", 9)}
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes", "--limit", "3") == 0
        renamed = sample / "issues" / "2021-06-01-partnership"
        (sample / ISSUE).rename(renamed)
        set_front_matter(renamed, "subject", '"Chengdu and Flemish Brabant: ten years on"')  # content edited
        assert cli(sample, "send", str(renamed), "--yes", "--limit", "3") == 0
        moved = sample / "archive" / "2021" / "partnership"
        moved.parent.mkdir(parents=True)
        renamed.rename(moved)
        assert cli(sample, "send", str(moved), "--yes") == 0
        assert "nothing to send" not in capsys.readouterr().out
        assert cli(sample, "send", str(moved), "--yes") == 0
        assert "nothing to send: sent 9" in capsys.readouterr().out
    assert sink.recipients() == {email: 1 for email in people}
    with sqlite3.connect(sample / ".broadsheet" / "state.db") as db:
        assert db.execute("SELECT key, slug, issue_dir FROM campaigns").fetchall() == [
            ("2021-06-01-5c1e7a9b", "partnership", "archive/2021/partnership")
        ]


def test_new_writes_a_unique_id_that_the_issue_model_reads(sample):
    assert cli(sample, "new", "Spring news", "--date", "2026-03-01") == 0
    assert cli(sample, "new", "Summer news", "--date", "2026-03-01") == 0
    spring = read_issue(sample / "issues" / "2026-03-01-spring-news", _config(sample))
    summer = read_issue(sample / "issues" / "2026-03-01-summer-news", _config(sample))
    assert spring.id and summer.id and spring.id != summer.id
    assert spring.id.startswith("2026-03-01-")


@pytest.mark.parametrize("value", ["[1, 2]", "true", '"has space"', '""', '"a/b"'])
def test_an_id_that_is_not_a_short_text_is_an_error_with_its_line(sample, value):
    folder = sample / ISSUE
    set_front_matter(folder, "id", value)
    with pytest.raises(ContentError, match="'id' must be a short text") as caught:
        read_issue(folder, _config(sample))
    assert caught.value.where == f"{folder / 'issue.md'}:2"


def _config(project):
    from broadsheet.core.config import load_config

    return load_config(project / "broadsheet.toml")


# A journal as broadsheet wrote it before campaigns had an identity (schema 1, no application id).
SCHEMA_1 = """
CREATE TABLE campaigns (id INTEGER PRIMARY KEY, slug TEXT NOT NULL, transport TEXT NOT NULL,
    issue_dir TEXT NOT NULL DEFAULT '', list_fingerprint TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL, UNIQUE (slug, transport));
CREATE TABLE recipients (id INTEGER PRIMARY KEY, campaign INTEGER NOT NULL REFERENCES campaigns(id),
    email TEXT NOT NULL COLLATE NOCASE, line INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL DEFAULT '{}',
    generation INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '', message_id TEXT NOT NULL DEFAULT '', next_attempt REAL NOT NULL DEFAULT 0,
    updated REAL NOT NULL DEFAULT 0, UNIQUE (campaign, email));
"""


def test_a_journal_from_before_ids_is_migrated_and_its_campaign_resumed(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 6)]
    (sample / ".broadsheet").mkdir(exist_ok=True)
    with sqlite3.connect(sample / ".broadsheet" / "state.db") as db:
        db.executescript(SCHEMA_1)
        db.execute(
            "INSERT INTO campaigns VALUES (1, '2021-06-01-chengdu-flemish-brabant', 'smtp', ?, 'old', 1, "
            "'2026-11-30 10:00:00')",
            (ISSUE,),
        )
        db.executemany(
            "INSERT INTO recipients (campaign, email, generation, state, updated) VALUES (1, ?, 1, 'sent', ?)",
            [(email, time.time() - 3600) for email in people[:4]],
        )
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes") == 0  # the issue now has an id: the old campaign is adopted
    assert sorted(sink.recipients()) == people[4:]
    with sqlite3.connect(sample / ".broadsheet" / "state.db") as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT id, key, issue_id FROM campaigns").fetchall() == [
            (1, "2021-06-01-5c1e7a9b", "2021-06-01-5c1e7a9b")
        ]


# -- the same subject sent lately -------------------------------------------------------------------


def test_an_issue_without_id_renamed_after_a_send_is_refused_then_forced(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 5)]
    set_front_matter(sample / ISSUE, "id", None)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes") == 0
        renamed = sample / "issues" / "renamed"
        (sample / ISSUE).rename(renamed)
        capsys.readouterr()
        assert cli(sample, "send", str(renamed), "--yes") == 2
        err = capsys.readouterr().err
        assert (
            "5 recipient(s) got an issue with this subject in the last 7 days (campaign "
            "2021-06-01-chengdu-flemish-brabant" in err
        )
        assert 'put id: "2021-06-01-chengdu-flemish-brabant" in its issue.md' in err and "--force" in err
        assert sink.recipients() == {email: 1 for email in people}
        set_front_matter(renamed, "id", '"2021-06-01-chengdu-flemish-brabant"')  # the fix the error gives
        assert cli(sample, "send", str(renamed), "--yes") == 0
        assert "nothing to send: sent 5" in capsys.readouterr().out
        set_front_matter(renamed, "id", None)
        assert cli(sample, "send", str(renamed), "--yes", "--force") == 0
    assert sink.recipients() == {email: 2 for email in people}


def test_another_issue_with_the_same_subject_is_refused_but_not_for_new_readers(sample, capsys):
    write_subscribers(sample / "list.csv", 4)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes") == 0
        copy = sample / "issues" / "2021-06-08-copy"
        shutil.copytree(sample / ISSUE, copy)
        set_front_matter(copy, "id", '"2021-06-08-0a0b0c0d"')  # a new issue whose subject was not changed
        with open(sample / "other.csv", "w", encoding="utf-8") as handle:
            handle.write("email,name\nnew.reader@example.org,New Reader\n")
        assert cli(sample, "send", str(copy), "--yes", "--list", "other.csv") == 0  # nobody got it yet
        assert cli(sample, "send", str(copy), "--yes") == 2
        assert "4 recipient(s) got an issue with this subject" in capsys.readouterr().err
        set_front_matter(copy, "subject", '"BCECC Newsletter: the next issue"')
        assert cli(sample, "send", str(copy), "--yes") == 0
    assert sum(sink.recipients().values()) == 4 + 1 + 4


def test_the_recent_send_check_is_one_indexed_join(tmp_path):
    """The check reads each earlier same-subject campaign's rows by index, never scanning the table."""
    from broadsheet.core.audience import Subscriber

    readers = [Subscriber(f"r{i}@example.com", "", "", (), {}, i) for i in range(50)]
    with Journal.for_project(tmp_path) as journal:
        for key in ("one", "two"):
            record = prepare_campaign(
                journal,
                slug=key,
                transport="smtp",
                issue_dir=key,
                fingerprint="f",
                subscribers=readers,
                issue_id=key,
                subject="Hello",
            ).record
        journal.db.execute("UPDATE recipients SET state = 'sent', updated = ? WHERE campaign = 1", (time.time(),))
        statements = []
        journal.db.set_trace_callback(statements.append)
        assert journal.recent_same_subject(record)[0].recipients == 50
        journal.db.set_trace_callback(None)
        [join] = [sql for sql in statements if " JOIN " in sql]
        plan = " ".join(str(row) for row in journal.db.execute("EXPLAIN QUERY PLAN " + join))
    assert "SCAN" not in plan and plan.count("USING INDEX") == 2, plan


# -- the journal's file ---------------------------------------------------------------------------------


def foreign_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")


def other_application(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_1)
        db.execute("PRAGMA application_id = 1234")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: path.write_bytes(b""), "the send journal is empty (0 bytes)"),
        (foreign_database, "another program's database"),
        (other_application, "another program's database"),
        (lambda path: path.write_bytes(b"SQLite format 3\0" + b"\xff" * 200), "not a journal broadsheet wrote"),
    ],
    ids=["empty", "foreign", "other-application-id", "damaged"],
)
def test_an_empty_or_foreign_journal_is_an_error_not_a_fresh_start(sample, make, message, capsys):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    journal = sample / ".broadsheet" / "state.db"
    journal.parent.mkdir(exist_ok=True)
    make(journal)
    before = journal.read_bytes()
    assert cli(sample, "send", ISSUE, "--yes") == 2
    one_line_error(Ran(2, capsys.readouterr().err), str(journal), message)
    assert not outbox_files(sample) and journal.read_bytes() == before


def test_a_journal_crash_during_creation_leaves_no_empty_file(tmp_path):
    with Journal.for_project(tmp_path) as journal:
        assert journal.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert [p.name for p in (tmp_path / ".broadsheet").iterdir() if p.name.endswith(".new")] == []


@pytest.mark.parametrize("case", ["file", "folder", "project"])
def test_read_only_journal_file_or_folder_is_one_line(sample, case):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes", "--limit", "1") == 0  # the journal exists, one sent
    journal = sample / ".broadsheet" / "state.db"
    before = outbox_files(sample)
    target, mode = {"file": (journal, 0o444), "folder": (journal.parent, 0o555), "project": (sample, 0o333)}[case]
    target.chmod(mode)
    try:
        result = send(sample, ISSUE, "--yes", preexec_fn=without_permission_override)
    finally:
        target.chmod(0o755 if target.is_dir() else 0o644)
    expected = {
        "file": (f"{journal}: the send journal is read-only", "chmod u+w"),
        "folder": (f"{journal.parent}: the send journal's folder is read-only", "state.db-wal"),
        "project": (f"{sample}: cannot open the project folder to take the send lock", "readable"),
    }[case]
    one_line_error(result, *expected)
    assert outbox_files(sample) == before
    assert sorted(states(sample).values()) == ["queued", "queued", "sent"]


@contextmanager
def journal_held(project: Path, seconds: float):
    """Another process holding the journal's write lock (BEGIN IMMEDIATE) for ``seconds``, from when it says so."""
    code = (
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
        "db.execute('COMMIT')\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(project / ".broadsheet" / "state.db"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_journal_locked_by_another_program_is_one_line_and_sends_nothing(sample, capsys, monkeypatch):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes", "--limit", "1") == 0
    before = outbox_files(sample)
    capsys.readouterr()
    # the command as given, its wait for the lock shortened (the default, send.WAIT, is seconds)
    monkeypatch.setattr(send_command, "SendOptions", functools.partial(SendOptions, journal_wait=0.2))
    with journal_held(sample, 60):
        result = Ran(cli(sample, "send", ISSUE, "--yes"), capsys.readouterr().err)
    journal = sample / ".broadsheet" / "state.db"
    one_line_error(result, f"{journal}: the send journal is locked by another program", "close the program")
    assert outbox_files(sample) == before


# -- a lock taken mid-run, in-process with the real runner ---------------------------------------------


@pytest.fixture
def smtp_campaign(tmp_path, monkeypatch):
    """(run, journal factory, sink, people): a 30-recipient campaign over a real SMTP server."""
    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    shutil.copy(Path(__file__).resolve().parents[1] / "broadsheet.toml", tmp_path / "broadsheet.toml")
    for folder in ("templates", "assets", "issues"):
        shutil.copytree(Path(__file__).resolve().parents[1] / folder, tmp_path / folder)
    from broadsheet.core.config import load_config

    config = load_config(tmp_path / "broadsheet.toml")
    issue, rendered = read_and_build(tmp_path / ISSUE, config)
    people = [email for email, _ in write_subscribers(tmp_path / "list.csv", 30)]
    sink = Sink(delay=0.03)  # about 2 s for the campaign: long enough to take a lock in the middle
    with smtp_server(sink) as (host, port):
        import dataclasses

        smtp_config = dataclasses.replace(config, smtp=Smtp(host=host, port=port, security="none", username=""))
        composer = Composer(rendered, smtp_config)

        def run(journal: Journal):
            prepared = prepare_campaign(
                journal,
                slug=rendered.slug,
                transport="smtp",
                issue_dir=ISSUE,
                fingerprint="f",
                subscribers=CsvList(tmp_path / "list.csv"),
                issue_id=issue.id,
                subject=rendered.subject,
            )
            runner = CampaignRunner(
                journal,
                prepared.record,
                lambda: SmtpTransport(smtp_config),
                composer,
                Settings(connections=2, batch_size=1),
                max_batch=1,
                rejected=(RecipientRejected,),
            )
            return prepared, runner.run()

        yield tmp_path, run, sink, people


def _when_received(sink: Sink, count: int, action) -> threading.Thread:
    def watch():
        deadline = time.monotonic() + 30
        while len(sink.received) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_lock_taken_mid_run_is_waited_out_and_everyone_is_recorded(smtp_campaign):
    root, run, sink, people = smtp_campaign
    held = []
    with Journal.for_project(root, wait=0.2, patience=10) as journal:
        holder = journal_held(root, 1.0)
        watcher = _when_received(sink, 5, lambda: held.append((holder.__enter__(), len(sink.received))))
        _, result = run(journal)
        watcher.join()
        assert held and held[0][1] < 25, "the lock was not taken in the middle of the campaign"
        holder.__exit__(None, None, None)
        assert result.error is None
        assert journal.counts(journal.campaigns_for("2021-06-01-5c1e7a9b")[0])["sent"] == 30
    assert sink.recipients() == {email: 1 for email in people}


def test_a_lock_held_too_long_stops_the_campaign_and_the_next_send_records_who_got_it(smtp_campaign):
    root, run, sink, people = smtp_campaign
    held = []
    with Journal.for_project(root, wait=0.1, patience=0.5) as journal:
        watcher = _when_received(sink, 5, lambda: held.append(journal_held(root, 60)) or held[0].__enter__())
        _, result = run(journal)
        watcher.join()
        assert isinstance(result.error, CampaignError) and "locked by another program" in str(result.error)
        held[0].__exit__(None, None, None)  # the other program lets go
    delivered = set(sink.recipients())
    assert 5 <= len(delivered) < 30 and pending_path(root / ".broadsheet" / "state.db").is_file()
    with Journal.for_project(root) as journal:
        prepared, _ = run(journal)  # the next send: writes what the stopped one could not, then goes on
        assert prepared.replayed >= 1 and prepared.recovered == 0
    assert sink.recipients() == {email: 1 for email in people}
    assert set(states(root).values()) == {"sent"}
    assert not pending_path(root / ".broadsheet" / "state.db").exists()


def test_a_journal_in_postgresql_held_too_long_stops_the_campaign_and_the_next_send_records_it(
    smtp_campaign, postgres_url
):
    """As with SQLite: outcomes that cannot be written through another program's lock go aside in the project
    and the next send writes them; nobody is mailed twice."""
    from broadsheet.data.db.postgres import direct
    from broadsheet.data.journal.postgres import PostgresJournal

    root, run, sink, people = smtp_campaign
    path = root / ".broadsheet" / "state.db"
    other = direct(postgres_url)  # another program, holding the table against every write
    try:
        with PostgresJournal(postgres_url, path, wait=0.1, patience=0.5) as journal:
            locking = ("BEGIN", "LOCK TABLE recipients IN EXCLUSIVE MODE")
            watcher = _when_received(sink, 5, lambda: [other.execute(sql) for sql in locking])
            _, result = run(journal)
            watcher.join()
            assert isinstance(result.error, CampaignError) and "the send journal is busy" in str(result.error)
            other.execute("ROLLBACK")  # the other program lets go
    finally:
        other.close()
    assert 5 <= len(sink.recipients()) < 30 and pending_path(path).is_file()
    with PostgresJournal(postgres_url, path) as journal:
        prepared, _ = run(journal)  # the next send: writes what the stopped one could not, then goes on
        assert prepared.replayed >= 1 and prepared.recovered == 0
        assert journal.counts(prepared.record)["sent"] == 30
    assert sink.recipients() == {email: 1 for email in people}
    assert not pending_path(path).exists()


# -- two sends, and the journal removed under a running one ---------------------------------------------


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_second_send_is_kept_out_even_when_the_journal_goes_and_nobody_gets_two(sample, how, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 40)]
    sink = Sink(hold_after=3)  # the first send waits on its fourth message until the journal is gone
    with smtp_server(sink) as (host, port):
        configure(
            sample,
            send={"transport": "smtp", "list": "list.csv", "connections": 1, "batch_size": 1},
            smtp=smtp(host, port),
        )
        first = send_process(sample, ISSUE, "--yes")
        try:
            _wait_for(lambda: len(sink.received) >= 3 or first.poll() is not None)
            assert first.poll() is None, "the first send ended before its fourth message"
            kept_out = Ran(cli(sample, "send", ISSUE, "--yes"), capsys.readouterr().err)  # in this process
            one_line_error(kept_out, "another 'broadsheet send' is running")
            journal = sample / ".broadsheet" / "state.db"
            if how == "removed":  # rm -rf .broadsheet: the running send writes the journal back and stops
                shutil.rmtree(sample / ".broadsheet")
            else:  # another file put in its place: the running send stops and leaves it alone
                (sample / "notes.txt").write_text("not a journal\n" * 10, encoding="utf-8")
                os.replace(sample / "notes.txt", journal)
            second = send_process(sample, ISSUE, "--yes")  # at once: refused, or (first gone) resumes
            sink.released.set()
            _out, err = first.communicate(timeout=60)
            _second_out, second_err = second.communicate(timeout=60)
        finally:
            sink.released.set()
            first.kill()
    assert first.returncode == 2, err
    assert f"the send journal was {'removed' if how == 'removed' else 'replaced by another file'}" in err
    assert "Traceback" not in err + second_err
    received = sink.recipients()
    assert all(count == 1 for count in received.values()), "someone was mailed twice"
    if how == "removed":
        assert "written back from the running send" in err
        assert sorted(states(sample).values()).count("unknown") == 0
        rest = Sink()
        with smtp_server(rest) as (host, port):
            configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
            assert cli(sample, "send", ISSUE, "--yes") == 0  # both processes gone: the resume runs in this one
        assert sink.recipients() + rest.recipients() == {email: 1 for email in people}
    else:
        assert second.returncode == 2 and "not a journal broadsheet wrote" in second_err


# -- signals before the runner starts -----------------------------------------------------------------


def ignore_sigint() -> None:
    """What a shell does to `broadsheet send … &` in a script: the child starts with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_send_stops_on_a_signal_while_it_connects_even_with_sigint_ignored(sample, stop):
    write_subscribers(sample / "list.csv", 3)
    with socket.socket() as silent:  # accepts connections, never greets: send waits in its first connect
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(*silent.getsockname(), timeout=30))
        silent.settimeout(60)
        process = send_process(sample, ISSUE, "--yes", preexec_fn=ignore_sigint)
        try:
            connection, _ = (
                silent.accept()
            )  # send is in its connection check, before the runner, waiting for a greeting
            with connection:
                process.send_signal(stop)
                _out, err = process.communicate(timeout=60)
        finally:
            process.kill()
    # 130 and "interrupted": the signal ended the wait; a connection timeout would be exit 2 naming the server
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err and "timed out" not in err
    assert set(states(sample).values()) == {"queued"}


def test_status_reads_a_journal_another_program_holds_or_that_is_read_only(sample, capsys):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes") == 0
    capsys.readouterr()
    with journal_held(sample, 60) as holder:
        assert cli(sample, "status", ISSUE) == 0
        assert "sent 3" in capsys.readouterr().out
        assert holder.poll() is None  # read while the write lock was held, not after waiting it out
        probe = closing(sqlite3.connect(sample / ".broadsheet" / "state.db", timeout=0))
        with probe as db, pytest.raises(sqlite3.OperationalError, match="locked"):
            db.execute("BEGIN IMMEDIATE")
    journal = sample / ".broadsheet" / "state.db"
    journal.chmod(0o444)
    try:
        status = subprocess.run(
            [sys.executable, "-m", "broadsheet", "status", ISSUE],
            cwd=sample,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=without_permission_override,
        )
    finally:
        journal.chmod(0o644)
    assert status.returncode == 0, status.stderr
    assert "sent 3" in status.stdout


def test_a_copied_folder_that_keeps_the_id_is_refused_instead_of_reaching_nobody(sample, capsys):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes") == 0
    copy = sample / "issues" / "2021-06-08-next"
    shutil.copytree(sample / ISSUE, copy)
    set_front_matter(copy, "subject", '"The next issue"')
    capsys.readouterr()
    assert cli(sample, "send", str(copy), "--yes") == 2
    err = capsys.readouterr().err
    assert (
        "another issue folder has the same id (2021-06-01-5c1e7a9b): "
        "issues/2021-06-01-chengdu-flemish-brabant, already sent over outbox" in err
    )
    assert "give this issue its own id" in err
    set_front_matter(copy, "id", '"2021-06-08-1a2b3c4d"')
    assert cli(sample, "send", str(copy), "--yes") == 0
    assert len(outbox_files(sample)) == 6


def test_outcomes_noticed_after_the_journal_was_removed_go_into_the_journal_written_back(tmp_path):
    from broadsheet.core.audience import Subscriber
    from broadsheet.data.journal.journal import JournalGone, Outcome

    readers = [Subscriber(f"r{i}@example.com", "", "", (), {}, i) for i in range(4)]
    with Journal.for_project(tmp_path) as journal:
        record = prepare_campaign(
            journal, slug="s", transport="smtp", issue_dir="i", fingerprint="f", subscribers=readers
        ).record
        claimed = journal.claim(record, 2, time.time())
        shutil.rmtree(tmp_path / ".broadsheet")  # while those two are out
        with pytest.raises(JournalGone, match="written back from the running send"):
            journal.record([Outcome(row.id, "sent", "250 OK") for row in claimed])
        journal.record([])  # nothing more to say; the campaign stops on the error above
    assert states(tmp_path) == {
        "r0@example.com": "sent",
        "r1@example.com": "sent",
        "r2@example.com": "queued",
        "r3@example.com": "queued",
    }
    assert not pending_path(tmp_path / ".broadsheet" / "state.db").exists()


def test_no_journal_yet_and_a_read_only_folder_for_it_is_one_line(sample):
    write_subscribers(sample / "list.csv", 2)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    folder = sample / ".broadsheet"
    shutil.rmtree(folder, ignore_errors=True)  # no image cache either: an empty folder
    folder.mkdir(mode=0o555)
    try:
        result = send(sample, ISSUE, "--yes", preexec_fn=without_permission_override)
    finally:
        folder.chmod(0o755)
    one_line_error(result, f"{folder}: cannot create the send journal: Permission denied", "folder you can write to")
    assert not outbox_files(sample) and list(folder.iterdir()) == []
