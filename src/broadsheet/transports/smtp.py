"""The SMTP transport: one connection per worker, reused for many messages.

A connection is renewed after ``smtp.messages_per_connection`` messages or when the server closes it
(421, a dropped connection, or a hang-up while it sat idle, found with a NOOP before it is used again). TLS always verifies the certificate and the host name, against the system's
trust store or ``smtp.ca_file``. Per message: 2xx sent, 4xx (and 421, timeouts, drops) deferred, 5xx
failed with the server's code and text. Login refused → ``TransportAuthError``; a server that refuses
the sender or the connection itself with 5xx → ``TransportError``: both stop the campaign.

An exception raised in the middle of a batch carries ``deliveries``: what happened to the messages of
the batch before it, so the campaign can record them.
"""

from __future__ import annotations

import functools
import smtplib
import socket
import ssl
import time

from ..compose.message import Message
from ..config import Config, secret
from ..errors import TransientTransportError, TransportAuthError, TransportError
from .base import Delivery, Transport

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
IDLE_PROBE = 0.25  # seconds unused after which a NOOP checks that the server has not hung up


class SmtpTransport(Transport):
    """Sends each message with ``sendmail`` over a kept-alive SMTP connection."""

    name = "smtp"
    # One message per batch: SMTP sends one at a time on a connection, so what the journal marks 'sending'
    # is exactly what is in flight (a kill -9 leaves one unknown per connection, not a batch of them), and
    # Ctrl-C waits for one message per connection. Costs ~10% against a zero-latency local server, none at 20 ms.
    max_batch = 1

    def __init__(self, config: Config, **_: object):
        super().__init__(config)
        self.settings = config.smtp
        self.where = f"{self.settings.host}:{self.settings.port}"
        self._password = secret("smtp") if self.settings.username else ""
        self._connection: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._last_used = 0.0
        self._check_settings()

    def _check_settings(self) -> None:
        if self.settings.username and self.settings.security == "none" and self.settings.host not in LOCAL_HOSTS:
            raise TransportError(
                "smtp.username is set but smtp.security = 'none' would send the password unencrypted",
                where="smtp.security",
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
        """Made once and shared by every connection this transport opens: loading the trust store takes
        ~30 ms, too much to repeat every ``messages_per_connection`` messages."""
        ca_file = self.config.resolve(self.settings.ca_file) if self.settings.ca_file else None
        try:
            return ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot read the CA file: {exc}", where="smtp.ca_file") from None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        try:
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
                f"the server refused the login of '{settings.username}': {self._reply(exc.smtp_code, exc.smtp_error)}",
                where=self.where,
                fix="check smtp.username and BROADSHEET_SMTP_PASSWORD",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"the server's certificate is not trusted: {exc.verify_message}",
                where=self.where,
                fix="check smtp.host, or set smtp.ca_file to the CA that signed it",
            ) from None
        except smtplib.SMTPResponseException as exc:
            reply = self._reply(exc.smtp_code, exc.smtp_error)
            if 500 <= exc.smtp_code < 600:
                raise TransportError(f"the server refuses us: {reply}", where=self.where) from None
            raise TransientTransportError(f"the server is not ready: {reply}", where=self.where) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientTransportError(f"cannot connect: {self._scrub(str(exc) or type(exc).__name__)}",
                                          where=self.where) from None
        return connection

    def _greet(self, connection: smtplib.SMTP) -> None:
        connection.ehlo()
        if self.settings.security == "starttls":
            if not connection.has_extn("starttls"):
                raise TransportError(
                    "the server does not offer STARTTLS", where=self.where, fix="set smtp.security to 'ssl' or 'none'"
                )
            connection.starttls(context=self._tls_context)
            connection.ehlo()
        if self.settings.username:
            connection.login(self.settings.username, self._password)

    # -- sending --------------------------------------------------------------------------------


    def send_one(self, message: Message, *, fresh_retry: bool = True) -> Delivery:
        if self._connection is not None and self._sent_on_connection >= max(1, self.settings.messages_per_connection):
            self.close()
        elif self._connection is not None and time.monotonic() - self._last_used > IDLE_PROBE and not self._alive():
            self._drop()  # the server hung up while we waited (rate limit, retry delay): nothing was sent on it
        self.open()
        assert self._connection is not None
        self._sent_on_connection += 1
        try:
            self._connection.sendmail(message.sender, [message.recipient], message.raw, mail_options=_options(message))
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code == 421 and fresh_retry:  # the server closes this connection: nothing was sent yet
                self._drop()
                return self.send_one(message, fresh_retry=False)
            return self._sender_refused(message, exc)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(message.recipient, (0, b"refused"))
            return self._refused(message, code, text)
        except smtplib.SMTPNotSupportedError as exc:
            return Delivery(message.recipient, "failed", detail=f"the server cannot take this address: {exc}")
        except smtplib.SMTPResponseException as exc:
            return self._refused(message, exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            reason = "connection lost" if isinstance(exc, smtplib.SMTPServerDisconnected) else _describe(exc)
            return Delivery(message.recipient, "deferred", detail=f"{reason} ({self.where})")
        finally:
            self._last_used = time.monotonic()
        return Delivery(message.recipient, "sent", detail="250", message_id=message.headers.get("Message-ID", ""))

    def _alive(self) -> bool:
        assert self._connection is not None
        try:
            return self._connection.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def _sender_refused(self, message: Message, exc: smtplib.SMTPSenderRefused) -> Delivery:
        """5xx to MAIL FROM refuses every message (552, too big, only this one); 4xx defers it."""
        if 500 <= exc.smtp_code < 600 and exc.smtp_code != 552:
            raise TransportError(
                f"the server refuses the sender {message.sender}: {self._reply(exc.smtp_code, exc.smtp_error)}",
                where=self.where,
                fix="check 'from' in broadsheet.toml and that the server lets this account send as it",
            )
        return self._refused(message, exc.smtp_code, exc.smtp_error)

    def _refused(self, message: Message, code: int, text: bytes | str) -> Delivery:
        if self._connection is not None and self._connection.sock is None:
            self._connection = None  # smtplib closed it after a 421
        reply = self._reply(code, text)
        status = "failed" if 500 <= code < 600 else "deferred"
        return Delivery(message.recipient, status, detail=reply)

    def _reply(self, code: int, text: bytes | str) -> str:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        return self._scrub(f"{code} {' '.join(text.split())}")

    def _scrub(self, text: str) -> str:
        """Never let the password through, whatever a server or library echoes."""
        return text.replace(self._password, "***") if self._password else text


def _options(message: Message) -> list[str]:
    if message.sender.isascii() and message.recipient.isascii():
        return []
    return ["SMTPUTF8"]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(exc) or type(exc).__name__
