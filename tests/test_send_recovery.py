"""Nothing sent twice when the journal or the disk fails: a damaged or misplaced journal, a journal lost
between two sends or removed during one, a full disk, and a send finished over another transport.

The use case and the CLI in-process, real processes (`python -m broadsheet send`) where the send is removed
from under a running one, a real SMTP server, a local HTTP API, real SQLite and a real
full file system (a small tmpfs, mounted when the tests run as root).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sqlite3
import stat
import subprocess

import pytest
from support.providers import api  # noqa: F401 - the fixture
from support.reporting import Recorder
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_api_cli import use_fake
from test_send_cli import cli, sample  # noqa: F401 - sample is a fixture
from test_send_integrity import ISSUE, Ran, _wait_for, one_line_error, send, send_process, smtp, states

from broadsheet.core.config import load_config
from broadsheet.core.errors import CampaignError
from broadsheet.data.journal.journal import ROOM
from broadsheet.usecases.send import SendOptions, send_issue


def cli_run(project, capsys, *args: str) -> Ran:
    """The real CLI in this process: its exit code and what it said on stderr."""
    capsys.readouterr()
    code = cli(project, *args)
    return Ran(code, capsys.readouterr().err)


# -- a journal that is not what it should be ---------------------------------------------------------


def test_a_journal_with_text_that_is_not_utf8_is_one_line_in_send_and_status(sample, capsys):
    write_subscribers(sample / "list.csv", 6)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes", "--limit", "2") == 0
    journal = sample / ".broadsheet" / "state.db"
    with sqlite3.connect(journal) as db:  # bytes that are not UTF-8 where text belongs, as a damaged page has
        db.execute("UPDATE recipients SET state = 'failed', detail = CAST(X'353530FF' AS TEXT) WHERE id = 1")
        db.execute("UPDATE recipients SET data = CAST(X'5B22FF' AS TEXT) WHERE state = 'queued'")
    damaged = f"{journal}: the send journal is damaged: it holds text that is not UTF-8"
    one_line_error(cli_run(sample, capsys, "status", ISSUE), damaged, "restore it from a backup")
    one_line_error(cli_run(sample, capsys, "send", ISSUE, "--yes"), damaged)
    assert sorted(states(sample).values()) == ["failed", "queued", "queued", "queued", "queued", "sent"]


def test_a_journal_that_is_a_folder_is_named_for_what_it_is(sample, capsys):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    journal = sample / ".broadsheet" / "state.db"
    journal.mkdir(parents=True)
    for command in (["send", ISSUE, "--yes"], ["status", ISSUE]):
        result = cli_run(sample, capsys, *command)
        one_line_error(result, f"{journal}: the send journal is a folder, not a file", "move it aside")
        assert "read-only" not in result.stderr
    assert not (sample / "outbox").exists() and list(journal.iterdir()) == []


# -- finishing over another transport -----------------------------------------------------------------


def test_unknown_over_smtp_is_not_sent_again_over_an_api_unless_asked(sample, api, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 12)]
    lost = {people[1], people[4], people[7]}  # the server stores these, then hangs up before its reply to the final "."
    sink = Sink(stored_closed=lost)
    with smtp_server(sink) as (host, port):
        configure(
            sample,
            send={"transport": "smtp", "list": "list.csv", "connections": 1, "retries": 1},
            smtp={"host": host, "port": port, "security": "none", "timeout": 5},
        )
        assert cli(sample, "send", ISSUE, "--yes", "--limit", "8") == 1  # unknown ones: exit 1
    assert set(sink.recipients()) == set(people[:8])
    fake, transport = api("postmark")
    use_fake(sample, "postmark", transport.base_url)  # the SMTP server broke down: finish over the API
    capsys.readouterr()
    assert cli(sample, "send", ISSUE, "--yes") == 1
    out = capsys.readouterr().out
    assert "3 recipient(s) are unknown over smtp" in out and "--retry-unknown" in out
    assert sorted(fake.recipients()) == people[8:]  # nobody got a second copy
    assert cli(sample, "send", ISSUE, "--yes") == 1 and sorted(fake.recipients()) == people[8:]
    assert cli(sample, "send", ISSUE, "--yes", "--retry-unknown") == 0  # the one way to send them again
    assert sorted(fake.recipients()) == sorted(people[8:] + list(lost))


# -- the journal lost between two sends ------------------------------------------------------------------


def test_a_journal_lost_between_two_sends_is_refused_until_asked_and_test_copies_still_go(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 30)]
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        config = load_config(sample / "broadsheet.toml")
        options = SendOptions(issue_dir=sample / ISSUE, yes=True)
        assert send_issue(options, config, Recorder()).complete
        for leftover in (sample / ".broadsheet").glob("state.db*"):  # a clean-up script, a restore without it
            leftover.unlink()
        mark = sample / ".broadsheet" / "sent" / "2021-06-01-5c1e7a9b.json"  # kept apart from state.db*
        with pytest.raises(CampaignError, match="--resend-all") as refused:
            send_issue(options, config, Recorder())
        assert str(refused.value).startswith(f"{mark}: this issue was sent over smtp on ")
        assert sink.recipients() == {email: 1 for email in people}  # nobody mailed again
        test_copy = SendOptions(issue_dir=sample / ISSUE, test="editor@example.net")
        assert send_issue(test_copy, config, Recorder()).complete  # not journaled: goes
        assert sink.recipients()["editor@example.net"] == 1
        with pytest.raises(CampaignError, match="--resend-all does not go with --due"):
            SendOptions(due=True, resend_all=True)
        assert send_issue(dataclasses.replace(options, resend_all=True), config, Recorder()).complete  # everyone
        assert send_issue(options, config, Recorder()).counts["sent"] == 30  # the new journal knows it: nothing more
    assert sink.recipients() == {**{email: 2 for email in people}, "editor@example.net": 1}


# -- the journal removed during a send -----------------------------------------------------------------


def test_a_journal_removed_mid_send_is_written_back_with_the_messages_in_flight_and_its_mode(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 40)]
    journal = sample / ".broadsheet" / "state.db"
    sink = Sink(hold_after=6)  # four connections, each holding a message on its way when the journal goes
    with smtp_server(sink) as (host, port):
        configure(
            sample,
            send={"transport": "smtp", "list": "list.csv", "connections": 4, "batch_size": 1},
            smtp=smtp(host, port),
        )
        first = send_process(sample, ISSUE, "--yes")
        try:
            _wait_for(lambda: len(sink.received) >= 6 or first.poll() is not None)
            assert first.poll() is None, "the first send ended before the journal went"
            mode = stat.S_IMODE(os.stat(journal).st_mode)
            shutil.rmtree(sample / ".broadsheet")
            sink.released.set()
            _out, err = first.communicate(timeout=30)
        finally:
            sink.released.set()
            first.kill()
        assert first.returncode == 2 and "written back from the running send" in err
        assert "Traceback" not in err
        assert mode == 0o600 and stat.S_IMODE(os.stat(journal).st_mode) == mode
        delivered = set(sink.recipients())
        assert {email: state for email, state in states(sample).items() if email in delivered} == dict.fromkeys(
            delivered, "sent"
        )
        assert cli(sample, "send", ISSUE, "--yes") == 0  # resumes: the rest, once each
    assert sink.recipients() == {email: 1 for email in people}


# -- a full disk ------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path_factory):
    """A 4 MB tmpfs, mounted for the test (needs root: skipped elsewhere) and unmounted afterwards."""
    folder = tmp_path_factory.mktemp("disk")
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if not (mount and umount):
        pytest.skip("no mount command here")
    mounted = subprocess.run([mount, "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run([umount, "-l", str(folder)], check=True)


def fill(folder, leave: int) -> None:
    """Fill the file system of ``folder`` but for about ``leave`` bytes."""
    info = os.statvfs(folder)
    with open(folder / "filler", "wb") as handle, contextlib.suppress(OSError):
        handle.write(b"\0" * max(0, info.f_bavail * info.f_frsize - leave))


def test_a_full_disk_during_a_send_is_one_line_leaves_no_partial_file_and_resumes(
    sample, small_disk, monkeypatch, capsys
):
    write_subscribers(sample / "list.csv", 30)
    configure(sample, send={"transport": "outbox", "list": "list.csv", "connections": 4})
    project = small_disk / "project"
    shutil.copytree(sample, project)
    monkeypatch.chdir(project)
    assert cli(project, "send", ISSUE, "--yes", "--limit", "5") == 0
    written = list((project / "outbox").rglob("*.eml"))
    size = max(path.stat().st_size for path in written)
    fill(small_disk, leave=ROOM + 3 * size)  # room for the send's reserve, and for a message or two more
    result = send(project, ISSUE, "--yes")  # a child process: what it leaves when the disk fills
    one_line_error(result, "the disk holding the", "is full", "run the same command again to resume")
    assert "Traceback" not in result.stderr  # nor from the checkpoint thread
    files = [path for path in (project / "outbox").rglob("*") if path.is_file()]
    assert len(files) > len(written)  # the disk filled up during the send, not before it
    assert all(path.suffix == ".eml" and path.stat().st_size == size for path in files)
    recorded = states(project)
    assert sorted(recorded.values()).count("sent") == len(files) and set(recorded.values()) == {"sent", "queued"}
    capsys.readouterr()
    assert cli(project, "status", ISSUE) == 0
    assert "locked" not in "".join(capsys.readouterr())
    (small_disk / "filler").unlink()
    assert cli(project, "send", ISSUE, "--yes") == 0  # resumes: the rest, once each
    names = sorted(path.name.split("-", 1)[1] for path in (project / "outbox").rglob("*.eml"))
    assert names == sorted(f"{email}.eml" for email in recorded)
