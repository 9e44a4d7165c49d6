"""The SMTP transport against real aiosmtpd servers: plain, STARTTLS, implicit TLS, AUTH, and faults.

Each test runs the real `broadsheet send` (in-process) on the sample issue and checks every recipient
both in the journal and in what the server received.
"""

from __future__ import annotations

import base64
import re
import smtplib
import sqlite3

import pytest
from support.ports import refused_port
from support.smtpd import (
    Sink,
    configure,
    echoing_checker,
    make_certificates,
    password_checker,
    raw_message,
    smtp_server,
    smtp_transport,
    write_subscribers,
)

from broadsheet.delivery.transports.smtp_session import dot_stuffed, quoted
from broadsheet.faces.cli import main

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
PASSWORD = "correct-horse-9f3a1c"
HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Unsubscribe", "List-Unsubscribe-Post")


@pytest.fixture
def sample(project, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.delenv("BROADSHEET_SMTP_PASSWORD", raising=False)
    monkeypatch.chdir(project)
    return project


def send(project, *extra: str) -> int:
    return main(["--config", str(project / "broadsheet.toml"), "send", ISSUE, "--list", "list.csv", "--yes", *extra])


def journal(project) -> dict[str, tuple[str, int, str]]:
    """email -> (state, attempts, detail) of the one campaign."""
    with sqlite3.connect(project / ".broadsheet" / "state.db") as db:
        return {
            email: (state, attempts, detail)
            for email, state, attempts, detail in db.execute("SELECT email, state, attempts, detail FROM recipients")
        }


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
        replies={
            **{e: "550 5.1.1 no such user here" for e in rejected},
            **{e: "451 4.3.0 mailbox busy" for e in always_busy},
        },
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
        state, _attempts, detail = states[email]
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
        configure(
            sample,
            send=fast_send(),
            smtp=smtp_settings(host, port, security="starttls", ca_file=str(certificates.ca_file)),
        )
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
        configure(
            sample, send=fast_send(), smtp=smtp_settings(host, port, security="ssl", ca_file=str(certificates.ca_file))
        )
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}


@pytest.mark.parametrize("password, expected", [(PASSWORD, 0), ("wrong-" + PASSWORD, 2)])
def test_auth_over_starttls_and_no_secret_leaks(sample, tmp_path, capsys, monkeypatch, password, expected):
    people = write_subscribers(sample / "list.csv", 6)
    certificates = make_certificates(tmp_path)
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", password)
    sink = Sink()
    server = dict(
        tls_context=certificates.server_context,
        require_starttls=True,
        authenticator=password_checker("news", PASSWORD),
        auth_require_tls=True,
    )
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
    with refused_port() as port:
        configure(sample, send=fast_send(connections=1, retries=1), smtp=smtp_settings("127.0.0.1", port))
        assert send(sample) == 2
    assert "cannot connect" in capsys.readouterr().err
    assert {state for state, _, _ in journal(sample).values()} <= {"queued", "deferred"}


def test_a_server_refusing_every_recipient_stops_before_failing_the_whole_list(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 60)]
    sink = Sink(replies={email: "554 5.7.1 relay access denied" for email in people})
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port))
        assert send(sample) == 2
    assert (
        "25 recipients in a row were refused, the last with: 554 5.7.1 relay access denied" in capsys.readouterr().err
    )
    states = [state for state, _, _ in journal(sample).values()]
    assert states.count("failed") <= 25 + 5 and states.count("queued") >= 60 - 30


def test_starttls_required_but_not_offered_is_a_clear_error(sample, capsys):
    write_subscribers(sample / "list.csv", 2)
    with smtp_server(Sink()) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, security="starttls"))
        assert send(sample) == 2
    assert "does not offer STARTTLS" in capsys.readouterr().err
    assert {state for state, _, _ in journal(sample).values()} == {"queued"}


# -- the reply to the final "." (issue 8): a missing one is unknown, never resent ---------------------------


def test_a_late_reply_to_the_final_dot_within_data_timeout_is_sent_once(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 3)]
    sink = Sink(stored_late={people[1]: 2.0})  # longer than the command timeout, well within data_timeout
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port, timeout=1, data_timeout=20))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email in people}
    assert {email: state[:2] for email, state in journal(sample).items()} == {email: ("sent", 1) for email in people}


