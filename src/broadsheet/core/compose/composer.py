"""Composer: one subscriber + the rendered issue -> a Message with RFC 5322 bytes, fast.

Everything that does not vary per recipient (templates, From, Subject, List-Id, MIME boundary and
part headers) is prepared once; per recipient only the templates are rendered, the parts
quoted-printable encoded, and the bytes joined.
"""

from __future__ import annotations

import email.utils
import itertools
import re
import secrets
import time
from dataclasses import dataclass

from ..audience import Subscriber
from ..config import Config
from ..errors import ConfigError, ContentError
from ..render.model import RenderedIssue
from . import headers as hdr
from .clicks import ReaderLinks
from .fields import personal_fields
from .headers import RecipientRejected
from .list_headers import list_headers
from .message import Message
from .mime import AlternativeBody
from .signing import DkimSigner
from .templates import PersonalTemplates
from .unsubscribe import UnsubscribeLinks
from .verp import ReturnPaths

BARE_ADDRESS = re.compile(r"[^\s<>(),;:\"\[\]\\@]+@[^\s<>(),;:\"\[\]\\@]+")


@dataclass(frozen=True, slots=True)
class Sender:
    name: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()

    @classmethod
    def from_config(cls, config: Config) -> Sender:
        """From ``from`` (``addr`` or ``Name <addr>``); without a name, the newsletter's name."""
        name, address = email.utils.parseaddr(config.from_address)
        if "\n" in config.from_address or "\r" in config.from_address or not _is_bare_address(address):
            raise ConfigError(
                f"'from' is not an address: {config.from_address!r}",
                where=config.where("from"),
                fix='write from = "Name <newsletter@example.org>" or just the address',
            )
        return cls(name or _config_line(config, "name"), address)


@dataclass(frozen=True)
class ComposeSpec:
    """What a Composer is made from: enough to make the same one again in another process."""

    issue: RenderedIssue
    config: Config
    test: bool = False
    token_secret: str | None = None
    campaign: str = ""
    reader_links: ReaderLinks | None = None
    boundary: str = ""  # the MIME boundary: every Composer made from one spec writes the same bytes

    def composer(self) -> Composer:
        return Composer(
            self.issue, self.config, test=self.test, token_secret=self.token_secret, campaign=self.campaign,
            reader_links=self.reader_links, boundary=self.boundary,
        )  # fmt: skip


