"""Real SMTP servers for the tests: aiosmtpd on 127.0.0.1, with TLS from trustme and injectable faults.

``Sink`` records every accepted message and can misbehave on purpose:
  replies       recipient -> reply to RCPT every time ("550 5.1.1 no such user", "451 4.3.0 try later")
  replies_once  recipient -> reply to RCPT the first time only (then accepted)
  drop_once     recipients whose first RCPT is answered by closing the connection (before any data)
  close_after   a 421 to MAIL FROM after this many messages on one connection (the server hangs up)
  mail_reply    reply to every MAIL FROM (e.g. "553 5.7.1 sender not allowed")
  mail_replies_once  sender -> reply to its first MAIL FROM only
  data_replies_once  recipient -> reply to the final "." the first time, the message not stored ("421 …")
  stored_late   recipient -> seconds the reply to the final "." waits, the message already stored
  stored_silent recipients whose message is stored and whose final "." is never answered
  stored_closed recipients whose message is stored and whose connection is then closed without a reply
  delay         seconds before every reply a handler gives (EHLO, MAIL, RCPT, end of DATA, RSET, QUIT)
  claim_starttls  advertise STARTTLS without a TLS context: aiosmtpd then answers it "454 TLS not available"
  pipelining    advertise PIPELINING (RFC 2920) after EHLO; aiosmtpd reads commands in order from one buffer
  chunking      advertise CHUNKING (RFC 3030) and take BDAT (support.bdat); the faults above apply to it alike

``chunks`` is the server-side transcript: each piece of bytes as the server's socket read it.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from support.bdat import ChunkingSMTP
from support.ports import on_free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self):
        return message_from_bytes(self.raw, policy=policy.default)

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()


@dataclass
class Sink:
    replies: dict[str, str] = field(default_factory=dict)
    replies_once: dict[str, str] = field(default_factory=dict)
    drop_once: set[str] = field(default_factory=set)
    close_after: int = 0
    mail_reply: str = ""
    mail_replies_once: dict[str, str] = field(default_factory=dict)
    data_replies_once: dict[str, str] = field(default_factory=dict)
    stored_late: dict[str, float] = field(default_factory=dict)
    stored_silent: set[str] = field(default_factory=set)
    stored_closed: set[str] = field(default_factory=set)
    delay: float = 0.0
    hold_after: int = 0  # messages stored before the next waits for ``released`` (a send caught mid-way)
    pipelining: bool = True
    chunking: bool = False
    claim_starttls: bool = False
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    resets: int = 0
    chunks: list[bytes] = field(default_factory=list)

    def __post_init__(self):
        self.lock = threading.Lock()
        self.released = threading.Event()
        self._answered_once: set[tuple[int, str]] = set()

    # -- what the tests read ------------------------------------------------------------------

    def recipients(self) -> Counter:
        with self.lock:
            return Counter(r for message in self.received for r in message.recipients)

    def by_recipient(self) -> dict[str, Received]:
        with self.lock:
            return {r: message for message in self.received for r in message.recipients}

    # -- aiosmtpd hooks -----------------------------------------------------------------------

    async def _wait(self) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)

    def _once(self, replies: dict, key: str):
        with self.lock:
            if key in replies and (id(replies), key) not in self._answered_once:
                self._answered_once.add((id(replies), key))
                return replies[key]
        return None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self._wait()
        with self.lock:
            self.connections += 1
        session.messages = 0
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if self.chunking:
            responses.insert(-1, "250-CHUNKING")
        if self.claim_starttls:
            responses.insert(-1, "250-STARTTLS")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        await self._wait()
        if self.mail_reply:
            return self.mail_reply
        reply = self._once(self.mail_replies_once, address)
        if reply:
            return reply
        if self.close_after and getattr(session, "messages", 0) >= self.close_after:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return "421 4.7.0 too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        await self._wait()
        with self.lock:
            dropped = address in self.drop_once
            self.drop_once.discard(address)
        if dropped:
            server.transport.abort()
            return "451 4.4.2 connection dropped"
        reply = self._once(self.replies_once, address)
        if reply:
            return reply
        if address in self.replies:
            return self.replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await self._wait()
        while self.hold_after and len(self.received) >= self.hold_after and not self.released.is_set():
            await asyncio.sleep(0.01)
        recipients = list(envelope.rcpt_tos)
        for recipient in recipients:
            reply = self._once(self.data_replies_once, recipient)
            if reply:
                if reply.startswith("421"):
                    asyncio.get_running_loop().call_later(0.05, server.transport.close)
                return reply
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, recipients, envelope.original_content or envelope.content)
            )
        session.messages = getattr(session, "messages", 0) + 1
        if any(r in self.stored_closed for r in recipients):
            server.transport.close()
            return None
        if any(r in self.stored_silent for r in recipients):
            await asyncio.sleep(3600)  # cancelled when the server stops
        await asyncio.sleep(max([self.stored_late.get(r, 0.0) for r in recipients], default=0.0))
        return "250 2.0.0 OK queued"

    async def handle_RSET(self, server, session, envelope):
        await self._wait()
        with self.lock:
            self.resets += 1
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        await self._wait()
        return "221 Bye"


class RecordingSMTP(ChunkingSMTP):
    """aiosmtpd's SMTP protocol (with BDAT), noting each chunk its socket reads (``Sink.chunks``)."""

    def data_received(self, data: bytes) -> None:
        with self.event_handler.lock:
            self.event_handler.chunks.append(bytes(data))
        super().data_received(data)


