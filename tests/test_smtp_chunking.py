"""CHUNKING (RFC 3030): MAIL, RCPT and BDAT LAST with the content in one write, against a real server
that implements BDAT (aiosmtpd with ``support.bdat``), with every reply checked and the unknown rule kept.
"""

from __future__ import annotations

import re
import smtplib

import pytest
from support.smtpd import (
    Sink,
    configure,
    make_certificates,
    raw_message,
    smtp_server,
    smtp_transport,
    write_subscribers,
)
from test_smtp import STUFFING, fast_send, journal, sample, send, smtp_settings  # noqa: F401 (sample: a fixture)

BDAT_WRITE = re.compile(rb"MAIL FROM:<[^>]+>\r\nRCPT TO:<([^>]+)>\r\nBDAT (\d+) LAST\r\n")


def wire(sink: Sink) -> bytes:
    """Everything the server read, in order (one connection at a time in these tests)."""
    return b"".join(sink.chunks)


def bdat_writes(sink: Sink) -> list[re.Match]:
    return [match for chunk in sink.chunks if (match := BDAT_WRITE.match(chunk))]


# -- the test server itself: RFC 3030 §2 as written ------------------------------------------------------


def conversation(port: int) -> smtplib.SMTP:
    connection = smtplib.SMTP("127.0.0.1", port, timeout=10)
    connection.ehlo()
    return connection


def bdat(connection: smtplib.SMTP, chunk: bytes, *, last: bool = True) -> tuple[int, bytes]:
    connection.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return connection.getreply()


def test_the_test_server_takes_chunks_replies_to_each_and_stores_them_joined():
    sink = Sink(chunking=True)
    with smtp_server(sink) as (_host, port):
        connection = conversation(port)
        assert connection.has_extn("chunking")
        assert connection.mail("a@example.org")[0] == 250 and connection.rcpt("b@example.com")[0] == 250
        assert bdat(connection, b"Subject: x\r\n\r\nQUIT\r\n.\r\n", last=False) == (250, b"2.0.0 23 octets received")
        assert bdat(connection, b"")[0] == 250  # BDAT 0 LAST ends it
        assert connection.noop()[0] == 250
    assert [(m.sender, m.recipients, m.raw) for m in sink.received] == [
        ("a@example.org", ["b@example.com"], b"Subject: x\r\n\r\nQUIT\r\n.\r\n")
    ]


def test_the_test_server_refuses_bdat_out_of_sequence_after_reading_the_chunk():
    sink = Sink(chunking=True, replies={"nobody@example.com": "550 5.1.1 no such user"})
    with smtp_server(sink) as (_host, port):
        connection = conversation(port)
        assert bdat(connection, b"NOOP\r\n")[0] == 503  # no MAIL: refused, and the chunk read, not run
        assert connection.mail("a@example.org")[0] == 503  # a failed BDAT wants RSET first
        assert connection.rset()[0] == 250
        assert connection.mail("a@example.org")[0] == 250
        assert connection.rcpt("nobody@example.com")[0] == 550
        assert bdat(connection, b"x\r\n")[0] == 554  # no valid recipient
        assert connection.rset()[0] == 250 and connection.mail("a@example.org")[0] == 250
        assert connection.rcpt("b@example.com")[0] == 250
        assert bdat(connection, b"part\r\n", last=False)[0] == 250
        assert connection.docmd("DATA")[0] == 503  # no DATA in a BDAT transaction
        assert bdat(connection, b"rest\r\n")[0] == 503  # nor more BDAT until RSET
        assert connection.rset()[0] == 250 and connection.noop()[0] == 250
    assert sink.received == []


def test_the_test_server_does_not_know_bdat_unless_it_offers_chunking():
    with smtp_server(Sink()) as (_host, port):
        connection = conversation(port)
        assert not connection.has_extn("chunking")
        assert connection.docmd("BDAT", "0 LAST")[0] == 500


# -- broadsheet over CHUNKING ---------------------------------------------------------------------------


def test_each_message_is_one_write_of_mail_rcpt_bdat_last_and_the_content_unstuffed(sample):
    people = write_subscribers(sample / "list.csv", 6)
    sink = Sink(chunking=True)
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}
    assert {state for state, _, _ in journal(sample).values()} == {"sent"}
    writes = bdat_writes(sink)
    assert [match[1].decode() for match in writes] == [email for email, _ in people]
    received = sink.by_recipient()
    for match in writes:
        raw = received[match[1].decode()].raw
        assert int(match[2]) == len(raw)
        assert match.group(0) + raw in wire(sink)  # the content right after the command, as composed
    assert b"\n." in raw  # the sample has lines starting with "." (quoted-printable): sent without stuffing
    assert b"\r\nDATA\r\n" not in wire(sink)


@pytest.mark.parametrize(
    "offered, settings, bdat",
    [
        ({"chunking": True}, {}, True),
        ({"chunking": True}, {"chunking": False}, False),
        ({"chunking": True}, {"pipelining": False}, False),  # BDAT only pipelined
        ({"chunking": True, "pipelining": False}, {}, False),
        ({"chunking": False}, {}, False),
    ],
)
def test_bdat_only_where_chunking_and_pipelining_are_offered_and_on(sample, offered, settings, bdat):
    people = write_subscribers(sample / "list.csv", 3)
    sink = Sink(**offered)
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port, **settings))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}
    assert len(bdat_writes(sink)) == (len(people) if bdat else 0)
    assert (wire(sink).count(b"\r\nDATA\r\n") + wire(sink).startswith(b"DATA")) == (0 if bdat else len(people))


