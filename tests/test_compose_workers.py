"""Compose workers (usecases.campaign.compose_pool): the same messages as in-process, each recipient sent once,
a compose error told for its recipient, and a stopped send that resumes, with workers gone with it."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from support.compose import make_config, make_issue, subscriber
from support.reporting import Recorder
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_send_cli import ISSUE, cli, sample, smtp, states  # noqa: F401 - sample is the fixture

from broadsheet.core.compose import Composer, Message
from broadsheet.core.compose.workers import compose_chunk
from broadsheet.core.config import Smtp, load_config
from broadsheet.data.subscriber_list import CsvList
from broadsheet.delivery.transports.base import TransportOptions
from broadsheet.delivery.transports.outbox import OutboxTransport
from broadsheet.usecases.campaign import CampaignRunner, Journal, Settings, compose_pool, prepare_campaign
from broadsheet.usecases.campaign.compose_pool import ComposePool, worker_count
from broadsheet.usecases.send import SendOptions, send_issue

SECRET = "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
VARYING = re.compile(rb"^(Date|Message-ID): .*$", re.M)  # the two headers made fresh for each message
FAILING_TEXT = "{% if subscriber.email.startswith('fails') %}{{ 1 // 0 }}{% endif %}Hello {{ subscriber.name }}\n"


@pytest.fixture(autouse=True)
def unsubscribe_secret(monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)


def fixed(raw: bytes) -> bytes:
    return VARYING.sub(lambda m: m.group(1) + b": -", raw)


def people() -> list:
    found = [subscriber(f"reader{i}@example.com", f"Reader Nümber {i}", city="Leuven") for i in range(60)]
    found[7] = subscriber("fails@example.com", "Failing Reader")  # the template divides by zero for them
    found[9] = subscriber("jäne@example.com", "Not ASCII")  # compose refuses a non-ASCII address
    return found


def in_process(composer: Composer, items) -> list[Message | str]:
    from broadsheet.core.compose import RecipientRejected

    made: list[Message | str] = []
    for person, row in items:
        try:
            made.append(composer.compose(person, row=row))
        except RecipientRejected as exc:
            made.append(exc.reason)
    return made


def test_workers_compose_the_same_bytes_as_this_process_refusals_included():
    composer = Composer(
        make_issue(text=FAILING_TEXT), make_config(smtp=Smtp(return_path="bounces+{token}@example.org"))
    )
    items = [(person, row) for row, person in enumerate(people(), start=1)]
    here = in_process(composer, items)
    with ComposePool(composer.spec, 2) as whole, ComposePool(composer.spec, 2, wire=True) as wire:
        there, wired = whole.compose(items), wire.compose(items)
        measured = list(whole.measure(person for person, _ in items))
    assert len(there) == len(wired) == len(measured) == len(here) == 60
    for mine, theirs, bare, (person, size) in zip(here, there, wired, measured, strict=True):
        assert person.email in (getattr(mine, "recipient", ""), person.email)
        if isinstance(mine, str):  # refused: the same reason, wherever it was composed
            assert theirs == bare == size == mine
            continue
        assert isinstance(theirs, Message) and isinstance(bare, Message) and isinstance(size, int)
        assert fixed(theirs.raw) == fixed(bare.raw) == fixed(mine.raw)
        assert dataclasses.replace(theirs, raw=b"", headers={}) == dataclasses.replace(mine, raw=b"", headers={})
        assert {k: v for k, v in theirs.headers.items() if k not in ("Date", "Message-ID")} == {
            k: v for k, v in mine.headers.items() if k not in ("Date", "Message-ID")
        }
        assert (bare.html, bare.text) == ("", "")  # for transports that send the raw bytes only
        assert abs(size - len(mine.raw)) <= 3  # the same but for the Message-ID's counter
    reasons = [mine for mine in here if isinstance(mine, str)]
    assert len(reasons) == 2 and "ZeroDivisionError" in reasons[0] and "not a plain ASCII address" in reasons[1]
    ids = [m.headers["Message-ID"] for m in there if isinstance(m, Message)]
    assert len(set(ids)) == len(ids)  # each worker numbers its own: still unique


def test_answers_larger_than_the_shared_buffer_come_whole_through_the_connection(monkeypatch):
    monkeypatch.setattr(compose_pool, "BUFFER", 5000)  # room for a message or two of a chunk
    composer = Composer(make_issue(text=FAILING_TEXT), make_config())
    items = [(person, None) for person in people()]
    with ComposePool(composer.spec, 2) as pool:
        there = pool.compose(items)
    here = in_process(composer, items)
    assert [fixed(m.raw) if isinstance(m, Message) else m for m in there] == [
        fixed(m.raw) if isinstance(m, Message) else m for m in here
    ]


def test_a_dry_run_composes_here_too_while_the_workers_are_busy_and_keeps_the_order(monkeypatch):
    monkeypatch.setattr(compose_pool, "MEASURE_CHUNK", 3)
    composer = Composer(make_issue(text=FAILING_TEXT), make_config())
    everyone = people() * 5
    here_too: list[int] = []

    def here(items):
        here_too.append(len(items))
        return list(compose_chunk(composer, "measure", items))

    with ComposePool(composer.spec, 1).started() as pool:
        measured = list(pool.measure(iter(everyone), here))
    expected = [
        len(m.raw) if isinstance(m, Message) else m for m in in_process(composer, [(p, None) for p in everyone])
    ]
    assert [person for person, _ in measured] == everyone
    assert [abs(size - want) <= 3 if isinstance(size, int) else size == want
            for (_, size), want in zip(measured, expected, strict=True)] == [True] * len(everyone)  # fmt: skip
    assert here_too and sum(here_too) < len(everyone)  # both composed


def test_workers_are_chosen_only_where_they_pay():
    assert worker_count(1, recipients=10**6, batch=100) == 0
    assert worker_count(3, recipients=5, batch=1) == 3  # asked for: given
    assert worker_count(0, recipients=10, batch=100) == 0  # a short list: composed here
    assert worker_count(0, recipients=10**6, batch=1) == 0  # SMTP's one message a call: bound by round trips
    cpus = len(os.sched_getaffinity(0))
    assert worker_count(0, recipients=10**6, batch=100) == (cpus if cpus > 1 else 0)


def test_a_compose_error_in_a_worker_fails_that_recipient_and_the_rest_go_once(tmp_path):
    config = dataclasses.replace(load_config(ROOT / "broadsheet.toml"), root=tmp_path)
    emails = [email for email, _ in write_subscribers(tmp_path / "list.csv", 40)]
    text = (tmp_path / "list.csv").read_text(encoding="utf-8").replace("reader0005@", "fails0005@")
    (tmp_path / "list.csv").write_text(text, encoding="utf-8")
    composer = Composer(make_issue(text=FAILING_TEXT), config)
    with Journal.for_project(tmp_path) as journal:
        record = prepare_campaign(
            journal, slug="t", transport="outbox", issue_dir="i", fingerprint="f",
            subscribers=CsvList(tmp_path / "list.csv"),
        ).record  # fmt: skip
        with ComposePool(composer.spec, 2, wire=True).started() as pool:
            result = CampaignRunner(
                journal, record, lambda: OutboxTransport(config, TransportOptions(slug="t")), composer,
                Settings(connections=3, batch_size=7), max_batch=7, pool=pool,
            ).run()  # fmt: skip
        rows = dict(journal.db.execute("SELECT email, state || ' ' || detail FROM recipients"))
    assert result.error is None and (result.this_run["sent"], result.this_run["failed"]) == (39, 1)
    assert rows.pop("fails0005@example.com").startswith("failed the issue template fails for this subscriber")
    assert {state.split()[0] for state in rows.values()} == {"sent"} and len(rows) == 39
    files = sorted(path.name.split("-", 1)[1] for path in (tmp_path / "outbox" / "t").glob("*.eml"))
    assert files == sorted(f"{email}.eml" for email in emails if email != "reader0005@example.com")


def test_a_send_with_workers_reaches_each_recipient_once_in_the_outbox_and_over_smtp(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 45)]
    configure(sample, send={"transport": "outbox", "list": "list.csv", "compose_workers": 2})
    result = send_issue(
        SendOptions(issue_dir=sample / ISSUE, yes=True), load_config(sample / "broadsheet.toml"), Recorder()
    )
    assert result.complete and result.counts["sent"] == 45
    files = sorted(path.name.split("-", 1)[1] for path in (sample / "outbox").rglob("*.eml"))
    assert files == sorted(f"{email}.eml" for email in people)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send={"transport": "smtp", "list": "list.csv", "compose_workers": 2}, smtp=smtp(host, port))
        config = load_config(sample / "broadsheet.toml")
        options = SendOptions(issue_dir=sample / ISSUE, yes=True, force=True)  # the outbox had them: sent again
        result = send_issue(options, config, Recorder())
    assert result.complete and sink.recipients() == dict.fromkeys(people, 1)
    first = sink.received[0]
    assert "Reader" in first.text() and "unsubscribe" in first.html().lower()


def test_a_dry_run_with_workers_composes_every_message_and_says_so(sample):
    write_subscribers(sample / "list.csv", 30)
    configure(sample, send={"transport": "outbox", "list": "list.csv", "compose_workers": 2})
    reporter = Recorder()
    result = send_issue(
        SendOptions(issue_dir=sample / ISSUE, dry_run=True), load_config(sample / "broadsheet.toml"), reporter
    )
    assert result.failed == 0 and not list(sample.glob("outbox/**/*.eml")) and states(sample) == {}
    assert any(line.startswith("dry run: composed 30 message(s) on 2 processes") for line in reporter.infos)  # 1 worker
    limited = Recorder()
    send_issue(SendOptions(issue_dir=sample / ISSUE, dry_run=True, limit=11), load_config(sample / "broadsheet.toml"),
               limited)  # fmt: skip
    assert any(line.startswith("dry run: composed 11 message(s)") for line in limited.infos)


def test_a_dry_run_left_to_choose_composes_a_long_list_here_until_workers_are_up(sample, monkeypatch):
    monkeypatch.setattr(compose_pool, "MIN_RECIPIENTS", 5)  # a long list, as far as the choice goes
    write_subscribers(sample / "list.csv", 300)
    configure(sample, send={"transport": "outbox", "list": "list.csv"})  # compose_workers: 0, the default
    reporter = Recorder()
    result = send_issue(
        SendOptions(issue_dir=sample / ISSUE, dry_run=True), load_config(sample / "broadsheet.toml"), reporter
    )
    cpus = len(os.sched_getaffinity(0))
    on = f" on {cpus} processes" if cpus > 1 else ""
    assert result.failed == 0
    assert any(line.startswith(f"dry run: composed 300 message(s){on} in ") for line in reporter.infos)


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def gone(pids: set[int], within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"


def start_send(sample, sink, host, port):
    """`broadsheet send` with 2 compose workers in a child process; returned once 15 messages arrived, with
    the processes below it (the workers and their fork server)."""
    configure(sample, send={"transport": "smtp", "list": "list.csv", "connections": 2, "batch_size": 5,
                            "compose_workers": 2}, smtp=smtp(host, port))  # fmt: skip
    env = {**os.environ, "BROADSHEET_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes"], cwd=sample, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while len(sink.received) < 15 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    return process, descendants(process.pid)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_send_with_workers_stops_cleanly_and_resumes_each_recipient_once(sample, signum):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 80)]
    sink = Sink(delay=0.015)
    with smtp_server(sink) as (host, port):
        process, below = start_send(sample, sink, host, port)
        assert len(below) >= 2, "no compose workers started"
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "Traceback" not in err and "To resume, run the same command again" in out
        assert gone(below), "a compose worker outlived the send"
        after = states(sample)
        assert "sending" not in after.values() and "queued" in after.values()
        assert {email for email, state in after.items() if state == "sent"} == set(sink.recipients())
        sink.delay = 0.0
        assert cli(sample, "send", ISSUE, "--yes") == 0
    assert sink.recipients() == dict.fromkeys(people, 1)


def test_compose_workers_die_with_a_send_killed_with_sigkill(sample):
    write_subscribers(sample / "list.csv", 80)
    sink = Sink(delay=0.015)
    with smtp_server(sink) as (host, port):
        process, below = start_send(sample, sink, host, port)
        assert len(below) >= 2, "no compose workers started"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert gone(below), "a compose worker outlived the send"
