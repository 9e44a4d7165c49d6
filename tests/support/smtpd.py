"""Real SMTP servers for the tests: aiosmtpd on 127.0.0.1, with TLS from trustme and injectable faults.

``Sink`` records every accepted message and can misbehave on purpose:
  replies       recipient -> reply to RCPT every time ("550 5.1.1 no such user", "451 4.3.0 try later")
  replies_once  recipient -> reply to RCPT the first time only (then accepted)
  drop_once     recipients whose first DATA is answered by closing the connection (nothing accepted)
  close_after   a 421 to MAIL FROM after this many messages on one connection (the server hangs up)
  mail_reply    reply to every MAIL FROM (e.g. "553 5.7.1 sender not allowed")
  delay         seconds before every reply a handler gives (EHLO, MAIL, RCPT, end of DATA, RSET, QUIT)
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


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
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self):
        self.lock = threading.Lock()
        self._answered_once: set[str] = set()

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

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self._wait()
        with self.lock:
            self.connections += 1
        session.messages = 0
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        await self._wait()
        if self.mail_reply:
            return self.mail_reply
        if self.close_after and getattr(session, "messages", 0) >= self.close_after:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return "421 4.7.0 too many messages on this connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        await self._wait()
        with self.lock:
            if address in self.replies_once and address not in self._answered_once:
                self._answered_once.add(address)
                return self.replies_once[address]
        if address in self.replies:
            return self.replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await self._wait()
        recipients = list(envelope.rcpt_tos)
        with self.lock:
            dropped = [r for r in recipients if r in self.drop_once]
            self.drop_once.difference_update(dropped)
        if dropped:
            server.transport.abort()
            return "451 4.4.2 connection dropped"
        with self.lock:
            self.received.append(Received(envelope.mail_from, recipients, envelope.original_content or envelope.content))
        session.messages = getattr(session, "messages", 0) + 1
        return "250 2.0.0 OK queued"

    async def handle_RSET(self, server, session, envelope):
        await self._wait()
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):
        await self._wait()
        return "221 Bye"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_server(handler: Sink, **smtp_options):
    """A running aiosmtpd on 127.0.0.1; yields (host, port). Options go to aiosmtpd's SMTP/Controller."""
    smtp_options.setdefault("enable_SMTPUTF8", True)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    try:
        yield controller.hostname, controller.port
    finally:
        controller.stop()


def password_checker(username: str, password: str):
    """An aiosmtpd authenticator accepting exactly this login."""

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == username \
            and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

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