def test_a_421_to_mail_amid_a_bdat_write_moves_to_a_new_connection_and_loses_nothing(sample):
    """The server refuses MAIL (and so the RCPT and the chunk after it) and hangs up: nothing was taken.
    (Refusals of RCPT and MAIL amid a BDAT write: test_smtp's mid-pipeline test, with chunking.)"""
    people = [email for email, _ in write_subscribers(sample / "list.csv", 5)]
    sink = Sink(chunking=True, close_after=2)
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port))
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email in people}
    assert {state[:2] for state in journal(sample).values()} == {("sent", 1)}
    assert sink.connections >= 3


def test_a_refused_bdat_fails_or_defers_that_recipient_and_the_transaction_is_reset(sample):
    people = [email for email, _ in write_subscribers(sample / "list.csv", 5)]
    sink = Sink(
        chunking=True,
        data_replies_once={people[0]: "554 5.6.0 message content rejected", people[2]: "452 4.3.1 queue full"},
    )
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1), smtp=smtp_settings(host, port))
        assert send(sample) == 1
    states = journal(sample)
    assert states[people[0]][0::2] == ("failed", "554 5.6.0 message content rejected")
    assert states[people[2]][:2] == ("sent", 2)
    assert sink.recipients() == {email: 1 for email in people[1:]}
    assert sink.resets == 2  # RSET after each refused BDAT, as RFC 3030 requires: the next message went through
    assert [states[email][:2] for email in (people[1], people[3], people[4])] == [("sent", 1)] * 3


def test_a_connection_dropped_after_the_bdat_write_leaves_the_message_unknown(sample, capsys):
    """Once MAIL, RCPT and the whole chunk are out, the server may store the message as soon as it has
    read them: no reply at all is unknown, even where (as here) the server in fact hung up at RCPT.
    (A lost reply to BDAT LAST itself: test_smtp's final-dot tests, with chunking.)"""
    people = [email for email, _ in write_subscribers(sample / "list.csv", 3)]
    sink = Sink(chunking=True, drop_once={people[1]})
    with smtp_server(sink) as (host, port):
        configure(sample, send=fast_send(connections=1, retries=3), smtp=smtp_settings(host, port))
        assert send(sample) == 1
        assert "may or may not have received it" in capsys.readouterr().out
        assert send(sample, "--retry-failed") == 1
    assert sink.recipients() == {people[0]: 1, people[2]: 1}
    state, attempts, detail = journal(sample)[people[1]]
    assert (state, attempts) == ("unknown", 1) and "not sent again by itself" in detail


def test_starttls_with_chunking(sample, tmp_path):
    people = write_subscribers(sample / "list.csv", 4)
    certificates = make_certificates(tmp_path)
    sink = Sink(chunking=True)
    with smtp_server(sink, tls_context=certificates.server_context, require_starttls=True) as (host, port):
        smtp = smtp_settings(host, port, security="starttls", ca_file=str(certificates.ca_file))
        configure(sample, send=fast_send(connections=1), smtp=smtp)
        assert send(sample) == 0
    assert sink.recipients() == {email: 1 for email, _ in people}
    assert len(bdat_writes(sink)) == len(people)  # read by the server after the TLS handshake
    assert b"STARTTLS" in wire(sink) and b"MAIL FROM" not in wire(sink).split(b"STARTTLS")[0]


@pytest.mark.parametrize("chunking", [True, False])
@pytest.mark.parametrize("raw", [raw for raw, _ in STUFFING if b"\n" not in raw.replace(b"\r\n", b"")])
def test_bdat_and_data_store_the_same_message(raw, chunking):
    sink = Sink(chunking=chunking)
    with smtp_server(sink) as (host, port), smtp_transport(host, port) as transport:
        assert transport.send_one(raw_message(raw)).status == "sent"
    assert [message.raw for message in sink.received] == [raw if raw.endswith(b"\r\n") else raw + b"\r\n"]


def test_a_large_message_goes_whole_and_one_over_the_servers_limit_fails_alone():
    line = b".a line of seventy-odd characters, starting with a dot as quoted-printable may\r\n"
    large, too_large = line * 80_000, line * 160_000  # about 6 and 12 MB
    sink = Sink(chunking=True)
    with smtp_server(sink, data_size_limit=10_000_000) as (host, port), smtp_transport(host, port) as transport:
        assert transport.send_one(raw_message(large, "one@example.com")).status == "sent"
        refused = transport.send_one(raw_message(too_large, "two@example.com"))
        assert (refused.status, refused.detail[:3]) == ("failed", "552")
        assert transport.send_one(raw_message(b"Subject: small\r\n\r\nhi\r\n", "three@example.com")).status == "sent"
    assert [(m.recipients, m.raw) for m in sink.received] == [
        (["one@example.com"], large),
        (["three@example.com"], b"Subject: small\r\n\r\nhi\r\n"),
    ]
    assert sink.connections == 1 and sink.resets == 1
