"""The SMTP transport against real aiosmtpd servers: plain, STARTTLS, implicit TLS, AUTH, and faults.

Each test runs the real `broadsheet send` (in-process) on the sample issue and checks every recipient
both in the journal and in what the server received.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from broadsheet.cli import main
from support.smtpd import Sink, configure, make_certificates, password_checker, smtp_server, write_subscribers

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
PASSWORD = "correct-horse-9f3a1c"
HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Unsubscribe", "List-Unsubscribe-Post")


@pytest.fixture
def sample(project, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "unsubscribe-secret")
    monkeypatch.delenv("BROADSHEET_SMTP_PASSWORD", raising=False)
    monkeypatch.chdir(project)
    return project


def send(project, *extra: str) -> int:
    return main(["--config", str(project / "broadsheet.toml"), "send", ISSUE, "--list", "list.csv", "--yes", *extra])


def journal(project) -> dict[str, tuple[str, int, str]]:
    """email -> (state, attempts, detail) of the one campaign."""
    with sqlite3.connect(project / ".broadsheet" / "state.db") as db:
        return {email: (state, attempts, detail) for email, state, attempts, detail in
                db.execute("SELECT email, state, attempts, detail FROM recipients")}


def smtp_settings(host, port, **more):
    return {"host": host, "port": port, "security": "none", "timeout": 10, **more}


def fast_send(**more):
    return {"transport": "smtp", "connections": 3, "batch_size": 5, "retries": 2, "retry_delay": 0.05, **more}


def assert_well_formed(received, email, first_name):
    message = received.message
    for header in HEADERS:
        assert message[header], f"{header} missing for {email}"
    assert email in message["To"]
    assert f"Dear {first_name}," in received.text()
    assert f"Dear {first_name}," in received.html()
    lines = received.raw.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    assert b"\n" not in b"".join(lines), "bare LF in the message"


def test_plain_smtp_delivers_each_recipient_once_personalised(sample):
    people = write_subscribers(sample / "list.csv", 30)
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, messages_per_connection=4))
        assert send(sample) == 0
    received = sink.by_recipient()
    assert sink.recipients() == {email: 1 for email, _ in people}
    for email, first_name in people:
        assert_well_formed(received[email], email, first_name)
    assert {state for state, _, _ in journal(sample).values()} == {"sent"}
    assert sink.connections >= 30 // 4  # connections renewed after messages_per_connection
    assert sink.connections <= 30 // 4 + 3 * 2


def test_faults_end_as_sent_once_or_failed_with_the_reason(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 40)]
    rejected, greylisted, always_busy, dropped = people[1:4], people[5:9], people[10:12], people[13:17]
    sink = Sink(
        replies={**{e: "550 5.1.1 no such user here" for e in rejected}, **{e: "451 4.3.0 mailbox busy" for e in always_busy}},
        replies_once={e: "451 4.7.1 greylisted, come back later" for e in greylisted},
        drop_once=set(dropped),
        close_after=6,
    )
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, messages_per_connection=100))
        assert send(sample) == 1  # some failed
    states = journal(sample)
    received = sink.recipients()
    for email in people:
        state, attempts, detail = states[email]
        if email in rejected:
            assert (state, received[email]) == ("failed", 0)
            assert detail.startswith("550 5.1.1 no such user")
        elif email in always_busy:
            assert (state, received[email]) == ("failed", 0)
            assert "451 4.3.0 mailbox busy" in detail and "gave up after 3 attempts" in detail
        else:
            assert (state, received[email]) == ("sent", 1), email
    assert all(states[e][1] == 2 for e in greylisted + dropped)
    assert sink.connections >= 35 // 6  # the server hung up (421) after 6 messages on each connection


def test_a_connection_the_server_closed_while_idle_is_renewed_without_deferring_anyone(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 3)]
    sink = Sink(replies_once={people[0]: "451 4.7.1 greylisted, come back later"})
    with smtp_server(sink, timeout=0.3) as (host, port):  # the server hangs up after 0.3 s without a command
        configure(sample, send=fast_send(connections=1, retries=1, retry_delay=1.0), smtp=smtp_settings(host, port))
        assert send(sample) == 0  # the retry, 0.5-1.5 s later, finds its connection closed: a new one, not a failure
    assert sink.recipients() == {email: 1 for email in people}
    assert journal(sample)[people[0]][:2] == ("sent", 2)


def test_starttls_with_a_trusted_ca_file(sample, tmp_path):
    people = write_subscribers(sample / "list.csv", 5)
    certificates = make_certificates(tmp_path)
    sink = Sink()
    with smtp_server(sink, tls_context=certificates.server_context, require_starttls=True) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, security="starttls", ca_file=str(certificates.ca_file)))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}


def test_an_untrusted_certificate_is_refused_and_nothing_is_failed(sample, tmp_path, capsys):
    write_subscribers(sample / "list.csv", 5)
    certificates = make_certificates(tmp_path)
    sink = Sink()
    with smtp_server(sink, tls_context=certificates.server_context, require_starttls=True) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, security="starttls"))
        assert send(sample) == 2
    assert "certificate is not trusted" in capsys.readouterr().err
    assert sink.received == []
    assert {state for state, _, _ in journal(sample).values()} == {"queued"}


def test_implicit_tls(sample, tmp_path):
    people = write_subscribers(sample / "list.csv", 5)
    certificates = make_certificates(tmp_path)
    sink = Sink()
    with smtp_server(sink, ssl_context=certificates.server_context) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, security="ssl", ca_file=str(certificates.ca_file)))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}


@pytest.mark.parametrize("password, expected", [(PASSWORD, 0), ("wrong-" + PASSWORD, 2)])
def test_auth_over_starttls_and_no_secret_leaks(sample, tmp_path, capsys, monkeypatch, password, expected):
    people = write_subscribers(sample / "list.csv", 6)
    certificates = make_certificates(tmp_path)
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", password)
    sink = Sink()
    server = dict(tls_context=certificates.server_context, require_starttls=True,
                  authenticator=password_checker("news", PASSWORD), auth_require_tls=True)
    with smtp_server(sink, **server) as (host, port):
        smtp = smtp_settings(host, port, security="starttls", ca_file=str(certificates.ca_file), username="news")
        configure(sample, send=fast_send(), smtp=smtp)
        assert send(sample) == expected
    output = capsys.readouterr()
    states = journal(sample)
    if expected == 0:
        assert sink.recipients() == {email: 1 for email, _ in people}
    else:
        assert "refused the login of 'news'" in output.err
        assert {state for state, _, _ in states.values()} == {"queued"}  # stopped, not failed
        assert sink.received == []
    for where in (output.out, output.err, (sample / ".broadsheet" / "state.db").read_bytes().decode("latin-1")):
        assert PASSWORD not in where


def test_a_server_refusing_the_sender_stops_the_campaign(sample, capsys):
    write_subscribers(sample / "list.csv", 8)
    sink = Sink(mail_reply="553 5.7.1 sender not allowed")
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port))
        assert send(sample) == 2
    error = capsys.readouterr().err
    assert re.search(r"refuses the sender .*553 5\.7\.1 sender not allowed", error)
    assert {state for state, _, _ in journal(sample).values()} == {"queued"}


def test_nobody_listening_stops_after_retries_without_failing_anyone(sample, capsys):
    write_subscribers(sample / "list.csv", 4)
    from support.smtpd import free_port

    configure(sample, send=fast_send(connections=1, retries=1), smtp=smtp_settings("127.0.0.1", free_port()))
    assert send(sample) == 2
    assert "cannot connect" in capsys.readouterr().err
    assert {state for state, _, _ in journal(sample).values()} <= {"queued", "deferred"}


def test_a_server_refusing_every_recipient_stops_before_failing_the_whole_list(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 60)]
    sink = Sink(replies={email: "554 5.7.1 relay access denied" for email in people})
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port))
        assert send(sample) == 2
    assert "25 recipients in a row were refused, the last with: 554 5.7.1 relay access denied" in capsys.readouterr().err
    states = [state for state, _, _ in journal(sample).values()]
    assert states.count("failed") <= 25 + 5 and states.count("queued") >= 60 - 30


def test_starttls_required_but_not_offered_is_a_clear_error(sample, capsys):
    write_subscribers(sample / "list.csv", 2)
    with smtp_server(Sink()) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, security="starttls"))
        assert send(sample) == 2
    assert "does not offer STARTTLS" in capsys.readouterr().err
    assert {state for state, _, _ in journal(sample).values()} == {"queued"}