class Composer:
    """Personalises one issue for each subscriber. Safe to share between threads."""

    def __init__(
        self, issue: RenderedIssue, config: Config, *, test: bool = False, token_secret: str | None = None,
        campaign: str = "", reader_links: ReaderLinks | None = None, boundary: str = "",
    ):  # fmt: skip
        """``token_secret``: signs the unsubscribe links and return paths instead of BROADSHEET_SECRET
        (copies that reach no reader); ``campaign``: named in the unsubscribe tokens, so that an unsubscribe
        counts against the issue it came from. ``reader_links``: an issue's links that
        compose.clicks.count_links made per reader (``[tracking] per_subscriber``); None otherwise.
        ``boundary``: the MIME boundary of another Composer of this issue (``spec``); empty: a new one."""
        self.reader_links = reader_links
        self.templates = PersonalTemplates(issue)
        self.unsubscribe = UnsubscribeLinks(config, token_secret=token_secret, campaign=campaign)
        self.body = AlternativeBody(self.templates.literals(), boundary)
        self.spec = ComposeSpec(issue, config, test, token_secret, campaign, reader_links, self.body.boundary)
        self.sender = Sender.from_config(config)
        self.return_paths = ReturnPaths(config, self.sender.address, token_secret=token_secret)
        self.subject = ("[TEST] " if test else "") + _single_line(issue.subject, issue.slug)
        self.from_header = hdr.address(self.sender.name, self.sender.address, encode=False)
        self.fixed_headers = {**_fixed_headers(config), **list_headers(issue, config, self.sender.domain, test=test)}
        head = self._fixed_head()
        self._head = b"".join(hdr.fold(name, value) for name, value in head.items())
        self._message_ids = MessageIds(self.sender.domain)
        self._dates = DateHeader()
        varying = ["To", "Date", "Message-ID", *self.unsubscribe.header_names()]
        self.signer = DkimSigner.from_config(config, [*head, *self.fixed_headers, *varying])

    def compose(self, subscriber: Subscriber, *, row: int | None = None) -> Message:
        """The personalised message, or RecipientRejected when this subscriber's data cannot go in it.
        ``row``: the subscriber's journal row, named by the VERP return path (see compose.verp)."""
        try:
            return self._compose(subscriber, row)
        except RecipientRejected as exc:
            exc.where = subscriber.email
            raise

    def _compose(self, subscriber: Subscriber, row: int | None = None) -> Message:
        recipient = _recipient_address(subscriber.email)
        fields = personal_fields(subscriber)
        name = fields["name"]
        unsubscribe_url = self.unsubscribe.url(recipient)
        clicks = None if self.reader_links is None else self.reader_links.for_reader(recipient)
        html_pieces, text_pieces = self.templates.render(fields, unsubscribe_url, clicks)
        headers = {
            "Date": self._dates.now(),
            "Message-ID": self._message_ids.next(),
            **self.fixed_headers,
            **self.unsubscribe.headers(unsubscribe_url),
        }
        head = [self._head, hdr.fold("To", hdr.address(name, recipient))]
        head.extend(hdr.fold(key, value) for key, value in headers.items())
        head.append(b"\r\n")
        raw = b"".join(head + self.body.chunks(text_pieces, html_pieces))  # the message copied once
        if self.signer:
            raw = self.signer.sign(raw)
        return Message(
            recipient=recipient,
            sender=self.return_paths.for_recipient(subscriber.email, row),
            from_header=self.from_header,
            to_header=hdr.address(name, recipient, encode=False),
            subject=self.subject,
            headers=headers,
            html="".join(html_pieces),
            text="".join(text_pieces),
            raw=raw,
            merge=fields,
        )

    def _fixed_head(self) -> dict[str, str]:
        """The headers that open every message, encoded."""
        return {
            "From": hdr.address(self.sender.name, self.sender.address),
            "Subject": hdr.unstructured(self.subject),
            "MIME-Version": "1.0",
            "Content-Type": self.body.content_type,
        }


class MessageIds:
    """``<time.random.counter@domain>``: unique across composers, cheap per message."""

    def __init__(self, domain: str):
        self.prefix = f"{int(time.time())}.{secrets.token_hex(8)}"
        self.domain = domain
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"<{self.prefix}.{next(self.counter)}@{self.domain}>"


class DateHeader:
    """The RFC 5322 date of now, formatted at most once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.text, self.second = email.utils.formatdate(second).replace("-0000", "+0000"), second
        return self.text


def _fixed_headers(config: Config) -> dict[str, str]:
    """Reply-To and List-Id, the same for every recipient."""
    fixed = {}
    if config.reply_to:
        name, address = email.utils.parseaddr(config.reply_to)
        if not _is_bare_address(address) or "\n" in config.reply_to or "\r" in config.reply_to:
            raise ConfigError(
                f"'reply_to' is not an address: {config.reply_to!r}",
                where=config.where("reply_to"),
                fix='write reply_to = "Name <info@example.org>" or just the address',
            )
        fixed["Reply-To"] = hdr.address(name, address)
    if config.list_id:
        if not _is_bare_address(config.list_id.replace(".", "@", 1)):
            raise ConfigError(
                f"'list_id' must be a dotted name like weekly.news.example.org, not {config.list_id!r}",
                where=config.where("list_id"),
            )
        fixed["List-Id"] = f"{hdr.phrase(_config_line(config, 'name'))} <{config.list_id}>"
    return fixed


def _recipient_address(address: str) -> str:
    if not _is_bare_address(address):
        raise RecipientRejected(f"not a plain ASCII address: {address!r}")
    return address


def _is_bare_address(address: str) -> bool:
    return address.isascii() and BARE_ADDRESS.fullmatch(address) is not None


def _single_line(subject: str, slug: str) -> str:
    if "\r" in subject or "\n" in subject or not subject.strip():
        raise ContentError(
            "the subject must be one non-empty line",
            where=f"issue {slug}: subject",
            fix="write the subject on one line",
        )
    return subject


def _config_line(config: Config, key: str) -> str:
    value: str = getattr(config, key)
    if "\r" in value or "\n" in value:
        raise ConfigError(f"'{key}' must be one line", where=config.where(key), fix=f"write {key} on one line")
    return value