@pytest.mark.parametrize("chunking", [False, True])  # the reply to the final "." or to BDAT LAST
@pytest.mark.parametrize("fault", ["stored_silent", "stored_closed"])
def test_no_reply_to_the_final_dot_is_unknown_stored_once_and_not_resent(sample, capsys, fault, chunking):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 4)]
    lost = people[2]
    sink = Sink(chunking=chunking, **{fault: {lost}})
    with smtp_server(sink) as (host, port):
        configure(
            sample,
            send=fast_send(connections=1, retries=3),
            smtp=smtp_settings(host, port, timeout=1, data_timeout=1.5),
        )
        assert send(sample) == 1
        assert "may or may not have received it" in capsys.readouterr().out
        assert send(sample, "--retry-failed") == 1  # unknown is not failed: nothing is sent again
    assert sink.recipients() == {email: 1 for email in people}  # the server stored it exactly once
    state, attempts, detail = journal(sample)[lost]
    assert (state, attempts) == ("unknown", 1)
    why = (
        "no reply to the end of the message within 1.5 s"
        if fault == "stored_silent"
        else "the server closed the connection after the end of the message without a reply"
    )
    assert detail.startswith(why) and "not sent again by itself" in detail and f"{host}:{port}" in detail
    assert all(journal(sample)[email][:2] == ("sent", 1) for email in people if email != lost)


def test_errors_before_the_final_dot_are_deferred_and_resent(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 6)]
    sink = Sink(
        drop_once={people[1]},
        data_replies_once={people[3]: "421 4.3.2 shutting down", people[4]: "451 4.3.0 queue full"},
    )
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email in people}
    states = journal(sample)
    assert [states[email][:2] for email in people] == [
        ("sent", 1),
        ("sent", 2),
        ("sent", 1),
        ("sent", 2),
        ("sent", 2),
        ("sent", 1),
    ]


def test_a_refusal_of_the_content_fails_that_recipient_only(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 3)]
    sink = Sink(data_replies_once={people[0]: "554 5.6.0 message content rejected"})
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port))
        assert send(sample) == 1
    assert sink.recipients() == {email: 1 for email in people[1:]}
    assert journal(sample)[people[0]][0::2] == ("failed", "554 5.6.0 message content rejected")


@pytest.mark.parametrize(
    "smtp, error",
    [
        ({"data_timeout": 0}, "'smtp.data_timeout' must be a number above 0"),
        ({"timeout": 30, "data_timeout": 10}, "smtp.data_timeout (10 s) is shorter than smtp.timeout (30 s)"),
        ({"pipelining": "yes"}, "'smtp.pipelining' must be true or false"),
    ],
)
def test_smtp_timeouts_and_pipelining_are_checked_in_the_config(sample, capsys, smtp, error):
    write_subscribers(sample / "list.csv", 1)
    configure(sample, send=fast_send(), smtp={"host": "127.0.0.1", "security": "none", **smtp})
    assert send(sample) == 2
    err = capsys.readouterr().err
    assert error in err and "broadsheet.toml:" in err and "Traceback" not in err


# -- AUTH: UTF-8 passwords, and no echo of the password in any form ---------------------------------------

NON_ASCII_PASSWORD = "pässwörd-’ß-9f3a1c"


def auth_server(checker, **more):
    return dict(authenticator=checker, auth_require_tls=False, **more)


def test_a_non_ascii_password_logs_in_with_auth_plain_in_utf8(sample, monkeypatch):
    people = write_subscribers(sample / "list.csv", 3)
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", NON_ASCII_PASSWORD)
    sink = Sink()
    with smtp_server(sink, **auth_server(password_checker("news", NON_ASCII_PASSWORD))) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, username="news"))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}


def test_a_non_ascii_password_without_auth_plain_is_one_line_naming_the_variable(sample, monkeypatch, capsys):
    write_subscribers(sample / "list.csv", 2)
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", NON_ASCII_PASSWORD)
    server = auth_server(password_checker("news", NON_ASCII_PASSWORD), auth_exclude_mechanism=["PLAIN"])
    with smtp_server(Sink(), **server) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, username="news"))
        assert send(sample) == 2
    err = capsys.readouterr().err
    assert "BROADSHEET_SMTP_PASSWORD has characters outside ASCII" in err and "offers only LOGIN" in err
    assert NON_ASCII_PASSWORD not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert {state for state, _, _ in journal(sample).values()} == {"queued"}


