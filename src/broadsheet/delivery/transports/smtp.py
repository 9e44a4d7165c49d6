"""The SMTP transport: one connection per worker, reused for many messages.

A connection is renewed after ``smtp.messages_per_connection`` messages or when the server closes it
(421, a dropped connection, or a hang-up while it sat idle, found with a NOOP before it is used again).
TLS always verifies the certificate and the host name, against the system's trust store or
``smtp.ca_file``; STARTTLS required but not offered is an error, never a fall-back to plain text.

Per message (the conversation itself is in ``smtp_session``: MAIL, RCPT and DATA pipelined when the
server offers PIPELINING; MAIL, RCPT and BDAT LAST with the content in one write when it offers
CHUNKING too): 2xx sent; 4xx, 421, and a timeout or drop before the final "." (or before the BDAT
chunk has gone out whole) deferred; 5xx failed, with the server's code and text; and no reply to the
final "." (or to any command of the BDAT write) within ``smtp.data_timeout`` unknown, never resent by
itself (the server may have stored it). Login refused →
``TransportAuthError``; a server that refuses the sender or the connection itself with 5xx →
``TransportError``: both stop the campaign. No error or detail carries the password, in clear or in
the base64 forms AUTH sends.

An exception raised in the middle of a batch carries ``deliveries``: what happened to the messages of
the batch before it, so the campaign can record them.
"""

from __future__ import annotations

import base64
import functools
import smtplib
import socket
import ssl
import time

from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config, secret
from broadsheet.core.errors import ConfigError, TransientTransportError, TransportAuthError, TransportError
from broadsheet.core.events import rejection_kind

from . import smtp_session
from .base import Delivery, Status, Transport, TransportOptions, Verdict

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
IDLE_PROBE = 0.25  # seconds unused after which a NOOP checks that the server has not hung up
UNKNOWN_IN_A_ROW = 3  # final "." left unanswered this many times in a row on one worker: stop, send no more


