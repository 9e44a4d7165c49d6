"""`broadsheet send`, `status` and `subscribers check` end to end, including a send killed with SIGKILL."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import termios
import time

import pytest
from support.providers import api  # noqa: F401 - the fixture
from support.smtpd import Sink, configure, smtp_server, write_subscribers

from broadsheet.faces.cli import main

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"


@pytest.fixture
def sample(project, monkeypatch):
    """The sample project, its images already optimised (as after a first build), as the current folder."""
    monkeypatch.setenv("BROADSHEET_SECRET", "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.chdir(project)
    return project


def cli(project, *args: str) -> int:
    return main(["--config", str(project / "broadsheet.toml"), *args])


def states(project) -> dict[str, str]:
    path = project / ".broadsheet" / "state.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT email, state FROM recipients"))


def smtp(host, port):
    return {"host": host, "port": port, "security": "none", "timeout": 10}


def with_bad_rows(path):
    people = write_subscribers(path, 5)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("not-an-address,Bad Row,Bad,Gent\nREADER0001@example.com,Dup Licate,Dup,Gent\n")
    return people


def test_outbox_send_reports_bad_rows_resumes_and_shows_status(sample, capsys):
    people = with_bad_rows(sample / "list.csv")
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes") == 0
    out, err = capsys.readouterr()
    assert "list.csv:7: invalid address" in err and "skipped" in err
    assert "5 recipient(s), 1 bad row(s) skipped; left out: duplicate 1" in out
    assert len(list((sample / "outbox").rglob("*.eml"))) == 5
    assert cli(sample, "send", ISSUE, "--yes") == 0
    assert "nothing to send: sent 5" in capsys.readouterr().out
    assert cli(sample, "status", ISSUE) == 0
    assert "sent 5" in capsys.readouterr().out
    assert set(states(sample)) == {email for email, _ in people}


def test_dry_run_composes_everything_and_sends_nothing(sample, capsys):
    write_subscribers(sample / "list.csv", 12)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--dry-run") == 0
    assert "dry run: composed 12 message(s)" in capsys.readouterr().out
    assert not (sample / "outbox").exists()
    state = sample / ".broadsheet"  # a dry run writes nothing but the build's image cache: no journal, no campaign
    assert not (state / "state.db").exists() and not (state / "audience.db").exists()
    if state.exists():
        assert [path.name for path in state.iterdir()] == ["cache"]


def test_without_a_terminal_or_yes_nothing_is_sent(sample, capsys, monkeypatch):
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli(sample, "send", ISSUE) == 2
    assert "add --yes" in capsys.readouterr().err
    assert not list(sample.glob("outbox/**/*.eml"))


def test_test_copy_is_personalised_marked_and_not_journaled(sample):
    write_subscribers(sample / "list.csv", 4)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--test", "editor@example.net") == 0
        assert cli(sample, "send", ISSUE, "--test", "editor@example.net", "--as", "reader0002@example.com") == 0
    first, second = sink.received
    assert first.recipients == ["editor@example.net"] and "[TEST]" in first.message["Subject"]
    assert "Dear Reader0000," in first.text() and "Dear Reader0002," in second.text()
    assert states(sample) == {}


@pytest.mark.parametrize("extra", [["--dry-run"], ["--retry-failed"], ["--limit", "2"]])
def test_test_copy_refuses_options_it_would_ignore(sample, capsys, extra):
    write_subscribers(sample / "list.csv", 2)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--test", "editor@example.net", *extra) == 2
    assert f"{extra[0]} does not go with --test" in capsys.readouterr().err
    assert not (sample / "outbox").exists()


def test_failures_are_exported_with_their_reasons_and_retried_on_request(sample, tmp_path, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 6)]
    sink = Sink(replies={people[2]: "554 5.7.1 refused by policy"})
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "retries": 0}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes") == 1
        capsys.readouterr()
        assert cli(sample, "status", ISSUE, "--failed-csv", str(tmp_path / "failed.csv")) == 0
        out = capsys.readouterr().out
        assert "sent 5 · failed 1" in out and "554 5.7.1 refused by policy" in out
        exported = (tmp_path / "failed.csv").read_text().splitlines()
        assert exported[0].startswith("email,state,attempts,reason")
        assert exported[1].startswith(f"{people[2]},failed,1,554 5.7.1 refused by policy")
        sink.replies.clear()  # the mailbox is back
        assert cli(sample, "send", ISSUE, "--yes") == 1  # failed stays failed without the flag
        assert cli(sample, "send", ISSUE, "--yes", "--retry-failed") == 0
    assert sink.recipients() == {email: 1 for email in people}


def test_failed_csv_that_cannot_be_written_is_a_one_line_error(sample, tmp_path, capsys):
    write_subscribers(sample / "list.csv", 2)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes") == 0
    capsys.readouterr()
    target = tmp_path / "no-such-folder" / "failed.csv"
    assert cli(sample, "status", ISSUE, "--failed-csv", str(target)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"broadsheet: error: {target}: cannot write") and err.count("\n") == 1


def test_finishing_a_send_over_another_transport_sends_nobody_twice(sample, api, capsys):
    from test_api_cli import use_fake

    people = [email for email, _ in write_subscribers(sample / "list.csv", 6)]
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv"}, smtp=smtp(host, port))
        assert cli(sample, "send", ISSUE, "--yes", "--limit", "4") == 0
    fake, transport = api("postmark")
    use_fake(sample, "postmark", transport.base_url)  # the SMTP server broke down: finish over the API
    assert cli(sample, "send", ISSUE, "--yes") == 0
    assert "4 recipient(s) already sent this issue over smtp" in capsys.readouterr().out
    assert sorted(sink.recipients()) == people[:4] and sorted(fake.recipients()) == people[4:]


def test_subscribers_check_lists_every_bad_row(sample, capsys):
    with_bad_rows(sample / "list.csv")
    assert cli(sample, "subscribers", "check", "list.csv") == 1
    out = capsys.readouterr().out
    assert "list.csv:7: invalid address" in out
    assert "5 recipient(s)" in out and "left out, duplicate: 1" in out


def start_send(sample, sink, host, port, *, hangup=signal.SIG_DFL):
    """`broadsheet send` in a child process over 2 connections to ``sink``; returned once 15 messages arrived.
    ``hangup``: SIGHUP's disposition as the child inherits it (SIG_IGN: started under ``nohup``)."""
    configure(
        sample, send={"transport": "smtp", "list": "list.csv", "connections": 2, "batch_size": 5}, smtp=smtp(host, port)
    )
    env = {
        **os.environ,
        "BROADSHEET_SECRET": "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes"]
    process = subprocess.Popen(command, cwd=sample, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, hangup))  # fmt: skip
    deadline = time.monotonic() + 30
    while len(sink.received) < 15 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    return process