def secret_forms(username: str, password: str) -> list[str]:
    """What a careless server may echo: the password, and base64 as AUTH PLAIN and LOGIN send it."""

    def encode(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    plain, login = encode(b"\0" + username.encode() + b"\0" + password.encode()), encode(password.encode())
    return [password, plain, plain.rstrip("="), login, login.rstrip("=")]


@pytest.mark.parametrize("password, exclude", [(PASSWORD, []), (PASSWORD, ["PLAIN"]), (NON_ASCII_PASSWORD, [])])
def test_a_server_echoing_the_credentials_in_its_refusal_leaks_nothing(sample, monkeypatch, capsys, password, exclude):
    write_subscribers(sample / "list.csv", 2)
    wrong = "wrong-" + password
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", wrong)
    server = auth_server(echoing_checker("news", password), auth_exclude_mechanism=exclude)
    with smtp_server(Sink(), **server) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port, username="news"))
        assert send(sample) == 2
    output = capsys.readouterr()
    assert "refused the login of 'news': 535 5.7.8 bad credentials ***" in output.err
    journal_text = (sample / ".broadsheet" / "state.db").read_bytes().decode("latin-1")
    for form in secret_forms("news", wrong):
        assert form not in output.out + output.err + journal_text


# -- STARTTLS never falls back to plain text ------------------------------------------------------------


def test_starttls_advertised_but_refused_sends_nothing_in_plain_text(sample, capsys):
    write_subscribers(sample / "list.csv", 3)
    sink = Sink(claim_starttls=True)
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1, retries=1), smtp=smtp_settings(host, port, security="starttls"))
        assert send(sample) == 2
    assert "the server refused STARTTLS: 454 TLS not available; nothing is sent without TLS" in capsys.readouterr().err
    assert sink.received == [] and not any(b"MAIL FROM" in chunk for chunk in sink.chunks)
    assert {state for state, _, _ in journal(sample).values()} <= {"queued", "deferred"}


def test_security_none_sends_in_plain_text_even_when_starttls_is_offered(sample, tmp_path):
    people = write_subscribers(sample / "list.csv", 2)
    certificates = make_certificates(tmp_path)
    sink = Sink()
    with smtp_server(sink, tls_context=certificates.server_context) as (host, port):
        configure(sample, send=fast_send(), smtp=smtp_settings(host, port))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}
    assert not any(b"STARTTLS" in chunk for chunk in sink.chunks)


# -- pipelining (RFC 2920) ----------------------------------------------------------------------------------


def envelope_writes(sink: Sink) -> list[bytes]:
    """The chunks the server read that hold a MAIL FROM."""
    return [chunk for chunk in sink.chunks if b"MAIL FROM:" in chunk]


@pytest.mark.parametrize(
    "advertised, configured, pipelined", [(True, True, True), (True, False, False), (False, True, False)]
)
def test_mail_rcpt_and_data_go_in_one_write_when_pipelining_is_offered_and_on(
    sample, advertised, configured, pipelined
):
    people = write_subscribers(sample / "list.csv", 5)
    sink = Sink(pipelining=advertised)
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port, pipelining=configured))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}
    writes = envelope_writes(sink)
    assert len(writes) == len(people)
    together = [
        re.fullmatch(rb"MAIL FROM:<[^>]+>\r\nRCPT TO:<[^>]+>\r\nDATA\r\n", chunk) is not None for chunk in writes
    ]
    assert together == [pipelined] * len(people)
    rcpt_on_its_own = any(chunk.startswith(b"RCPT TO:") for chunk in sink.chunks)
    assert rcpt_on_its_own is not pipelined


@pytest.mark.parametrize("pipelining, chunking", [(True, False), (False, False), (True, True)])
def test_refusals_mid_pipeline_are_classified_and_the_connection_goes_on(sample, pipelining, chunking):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 8)]
    rejected, busy_once, busy_always = people[1], people[3], people[5]
    sink = Sink(
        replies={rejected: "550 5.1.1 no such user here", busy_always: "452 4.2.2 mailbox full"},
        replies_once={busy_once: "451 4.3.0 try again later"},
        mail_replies_once={"newsletter@example.org": "451 4.3.2 try again later"},
        pipelining=pipelining,
        chunking=chunking,  # MAIL, RCPT and BDAT LAST in one write: the refusals amid it, as amid DATA's
    )
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1, retries=1), smtp=smtp_settings(host, port))
        assert send(sample) == 1
    states = journal(sample)
    assert states[rejected] == ("failed", 1, "550 5.1.1 no such user here")
    assert (
        states[busy_always][0] == "failed"
        and "452 4.2.2 mailbox full (gave up after 2 attempts)" in states[busy_always][2]
    )
    assert states[busy_once][:2] == ("sent", 2)
    assert states[people[0]][:2] == ("sent", 2)  # its first MAIL FROM got the 451
    assert sink.recipients() == {email: 1 for email in people if email not in (rejected, busy_always)}
    first_mail = next(i for i, chunk in enumerate(sink.chunks) if chunk.startswith(b"MAIL FROM:"))
    assert not any(chunk.startswith(b"ehlo") for chunk in sink.chunks[first_mail:])  # one connection throughout:
    assert sink.resets == 5  # each refusal (2 × 550/452, 451 to RCPT, 451 to MAIL, 452 again) reset it (RSET)