class SmtpTransport(Transport):
    """Sends each message over a kept-alive SMTP connection (``smtp_session`` speaks for it)."""

    name = "smtp"
    raw_only = True
    # One message per batch: SMTP sends one at a time on a connection, so what the journal marks 'sending'
    # is exactly what is in flight (a kill -9 leaves one unknown per connection, not a batch of them), and
    # Ctrl-C waits for one message per connection. It costs a little against a zero-latency local server,
    # nothing measurable over real latency (docs/performance.md).

    def __init__(self, config: Config, options: TransportOptions | None = None):
        super().__init__(config, options)
        self.settings = config.smtp
        self.where = f"{self.settings.host}:{self.settings.port}"
        self._password = secret("smtp") if self.settings.username else ""
        self._secret_forms = _secret_forms(self.settings.username, self._password)
        self._connection: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._last_used = 0.0
        self._unanswered_in_a_row = 0
        self._check_settings()

    def _check_settings(self) -> None:
        if self.settings.username and self.settings.security == "none" and self.settings.host not in LOCAL_HOSTS:
            raise ConfigError(
                "smtp.username is set but smtp.security = 'none' would send the password unencrypted",
                where=self.config.where("smtp.security"),
                fix="use 'starttls' or 'ssl'",
            )

    # -- connection -----------------------------------------------------------------------------

    def open(self) -> None:
        if self._connection is None:
            self._connection = self._connect()
            self._sent_on_connection = 0
            self._last_used = time.monotonic()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    @functools.cached_property
    def _tls_context(self) -> ssl.SSLContext:
        """Made once and shared by every connection this transport opens: loading the trust store is too
        slow to repeat every ``messages_per_connection`` messages."""
        ca_file = self.config.resolve(self.settings.ca_file) if self.settings.ca_file else None
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot read the CA file: {exc}",
                where=self.config.where("smtp.ca_file"),
                fix="point smtp.ca_file at a PEM file of CA certificates",
            ) from None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        try:
            connection: smtplib.SMTP
            if settings.security == "ssl":
                connection = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=settings.timeout, context=self._tls_context
                )
            else:
                connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            try:
                self._greet(connection)
            except BaseException:
                connection.close()
                raise
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportAuthError(
                f"the server refused the login of '{settings.username}': {self._reply(exc)}",
                where=self.where,
                fix=f"check smtp.username and {self.secret_env}",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"the server's certificate is not trusted: {exc.verify_message}",
                where=self.where,
                fix="check smtp.host, or set smtp.ca_file to the CA that signed it",
            ) from None
        except smtplib.SMTPResponseException as exc:
            reply = self._reply(exc)
            if 500 <= exc.smtp_code < 600:
                raise TransportError(f"the server refuses us: {reply}", where=self.where) from None
            raise TransientTransportError(f"the server is not ready: {reply}", where=self.where) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientTransportError(
                f"cannot connect: {self._scrub(str(exc) or type(exc).__name__)}", where=self.where
            ) from None
        except ValueError:  # an AUTH challenge that is not base64: its text is not worth the risk of echoing
            raise TransientTransportError(
                "cannot log in: the server's AUTH challenge is not base64", where=self.where
            ) from None
        return connection

    def _greet(self, connection: smtplib.SMTP) -> None:
        connection.ehlo()
        if self.settings.security == "starttls":
            if not connection.has_extn("starttls"):
                raise TransportError(
                    "the server does not offer STARTTLS",
                    where=self.where,
                    fix="set smtp.security to 'ssl' with the server's TLS port, usually 465 ('none' sends in clear: only for a relay on this machine)",
                )
            try:
                connection.starttls(context=self._tls_context)
            except smtplib.SMTPResponseException as exc:  # never go on without TLS; a later connection may get it
                raise TransientTransportError(
                    f"the server refused STARTTLS: {self._reply(exc)}; nothing is sent without TLS", where=self.where
                ) from None
            connection.ehlo()
        if self.settings.username:
            self._login(connection)

    def _login(self, connection: smtplib.SMTP) -> None:
        """smtplib's login for ASCII credentials; AUTH PLAIN in UTF-8 (RFC 4954) for any others."""
        username, password = self.settings.username, self._password
        offered = connection.esmtp_features.get("auth", "").upper().split()
        if not offered:
            raise TransportError(
                "smtp.username is set but the server offers no AUTH (login)",
                where=self.where,
                fix="check smtp.host and smtp.security, or remove smtp.username",
            )
        if not {"CRAM-MD5", "PLAIN", "LOGIN"} & set(offered):
            raise TransportError(
                f"the server offers only AUTH {' '.join(offered)}, none of which broadsheet speaks",
                where=self.where,
                fix="use a server (or port) that offers AUTH PLAIN or LOGIN over TLS",
            )
        if (username + password).isascii():
            connection.login(username, password)
        elif "PLAIN" in offered:
            smtp_session.auth_plain(connection, username, password)
        else:
            raise TransportAuthError(
                f"smtp.username or {self.secret_env} has characters outside ASCII, which only AUTH PLAIN "
                f"can carry (as UTF-8), and the server offers only {' '.join(offered)}",
                where=self.where,
                fix="use an ASCII password for this server",
            )

    def verify(self) -> Verdict:
        """Connect, EHLO, STARTTLS (or TLS from the start) and AUTH, then QUIT: no MAIL command."""
        with self:
            pass
        steps = ["TLS" if self.settings.security == "ssl" else "EHLO"]
        steps += ["STARTTLS"] if self.settings.security == "starttls" else []
        steps += [f"AUTH as {self.settings.username}"] if self.settings.username else []
        return "ok", f"{self.where}: {', '.join(steps)} accepted (no MAIL sent)"

    # -- sending --------------------------------------------------------------------------------

    def send_one(self, message: Message, *, fresh_retry: bool = True) -> Delivery:
        self._stop_if_the_server_stopped_answering()
        if self._connection is not None and self._sent_on_connection >= max(1, self.settings.messages_per_connection):
            self.close()
        elif self._connection is not None and time.monotonic() - self._last_used > IDLE_PROBE and not self._alive():
            self._drop()  # the server hung up while we waited (rate limit, retry delay): nothing was sent on it
        self.open()
        assert self._connection is not None
        self._sent_on_connection += 1
        try:
            return self._transaction(self._connection, message)
        except _FreshConnection as closing:
            self._drop()
            if fresh_retry:  # the server closes this connection (421 to MAIL): nothing was sent yet
                return self.send_one(message, fresh_retry=False)
            return self._delivery(message, "deferred", str(closing))
        finally:
            self._last_used = time.monotonic()

    def _transaction(self, connection: smtplib.SMTP, message: Message) -> Delivery:
        """MAIL, RCPT, DATA (pipelined when offered), the content and its reply, with every reply checked;
        or MAIL, RCPT and BDAT LAST with the content in one write, where CHUNKING is offered as well."""
        smtputf8 = not (message.sender.isascii() and message.recipient.isascii())
        if smtputf8 and not connection.has_extn("smtputf8"):
            return self._delivery(message, "failed", "the server cannot take this address: it does not offer SMTPUTF8")
        pipelining = self.settings.pipelining and connection.has_extn("pipelining")
        chunking = pipelining and self.settings.chunking and connection.has_extn("chunking")
        sender, recipient, data_timeout = message.sender, message.recipient, self.settings.data_timeout
        try:
            if chunking:
                replies, reply = smtp_session.chunked(
                    connection, sender, recipient, message.raw, smtputf8=smtputf8, data_timeout=data_timeout
                )
            else:
                replies = smtp_session.envelope(connection, sender, recipient, smtputf8=smtputf8, pipelining=pipelining)
            refusal = smtp_session.refusal(replies)
            if refusal is not None:
                return self._refused_envelope(connection, message, replies, refusal)
            if not chunking:
                reply = smtp_session.content(connection, message.raw, data_timeout=data_timeout)
        except smtp_session.ReplyLost as lost:
            self._drop()
            self._unanswered_in_a_row += 1
            return self._delivery(
                message,
                "unknown",
                f"{lost}: the server may have accepted it, so it is not sent "
                "again by itself (check with the server; --retry-unknown resends)",
            )
        except ValueError as exc:  # a line break in an address: the composer never lets one through
            return self._delivery(message, "failed", str(exc))
        except (smtplib.SMTPException, OSError) as exc:  # before the final "." or the whole chunk: not there
            self._drop()
            reason = "connection lost" if isinstance(exc, smtplib.SMTPServerDisconnected) else _describe(exc)
            return self._delivery(message, "deferred", reason)
        assert reply is not None  # chunked: None only after a refusal
        return self._after_content(message, reply, chunked=chunking)

    def _stop_if_the_server_stopped_answering(self) -> None:
        """Raised before a message goes out (it stays queued): each unanswered "." costs data_timeout and
        leaves a recipient unknown, so a server that has stopped answering gets no more."""
        if self._unanswered_in_a_row >= UNKNOWN_IN_A_ROW:
            raise TransportError(
                f"the server did not answer the end of the last {self._unanswered_in_a_row} messages within "
                f"{self.settings.data_timeout:g} s; they are 'unknown' and nothing more is sent",
                where=self.where,
                fix="check with the server whether they arrived, then resume (--retry-unknown resends them)",
            )

    def _after_content(self, message: Message, reply: smtp_session.Reply, *, chunked: bool) -> Delivery:
        """The reply to the final "." (or to BDAT LAST): 2xx sent, 4xx deferred, 5xx failed, anything else
        unknown. A refused BDAT leaves the transaction to be cleared with RSET (RFC 3030 §2)."""
        self._unanswered_in_a_row = 0
        if 200 <= reply.code < 300:
            return Delivery(
                message.recipient, "sent", detail=str(reply.code), message_id=message.headers.get("Message-ID", "")
            )
        if not 400 <= reply.code < 600:
            self._drop()
            return self._delivery(
                message, "unknown", f"an unexpected reply to the end of the message: {self._reply(reply)}"
            )
        if reply.code == 421:
            self._drop()
            return self._refused(message, reply)
        if chunked and self._connection is not None and not smtp_session.reset(self._connection):
            self._drop()
        return self._refused(message, reply, recipient=True)

    def _refused_envelope(
        self, connection: smtplib.SMTP, message: Message, replies: list[smtp_session.Reply], refusal: smtp_session.Reply
    ) -> Delivery:
        """The first refusal among MAIL, RCPT and DATA decides; the transaction is reset (RSET) after it."""
        mail = replies[0]
        if len(replies) == 3 and replies[2].code == 354:  # DATA accepted after a refusal (RFC 2920 §3.1)
            smtp_session.end_empty_data(connection)
        if mail.code == 421:
            raise _FreshConnection(self._reply(mail))
        if any(reply.code == 421 or not 200 <= reply.code < 600 for reply in replies) or not smtp_session.reset(
            connection
        ):
            self._drop()  # the server is closing it, or it no longer speaks SMTP we understand
        if refusal is mail and 500 <= mail.code < 600 and mail.code != 552:
            raise TransportError(
                f"the server refuses the sender {message.sender}: {self._reply(mail)}",
                where=self.where,
                fix="check 'from' in broadsheet.toml and that the server lets this account send as it",
            )
        recipient = len(replies) > 1 and refusal is replies[1] and refusal.code != 421  # RCPT refused
        return self._refused(message, refusal, recipient=recipient)

    def _alive(self) -> bool:
        assert self._connection is not None
        try:
            return self._connection.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def _refused(self, message: Message, reply: smtp_session.Reply, *, recipient: bool = False) -> Delivery:
        """5xx failed (552 too big: only this message), 4xx deferred, with the server's code and text;
        ``recipient``: the refusal of this recipient (RCPT, or the message's end), a bounce by its code."""
        status: Status = "failed" if 500 <= reply.code < 600 else "deferred"
        detail = self._reply(reply)
        bounce = rejection_kind(detail) if recipient and 400 <= reply.code < 600 else ""
        return Delivery(message.recipient, status, detail=detail, bounce=bounce)

    def _delivery(self, message: Message, status: Status, detail: str) -> Delivery:
        return Delivery(message.recipient, status, detail=f"{self._scrub(detail)} ({self.where})")

    def _reply(self, reply: smtp_session.Reply | smtplib.SMTPResponseException) -> str:
        """The server's code and text, scrubbed; from a reply or from smtplib's exception for one."""
        if isinstance(reply, smtplib.SMTPResponseException):
            reply = smtp_session.Reply.of(reply.smtp_code, reply.smtp_error)
        return self._scrub(f"{reply.code} {reply.text}")

    def _scrub(self, text: str) -> str:
        """Never let the password through, in clear or as AUTH sent it (base64), whatever a server echoes."""
        for form in self._secret_forms:
            text = text.replace(form, "***")
        return text


def _secret_forms(username: str, password: str) -> list[str]:
    """The password as a server might echo it: in clear, and base64 as AUTH PLAIN and LOGIN sent it
    (without padding, so padded and unpadded echoes both go); longest first."""
    if not password:
        return []
    encoded = [
        smtp_session.plain_blob(username, password),
        base64.b64encode(password.encode("utf-8")).decode("ascii"),
        base64.b64encode(username.encode("utf-8")).decode("ascii"),
    ]
    forms = {password, password.encode("utf-8").decode("ascii", "backslashreplace"), *(f.rstrip("=") for f in encoded)}
    return sorted((form for form in forms if form), key=len, reverse=True)


class _FreshConnection(Exception):
    """The server answered MAIL with 421 and closes the connection: nothing was sent, try a new one."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(exc) or type(exc).__name__
