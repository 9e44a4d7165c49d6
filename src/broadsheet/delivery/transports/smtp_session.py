"""One message's SMTP conversation on smtplib's connection (its socket, ``send`` and ``getreply``).

smtplib's ``sendmail`` waits for every reply in turn and reads the reply to the final "." with the same
timeout as any command, then calls a lost reply a lost connection. This module instead:

* sends MAIL FROM, RCPT TO and DATA in one write when the server advertises PIPELINING (RFC 2920) and
  reads their replies in order, or one command at a time otherwise;
* sends the content and waits for the reply to the final "." for ``data_timeout`` seconds
  (RFC 5321 §4.5.3.2: 10 minutes), and raises :class:`ReplyLost` when that reply never comes, because
  the server may have stored the message by then;
* or, when the server advertises CHUNKING (RFC 3030) as well as PIPELINING, sends MAIL FROM, RCPT TO
  and ``BDAT <size> LAST`` with the content in one write: one round trip per message, no dot-stuffing;
* logs in with AUTH PLAIN in UTF-8 (RFC 4954, RFC 4616), which smtplib cannot do (it encodes ASCII).

It returns the server's replies and leaves their meaning to the transport.
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM_ADDRESS = re.compile(rf"{ATOM}(?:\.{ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


@dataclass(frozen=True, slots=True)
class Reply:
    """A server's reply: its code (-1 when unreadable) and its text, lines joined by spaces."""

    code: int
    text: str

    @classmethod
    def read(cls, connection: smtplib.SMTP) -> Reply:
        return cls.of(*connection.getreply())

    @classmethod
    def of(cls, code: int, text: bytes | str) -> Reply:
        """A reply from smtplib's (code, text), as ``getreply`` and its exceptions carry them."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return cls(code, " ".join(str(text).split()))


class ReplyLost(Exception):
    """The final "." (or the whole BDAT write) went out but no reply came back (timeout, connection
    closed or reset)."""


def envelope(connection: smtplib.SMTP, sender: str, recipient: str, *, smtputf8: bool, pipelining: bool) -> list[Reply]:
    """Send MAIL FROM, RCPT TO and DATA; return their replies in order.

    Pipelined, the three commands leave in one write and every reply is read (a refused MAIL is
    followed by the server's refusals of RCPT and DATA). One at a time, it stops at the first refusal.
    Either way a 421 (the server is closing the connection) ends the reading. Raises smtplib's
    ``SMTPServerDisconnected`` (or ``OSError``) when the connection fails: nothing was sent.
    """
    commands = [*_mail_and_rcpt(connection, sender, recipient, smtputf8=smtputf8), command("DATA", connection)]
    if pipelining:
        connection.send(b"".join(commands))
    replies: list[Reply] = []
    for line in commands:
        if not pipelining:
            connection.send(line)
        replies.append(Reply.read(connection))
        if replies[-1].code == 421 or (not pipelining and _refuses(len(replies) - 1, replies[-1])):
            break
    return replies


def chunked(
    connection: smtplib.SMTP, sender: str, recipient: str, raw: bytes, *, smtputf8: bool, data_timeout: float
) -> tuple[list[Reply], Reply | None]:
    """Send MAIL FROM, RCPT TO and ``BDAT <size> LAST`` followed by the content, all in one write
    (RFC 3030 pipelined as RFC 2920 allows); return the replies to MAIL and RCPT, and the one to BDAT.

    The content goes as it is (BDAT takes octets: no dot-stuffing), ending in CRLF as after DATA. A
    failure while writing is smtplib's ``SMTPServerDisconnected``: the chunk did not arrive whole, so
    the server cannot have the message. Once written, the server may store it whenever it has read it:
    every reply is awaited for ``data_timeout`` and a missing one raises :class:`ReplyLost`, unless MAIL
    or RCPT was refused already (then that refusal decides, and the BDAT reply is None). A 421 (the
    server is closing) ends the reading.
    """
    content = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
    commands = _mail_and_rcpt(connection, sender, recipient, smtputf8=smtputf8)
    connection.send(b"".join((*commands, b"BDAT %d LAST\r\n" % len(content), content)))
    replies: list[Reply] = []
    with _patience(connection, data_timeout):
        try:
            while len(replies) < len(commands):
                replies.append(Reply.read(connection))
                if replies[-1].code == 421:
                    return replies, None
            return replies, Reply.read(connection)
        except (smtplib.SMTPException, OSError) as exc:
            if refusal(replies) is not None:
                return replies, None
            raise ReplyLost(_why_lost(exc, data_timeout)) from None


def _mail_and_rcpt(connection: smtplib.SMTP, sender: str, recipient: str, *, smtputf8: bool) -> list[bytes]:
    connection.command_encoding = "utf-8" if smtputf8 else "ascii"
    return [
        command("MAIL FROM:" + quoted(sender) + (" SMTPUTF8" if smtputf8 else ""), connection),
        command("RCPT TO:" + quoted(recipient), connection),
    ]


def quoted(address: str) -> str:
    """``<address>`` as smtplib's ``quoteaddr`` makes it. A plain ASCII dot-atom address, nearly every one,
    comes out as it went in, so it skips the parse (``email.utils.parseaddr``), which costs about as much
    as composing the message."""
    if DOT_ATOM_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def refusal(replies: list[Reply]) -> Reply | None:
    """The first reply that refuses its command (MAIL and RCPT want 2xx, DATA wants 354), or None.

    A list cut short (one command at a time, or a 421) always ends with a refusal."""
    return next((reply for index, reply in enumerate(replies) if _refuses(index, reply)), None)


def _refuses(index: int, reply: Reply) -> bool:
    return reply.code != 354 if index == 2 else not 200 <= reply.code < 300


def content(connection: smtplib.SMTP, raw: bytes, *, data_timeout: float) -> Reply:
    """Send the message (dot-stuffed) and the final "."; the server's reply within ``data_timeout``.

    A failure while sending is smtplib's ``SMTPServerDisconnected``: the final "." did not go out, so
    the server cannot have taken the message. Once it is out, a missing reply raises :class:`ReplyLost`.
    """
    connection.send(dot_stuffed(raw))
    with _patience(connection, data_timeout):
        try:
            return Reply.read(connection)
        except (smtplib.SMTPException, OSError) as exc:
            raise ReplyLost(_why_lost(exc, data_timeout)) from None


@contextmanager
def _patience(connection: smtplib.SMTP, data_timeout: float) -> Iterator[None]:
    """Replies read within ``data_timeout`` instead of the command timeout, restored after (when the
    connection is still open)."""
    assert connection.sock is not None
    command_timeout = connection.sock.gettimeout()
    connection.sock.settimeout(data_timeout)
    try:
        yield
    finally:
        if connection.sock is not None:
            connection.sock.settimeout(command_timeout)


def end_empty_data(connection: smtplib.SMTP) -> Reply:
    """End a DATA the server accepted although the transaction had failed (RFC 2920 §3.1): a lone "."."""
    connection.send(b".\r\n")
    return Reply.read(connection)


def reset(connection: smtplib.SMTP) -> bool:
    """RSET after a refused transaction; False when the connection is no longer usable."""
    try:
        connection.send(command("RSET", connection))
        return Reply.read(connection).code == 250
    except (smtplib.SMTPException, OSError):
        return False


def auth_plain(connection: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN with the credentials in UTF-8; raises ``SMTPAuthenticationError`` when refused."""
    blob = plain_blob(username, password)
    code, text = connection.docmd("AUTH", "PLAIN " + blob)
    if code == 334:  # the server wants the credentials after an empty challenge
        code, text = connection.docmd(blob)
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, text)