class RecordingController(Controller):
    def factory(self):
        return RecordingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def smtp_server(handler: Sink, **smtp_options):
    """A running aiosmtpd on 127.0.0.1; yields (host, port). Options go to aiosmtpd's SMTP/Controller."""
    smtp_options.setdefault("enable_SMTPUTF8", True)

    def start(port: int) -> RecordingController:
        controller = RecordingController(handler, hostname="127.0.0.1", port=port, **smtp_options)
        controller.start()
        return controller

    controller = on_free_port(start)
    try:
        yield controller.hostname, controller.port
    finally:
        controller.stop()


def password_checker(username: str, password: str):
    """An aiosmtpd authenticator accepting exactly this login."""

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == username
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return authenticate


def echoing_checker(username: str, password: str):
    """Like ``password_checker``, but a refused login is answered with what the client sent, in clear
    and in base64 as AUTH PLAIN and AUTH LOGIN carry it (a careless server)."""
    check = password_checker(username, password)

    def authenticate(server, session, envelope, mechanism, auth_data):
        result = check(server, session, envelope, mechanism, auth_data)
        if result.success:
            return result
        login, sent = auth_data.login, auth_data.password
        echo = {
            "PLAIN": [base64.b64encode(b"\0" + login + b"\0" + sent)],
            "LOGIN": [base64.b64encode(login), base64.b64encode(sent)],
        }[mechanism]
        words = " ".join(part.decode() for part in echo)
        return AuthResult(
            success=False, handled=False, message=f"535 5.7.8 bad credentials {words} (password {sent.decode()!r})"
        )

    return authenticate


@dataclass
class Certificates:
    """A throwaway CA (written to ``ca_file``) and a server TLS context for 127.0.0.1/localhost."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_certificates(folder: Path) -> Certificates:
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    ca_file = folder / "test-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return Certificates(ca_file, context)


# -- a project that sends to these servers -----------------------------------------------------------


def configure(project: Path, *, send: dict | None = None, smtp: dict | None = None) -> Path:
    """Rewrite the project's broadsheet.toml with these [send] and [smtp] tables; returns its path."""
    path = project / "broadsheet.toml"
    kept, skipping = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        header = line.strip()
        if header.startswith("["):
            skipping = header in ("[send]", "[smtp]")
        if not skipping:
            kept.append(line)
    tables = [("send", send or {}), ("smtp", smtp or {})]
    for name, values in tables:
        kept.append(f"\n[{name}]")
        kept.extend(f"{key} = {_toml(value)}" for key, value in values.items())
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_subscribers(path: Path, count: int, *, domain: str = "example.com") -> list[tuple[str, str]]:
    """A CSV of ``count`` subscribers; returns (email, first_name) in list order."""
    people = [(f"reader{i:04d}@{domain}", f"Reader{i:04d}") for i in range(count)]
    lines = ["email,name,first_name,city"] + [f"{email},{first} Tester,{first},Leuven" for email, first in people]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return people


# -- one raw message straight to the transport --------------------------------------------------------


def raw_message(raw: bytes, recipient: str = "reader@example.com", sender: str = "newsletter@example.org"):
    """A composed message whose bytes are exactly ``raw`` (for what the wire and the server make of them)."""
    from broadsheet.core.compose.message import Message

    return Message(recipient, sender, sender, recipient, "test", {}, "", "", raw)


@contextmanager
def smtp_transport(host: str, port: int, **settings):
    """An open SmtpTransport to host:port (no TLS unless ``security`` says so), with the sample's config."""
    import dataclasses

    from broadsheet.core.config import Smtp, load_config
    from broadsheet.delivery.transports.smtp import SmtpTransport

    root = Path(__file__).resolve().parents[2]
    smtp = Smtp(host=host, port=port, **{"security": "none", "timeout": 10, **settings})
    with SmtpTransport(dataclasses.replace(load_config(root / "broadsheet.toml"), smtp=smtp)) as transport:
        yield transport