def interrupted_send(
    sample, *, delay: float, ctrl_c: int, signum=signal.SIGINT, hangup=signal.SIG_DFL, then: float | None = None
):
    """80 subscribers, a send in a child process, then Ctrl-C ``ctrl_c`` times: (sink, returncode, out, err).
    ``then``: the server's delay once the signals are sent (a send that ignores them goes on at that pace)."""
    write_subscribers(sample / "list.csv", 80)
    sink = Sink(delay=delay)
    with smtp_server(sink) as (host, port):
        process = start_send(sample, sink, host, port, hangup=hangup)
        if ctrl_c > 1:  # slow replies from now on, so the second press surely lands while messages are in flight
            sink.delay = 0.5
        said = b""
        for press in range(ctrl_c):
            if press:  # once the send says it took the first: two signals that arrive together are one
                said = _read_until(process, b"stopping:", said)
            process.send_signal(signum)
        if then is not None:
            sink.delay = then
        out, err = process.communicate(timeout=30)
    return sink, process.returncode, out, said.decode("utf-8") + err


def _read_until(process, text: bytes, said: bytes) -> bytes:
    """What the child wrote on stderr, read unbuffered (communicate reads the rest) up to ``text``."""
    assert process.stderr is not None
    while text not in said:
        chunk = os.read(process.stderr.fileno(), 4096)
        assert chunk, f"the send ended without saying {text!r}: {said!r}"
        said += chunk
    return said


def test_ctrl_c_finishes_in_flight_messages_records_them_and_says_how_to_resume(sample):
    sink, returncode, out, err = interrupted_send(sample, delay=0.015, ctrl_c=1)
    assert returncode == 130, err
    assert "To resume, run the same command again" in out and "stopping: finishing" in err
    after = states(sample)
    assert "sending" not in after.values() and "queued" in after.values()
    assert {email for email, state in after.items() if state == "sent"} == set(sink.recipients())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "hangup"])
def test_sigterm_and_a_closed_terminal_stop_like_ctrl_c(sample, signum):
    """systemd's stop, and an SSH session that drops: the batches in flight are finished and recorded."""
    sink, returncode, out, err = interrupted_send(sample, delay=0.015, ctrl_c=1, signum=signum)
    assert returncode == 130, err
    assert "To resume, run the same command again" in out
    after = states(sample)
    assert "sending" not in after.values() and "queued" in after.values()
    assert {email for email, state in after.items() if state == "sent"} == set(sink.recipients())