def plain_blob(username: str, password: str) -> str:
    """The base64 SASL PLAIN response: authorisation id (empty), NUL, user name, NUL, password, in UTF-8."""
    return base64.b64encode(b"\0" + username.encode("utf-8") + b"\0" + password.encode("utf-8")).decode("ascii")


def command(line: str, connection: smtplib.SMTP) -> bytes:
    """One command line in the connection's encoding; a CR or LF inside it is refused (ValueError)."""
    if "\r" in line or "\n" in line:
        raise ValueError("a line break inside an SMTP command")
    return (line + "\r\n").encode(connection.command_encoding)


def dot_stuffed(raw: bytes) -> bytes:
    """The content as it goes after DATA: a "." doubled at the start and after every LF, CRLF at the end
    (added when missing), then ".". Bytes operations, one copy: this runs once per message."""
    head = b"." if raw.startswith(b".") else b""
    tail = b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n"
    return b"".join((head, raw.replace(b"\n.", b"\n.."), tail))


def _why_lost(exc: BaseException, data_timeout: float) -> str:
    cause = exc.__context__ if isinstance(exc, smtplib.SMTPServerDisconnected) else exc
    if isinstance(cause, (socket.timeout, TimeoutError)):
        return f"no reply to the end of the message within {data_timeout:g} s"
    if isinstance(cause, ConnectionResetError):
        return "the connection was reset after the end of the message, before a reply"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"an unreadable reply to the end of the message ({exc.smtp_code})"
    return "the server closed the connection after the end of the message without a reply"