def test_a_server_that_stops_answering_the_final_dot_stops_the_campaign_after_three(sample, capsys):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 6)]
    sink = Sink(stored_silent=set(people))
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port, timeout=1, data_timeout=1))
        assert send(sample) == 2
    assert "did not answer the end of the last 3 messages within 1 s" in capsys.readouterr().err
    states = journal(sample)
    assert [states[email][0] for email in people] == ["unknown"] * 3 + ["queued"] * 3
    assert sink.recipients() == {email: 1 for email in people[:3]}


@pytest.mark.parametrize(
    ("smtp", "error"),
    [
        ({"host": "mail.example.org", "username": "news"}, "would send the password unencrypted"),
        ({"host": "127.0.0.1", "ca_file": "missing-ca.pem"}, "cannot read the CA file"),
    ],
)
def test_a_config_mistake_the_transport_finds_is_a_config_error(sample, monkeypatch, smtp, error):
    """Named with the key's line in broadsheet.toml, before anyone is mailed."""
    from broadsheet.core.config import load_config
    from broadsheet.core.errors import ConfigError
    from broadsheet.delivery.transports.smtp import SmtpTransport

    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", PASSWORD)
    configure(sample, send=fast_send(), smtp={"security": "none", **smtp})
    config = load_config(sample / "broadsheet.toml")
    with pytest.raises(ConfigError, match=error) as caught:
        transport = SmtpTransport(config)
        transport._tls_context()
    assert caught.value.where is not None and "broadsheet.toml:" in caught.value.where


# -- the content after DATA: dot-stuffing (RFC 5321 §4.5.2) ------------------------------------------------

STUFFING = [
    (b"Subject: x\r\n\r\nbody\r\n", b"Subject: x\r\n\r\nbody\r\n.\r\n"),
    (b"Subject: x\r\n\r\n.\r\nafter\r\n", b"Subject: x\r\n\r\n..\r\nafter\r\n.\r\n"),  # a line that is just "."
    (b".first line\r\n", b"..first line\r\n.\r\n"),  # the content starts with "."
    (b"a\r\n..two\r\n.three.\r\n", b"a\r\n...two\r\n..three.\r\n.\r\n"),  # only the line's first "."
    (b"a\r\n\r\n.\r\n", b"a\r\n\r\n..\r\n.\r\n"),  # CRLF.CRLF inside the content never ends it early
    (b"ends in a dot line\r\n.", b"ends in a dot line\r\n..\r\n.\r\n"),
    (b"no line end", b"no line end\r\n.\r\n"),  # CRLF added before the final "."
    (b"bare\n.lf\n", b"bare\n..lf\n\r\n.\r\n"),  # a "." after a bare LF is doubled too
    (b"bare\r.cr\r", b"bare\r.cr\r\r\n.\r\n"),  # a bare CR does not start a line
    (b"", b"\r\n.\r\n"),
]


@pytest.mark.parametrize("raw, wire", STUFFING)
def test_dot_stuffing_doubles_a_leading_dot_and_ends_with_crlf_dot_crlf(raw, wire):
    assert dot_stuffed(raw) == wire
    assert wire.endswith(b"\r\n.\r\n") and b"\r\n.\r\n" not in wire[:-3]  # the end, and only there


@pytest.mark.parametrize(
    "address",
    [
        "reader00001@example.com", "bounce+7.Ab-c_D@lists.example.org", "o'neil@example.org", "x=y/z{a}|b~c@x-y.z",
        '"john doe"@example.org', "a..b@example.org", ".a@example.org", "a.@example.org", "user@[127.0.0.1]",
        "ünï@exämple.org", "", "a(comment)@example.org", "Ann <ann@example.org>", "a@b.",
    ],
)  # fmt: skip
def test_mail_and_rcpt_quote_an_address_as_smtplib_does(address):
    assert quoted(address) == smtplib.quoteaddr(address)


@pytest.mark.parametrize("raw", [raw for raw, _ in STUFFING if b"\n" not in raw.replace(b"\r\n", b"")])
def test_a_server_stores_the_content_exactly_as_composed(raw):
    """aiosmtpd undoes the stuffing: what it stores is the message, with the CRLF the final "." needs."""
    sink = Sink(pipelining=False)
    with smtp_server(sink) as (host, port), smtp_transport(host, port) as transport:
        assert transport.send_one(raw_message(raw)).status == "sent"
    assert [message.raw for message in sink.received] == [raw if raw.endswith(b"\r\n") else raw + b"\r\n"]