def _in_its_terminal() -> None:
    """The child as a shell starts it in a terminal: the pty is its controlling terminal, SIGHUP at its
    default (the test runner itself may run under nohup)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_a_terminal_that_closes_stops_the_send_like_ctrl_c(sample):
    """The send runs in a real terminal (a pty it controls) that closes: a hangup, and every later write to
    the terminal fails. The batches in flight are finished and recorded all the same, nothing is left
    `sending`, and the rest stays queued."""
    write_subscribers(sample / "list.csv", 80)
    sink = Sink(hold_after=15)  # the send waits on its sixteenth message until the terminal has closed
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "connections": 2, "batch_size": 5},
                  smtp=smtp(host, port))  # fmt: skip
        env = {
            **os.environ,
            "BROADSHEET_SECRET": "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0",
            "PYTHONUNBUFFERED": "1",
        }
        terminal, its_end = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes"], cwd=sample, env=env,
            stdin=its_end, stdout=its_end, stderr=its_end, start_new_session=True,
            preexec_fn=_in_its_terminal,
        )  # fmt: skip
        os.close(its_end)
        os.set_blocking(terminal, False)
        deadline = time.monotonic() + 30
        while len(sink.received) < 15 and time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(terminal, 65536)  # what a terminal shows, read so that the send never blocks on it
            time.sleep(0.01)
        os.close(terminal)  # the window closes, the SSH session drops
        sink.released.set()
        assert process.wait(timeout=30) == 130
    after = states(sample)
    assert "sending" not in after.values() and "queued" in after.values()
    assert {email for email, state in after.items() if state == "sent"} == set(sink.recipients())


def test_a_send_started_under_nohup_goes_on_after_a_hangup(sample):
    sink, returncode, _, err = interrupted_send(
        sample, delay=0.015, ctrl_c=1, signum=signal.SIGHUP, hangup=signal.SIG_IGN, then=0.0
    )
    assert returncode == 0, err
    assert set(states(sample).values()) == {"sent"} and len(sink.recipients()) == 80


def test_status_into_a_closed_pipe_ends_quietly(sample):
    env = {**os.environ, "BROADSHEET_SECRET": "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"}
    write_subscribers(sample / "list.csv", 3)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})
    assert cli(sample, "send", ISSUE, "--yes") == 0  # in this process: only status needs its own, with a pipe
    status = subprocess.Popen([sys.executable, "-m", "broadsheet", "status", ISSUE], cwd=sample, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    status.stdout.close()  # the reader went away before the first line
    assert "Traceback" not in status.stderr.read().decode()
    status.wait(timeout=30)


def test_a_second_ctrl_c_quits_at_once_and_still_says_how_to_resume(sample):
    _, returncode, out, err = interrupted_send(sample, delay=0.05, ctrl_c=2)
    assert returncode == 130, err
    assert "Traceback" not in err
    assert "--retry-unknown" in out and "To resume, run the same command again" in out


def test_a_send_killed_with_sigkill_resumes_without_loss_or_extra_duplicates(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 80)]
    sink = Sink(delay=0.015)
    with smtp_server(sink) as (host, port):
        process = start_send(sample, sink, host, port)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        sink.delay = 0.0  # the killed send was slowed to be caught mid-way; the resumes need not be
        in_flight = {email for email, state in states(sample).items() if state == "sending"}
        assert 0 < len(in_flight) <= 2  # one message on each of the 2 connections, not their whole batches
        before = states(sample)
        assert cli(sample, "status", ISSUE) == 0  # status reads, it changes nothing: the next send recovers
        out = capsys.readouterr().out
        assert (
            f"sending {len(in_flight)} · sent {80 - len(in_flight) - list(before.values()).count('queued')} · "
            "failed 0 · deferred 0 · unknown 0" in out
        )
        assert "the next send marks them unknown" in out and states(sample) == before
        assert cli(sample, "send", ISSUE, "--yes") == 1  # finished, but some are unknown
        after = states(sample)
        assert {email for email, state in after.items() if state == "unknown"} == in_flight
        received = sink.recipients()
        assert all(received[email] == 1 for email in people if email not in in_flight)
        assert all(received[email] <= 1 for email in in_flight)
        assert cli(sample, "send", ISSUE, "--yes", "--retry-unknown") == 0
    received = sink.recipients()
    assert all(received[email] >= 1 for email in people), "someone was lost"
    assert {email for email in people if received[email] > 1} <= in_flight


def test_a_segment_no_subscriber_has_sends_nothing_and_lists_the_tags(sample, capsys):
    configure(sample, send={"transport": "outbox", "list": "subscribers.example.csv"})
    assert cli(sample, "send", ISSUE, "--segment", "memebrs", "--yes") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no subscriber has the tag 'memebrs'" in err[0] and "members" in err[0]
    assert not list(sample.glob("outbox/**/*.eml")) and states(sample) == {}
