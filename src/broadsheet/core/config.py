"""Typed project configuration read from ``broadsheet.toml``.

Each table is a dataclass; each field's type is checked on load. An unknown key or a wrong type is a
:class:`ConfigError` naming the file, the line, the key and what is allowed. Secrets are never read
from the file: they come from environment variables (see :func:`secret`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import BroadsheetError, ConfigError
from .providers import secret_variables

CONFIG_NAME = "broadsheet.toml"


@dataclass(frozen=True)
class Brand:
    logo: str = ""  # path relative to the project, or an https URL
    logo_alt: str = ""
    logo_width: int = 160
    primary_color: str = "#1f4e79"
    accent_color: str = "#c8102e"
    background_color: str = "#f2f4f7"
    text_color: str = "#1a1a1a"


@dataclass(frozen=True)
class Footer:
    postal_address: str = ""
    why: str = "You receive this newsletter because you subscribed to it."
    links: dict[str, str] = field(default_factory=dict)  # label -> URL


@dataclass(frozen=True)
class Send:
    transport: str = "outbox"  # outbox | smtp | postmark | sendgrid | mailgun | ses | resend
    list: str = "subscribers.csv"
    suppressions: str = "suppressions.csv"
    connections: int = 4
    batch_size: int = 0  # messages per batch; 0 = as many as the transport takes (smtp 1, postmark 500, …)
    compose_workers: int = 0  # processes composing the messages; 0 = one per CPU where they pay, 1 = no workers
    rate_per_second: float = 0.0  # 0 = unlimited
    rate_per_hour: float = 0.0
    retries: int = 5
    retry_delay: float = 5.0  # seconds before the first retry of a deferred recipient; doubles each time
    outbox_dir: str = "outbox"
    daily_limit: int = 0  # messages per calendar day in UTC over real transports; 0 = no limit
    warmup: bool = False  # cap each day by the warm-up table (campaign/caps.py) for a new sending domain
    warmup_start: str = ""  # YYYY-MM-DD, day 1 of the warm-up; empty: the day the journal first sent
    feedback_id: bool = True  # a Feedback-ID header for Gmail's feedback loop (Postmaster Tools)
    feedback_sender_id: str = ""  # its SenderId, 5-15 letters, digits, . _ -; empty: from the From domain
    worker_lease: float = 30.0  # seconds a send --worker holds rows it claimed without renewing its lease


@dataclass(frozen=True)
class Smtp:
    host: str = "localhost"
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""  # password from BROADSHEET_SMTP_PASSWORD
    timeout: float = 30.0
    messages_per_connection: int = 100
    ca_file: str = ""
    data_timeout: float = 600.0  # seconds to wait for the reply to the final "." (RFC 5321 §4.5.3.2: 10 min)
    pipelining: bool = True  # MAIL, RCPT and DATA in one write when the server offers PIPELINING (RFC 2920)
    chunking: bool = True  # MAIL, RCPT and BDAT LAST with the content in one write, with CHUNKING (RFC 3030) too
    return_path: str = ""  # VERP envelope sender, e.g. "bounces+{token}@example.org" (token: opaque, per recipient)


@dataclass(frozen=True)
class Dkim:
    domain: str = ""
    selector: str = ""
    private_key_file: str = ""  # or the key itself in BROADSHEET_DKIM_KEY


@dataclass(frozen=True)
class Postmark:
    base_url: str = "https://api.postmarkapp.com"
    message_stream: str = "broadcast"  # token from BROADSHEET_POSTMARK_TOKEN


@dataclass(frozen=True)
class Sendgrid:
    base_url: str = "https://api.sendgrid.com"  # key from BROADSHEET_SENDGRID_KEY


@dataclass(frozen=True)
class Mailgun:
    base_url: str = "https://api.mailgun.net"  # EU: https://api.eu.mailgun.net
    domain: str = ""  # key from BROADSHEET_MAILGUN_KEY


@dataclass(frozen=True)
class Ses:
    region: str = "us-east-1"
    base_url: str = ""  # default https://email.{region}.amazonaws.com
    configuration_set: str = ""  # keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN


@dataclass(frozen=True)
class Resend:
    base_url: str = "https://api.resend.com"  # key from BROADSHEET_RESEND_KEY


@dataclass(frozen=True)
class Preview:
    port: int = 8025
    sample_subscriber: dict[str, str] = field(
        default_factory=lambda: {"email": "reader@example.com", "name": "Sam Reader", "first_name": "Sam"}
    )


@dataclass(frozen=True)
class Bounces:
    soft_limit: int = 3  # soft bounces within window_days that count as a hard one (0: never)
    window_days: int = 30
    sns_topic_arn: str = ""  # SES through SNS: the topic(s) accepted, comma-separated ARNs


@dataclass(frozen=True)
class Inbox:
    host: str = ""  # IMAP server of the mailbox bounces, complaints and unsubscribe mails arrive in
    port: int = 993
    security: Literal["ssl", "starttls"] = "ssl"  # always TLS, certificate verified
    username: str = ""  # password from BROADSHEET_INBOX_PASSWORD
    folder: str = "INBOX"
    processed_folder: str = "broadsheet-processed"  # recognised mails are moved here
    ca_file: str = ""
    timeout: float = 30.0
    feedback_senders: list[str] = field(default_factory=list)  # feedback-loop addresses whose ARF reports count
    authserv_id: str = ""  # the receiving server's name in Authentication-Results (complaints, unsubscribes)


@dataclass(frozen=True)
class Serve:
    public_url: str = ""  # where `broadsheet serve` is reached, e.g. https://news.example.org (behind a proxy)
    host: str = "127.0.0.1"
    port: int = 8026
    threads: int = 4  # waitress worker threads (the store takes its writers one at a time anyway)
    trusted_proxy: str = "127.0.0.1"  # X-Forwarded-For from this address names the client ("" = none)
    form_origins: list[str] = field(default_factory=list)  # other sites whose pages may post the sign-up form
    signups_per_minute: int = 5  # per client address
    signups_per_hour: int = 30
    max_body_bytes: int = 16384


@dataclass(frozen=True)
class Doctor:
    nameservers: list[str] = field(default_factory=list)  # "ip" or "ip:port" ("[ipv6]:port"); empty: the system's


@dataclass(frozen=True)
class Tracking:
    clicks: bool = False  # rewrite an issue's links to `{serve.public_url}/r/<token>` and count the clicks
    per_subscriber: bool = False  # the click tokens name the reader too (personal data): unique clicks per link


@dataclass(frozen=True)
class Sequences:
    folder: str = "sequences"  # one folder per sequence, of step files NN-slug.md
    welcome: str = ""  # the sequence every new subscriber enters ("" for none)


@dataclass(frozen=True)
class Database:
    url: str = ""  # "postgresql://user@host:port/dbname": the subscriber store in PostgreSQL; "": SQLite


@dataclass(frozen=True)
class Config:
    """The whole of ``broadsheet.toml``; ``root`` is the folder it lives in."""

    name: str = "My Newsletter"
    from_address: str = "newsletter@example.org"  # TOML key: from
    reply_to: str = ""
    base_url: str = ""  # where web versions and images are served, e.g. https://news.example.org
    list_id: str = ""  # e.g. "weekly.news.example.org"
    language: str = "en"
    theme: str = "default"  # [theme] name (or top-level theme = …): a folder under templates/, a shipped theme, a path
    issues_dir: str = "issues"
    output_dir: str = "dist"
    unsubscribe_url: str = ""  # template: {email} {token} {list_id}
    unsubscribe_mailto: str = ""
    topics: dict[str, str] = field(default_factory=dict)  # tag -> label: tags readers may leave one by one
    brand: Brand = field(default_factory=Brand)
    footer: Footer = field(default_factory=Footer)
    send: Send = field(default_factory=Send)
    smtp: Smtp = field(default_factory=Smtp)
    dkim: Dkim = field(default_factory=Dkim)
    postmark: Postmark = field(default_factory=Postmark)
    sendgrid: Sendgrid = field(default_factory=Sendgrid)
    mailgun: Mailgun = field(default_factory=Mailgun)
    ses: Ses = field(default_factory=Ses)
    resend: Resend = field(default_factory=Resend)
    preview: Preview = field(default_factory=Preview)
    bounces: Bounces = field(default_factory=Bounces)
    inbox: Inbox = field(default_factory=Inbox)
    serve: Serve = field(default_factory=Serve)
    doctor: Doctor = field(default_factory=Doctor)
    tracking: Tracking = field(default_factory=Tracking)
    sequences: Sequences = field(default_factory=Sequences)
    database: Database = field(default_factory=Database)
    root: Path = field(default=Path("."), metadata={"internal": True})
    path: Path | None = field(default=None, metadata={"internal": True})

    def __post_init__(self) -> None:
        """Without an ``unsubscribe_url``, links go to `broadsheet serve`: ``{serve.public_url}/u/{token}``."""
        if not self.unsubscribe_url and self.serve.public_url:
            object.__setattr__(self, "unsubscribe_url", self.serve.public_url.rstrip("/") + "/u/{token}")

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the project root."""
        return (self.root / relative).resolve()

    def where(self, dotted: str) -> str:
        """``file:line`` of a key such as ``brand.logo`` in the config file (for errors)."""
        if self.path is None:
            return f"{CONFIG_NAME} [{dotted}]"
        try:
            return _TomlChecker(self.path, self.path.read_text(encoding="utf-8")).line_of(dotted)
        except (OSError, UnicodeDecodeError):
            return str(self.path)

    @property
    def theme_dir(self) -> Path:
        """A path as given; a name under the project's templates/, else one of the themes broadsheet ships."""
        candidate = Path(self.theme)
        if candidate.is_absolute() or "/" in self.theme:
            return self.resolve(self.theme)
        project_theme = self.root / "templates" / self.theme
        shipped = Path(__file__).parent / "themes" / self.theme
        return shipped if not project_theme.is_dir() and shipped.is_dir() else project_theme


# One line on each key of broadsheet.toml (its TOML name, dotted by table) and on each table: why it is
# there. `broadsheet init` writes it above each key of the file it makes, and the docs' configuration
# reference is generated from it; a test checks that it names every key of the dataclasses above.
KEY_HELP: dict[str, str] = {
    "name": "the newsletter's name: the sender's name when `from` has none, the List-Id, the archive's title",
    "from": 'the address the issue comes from: "Name <address>" or the address alone',
    "reply_to": "where readers' replies go; empty: to the from address",
    "base_url": "where `broadsheet publish`'s archive is served: each issue's page and images, the view-online link",
    "list_id": "the List-Id header, a dotted name such as weekly.news.example.org; mail clients group by it",
    "language": "the language of the issue's HTML (lang) and of the pages `broadsheet serve` shows",
    "theme": "a folder under templates/, a path, or a theme broadsheet ships (default)",
    "issues_dir": "the folder of the issue folders, relative to this file",
    "output_dir": "where `broadsheet build` writes each issue (email.html, email.txt, web.html, images)",
    "unsubscribe_url": "the unsubscribe link: {token} {list_id} {email}; empty: {serve.public_url}/u/{token}",
    "unsubscribe_mailto": "an address for List-Unsubscribe: <mailto:…>, offered beside the link",
    "brand": "how the email looks, its logo and colours (the theme uses them)",
    "brand.logo": "a path relative to this file, or an https URL; empty: the newsletter's name as text",
    "brand.logo_alt": "the logo's alt text, shown when images are off; empty: the newsletter's name",
    "brand.logo_width": "the logo's width in CSS pixels (at most 600, the email's column)",
    "brand.primary_color": "headings, the header bar and buttons",
    "brand.accent_color": "links and highlights",
    "brand.background_color": "behind the email's column",
    "brand.text_color": "the body text",
    "footer": "what every issue ends with; anti-spam laws ask for a postal address and a way out",
    "footer.postal_address": "your postal address, required in bulk mail by anti-spam laws (CAN-SPAM); lint refuses none",
    "footer.why": "one sentence on why the reader gets this newsletter",
    "footer.links": 'links in the footer, label = URL, e.g. { "Our website" = "https://example.org" }',
    "topics": 'tags readers may leave one by one on the unsubscribe page, tag = label, e.g. { trade = "Trade missions" }',
    "send": "how `broadsheet send` delivers an issue",
    "send.transport": "outbox (files in outbox_dir, sends to no one) | smtp | postmark | sendgrid | mailgun | ses | resend",
    "send.list": "the subscriber CSV a send reads when the subscriber store is empty (or with --list)",
    "send.suppressions": "a CSV of addresses never mailed, whatever a list says; a missing file suppresses no one",
    "send.connections": "worker threads, one connection to the transport each",
    "send.batch_size": "messages per call to the transport; 0: as many as it takes (smtp 1, postmark 500, …)",
    "send.compose_workers": "processes that compose the messages, on as many cores: a send's workers (the send keeps "
    "the journal and the connections), or a dry run's own process and workers beside it; 0: one per CPU, for a list "
    "of 10,000 or more and, in a send, a transport that takes batches of 16 or more (not smtp); 1: no workers",
    "send.rate_per_second": "messages per second over all connections; 0: no limit",
    "send.rate_per_hour": "messages per hour over all connections; 0: no limit",
    "send.retries": "times a deferred recipient (a 4xx answer) is tried again",
    "send.retry_delay": "seconds before the first retry; doubled each time, with jitter",
    "send.outbox_dir": "where the outbox transport and test copies write .eml files",
    "send.daily_limit": "messages per UTC day over real transports, the rest waits for the next day; 0: no limit",
    "send.warmup": "cap each day by a warm-up table that grows a new sending domain's volume over 42 days",
    "send.warmup_start": 'day 1 of the warm-up, "YYYY-MM-DD"; empty: the day the journal first sent',
    "send.feedback_id": "a Feedback-ID header on every message, for Gmail's feedback loop (Postmaster Tools)",
    "send.feedback_sender_id": "Feedback-ID's SenderId, 5 to 15 letters, digits, . _ -; empty: the From domain "
    "without its last label",
    "send.worker_lease": "seconds a `send --worker` keeps the recipients it claimed without renewing them; after "
    "that another worker sends those not yet handed to the transport and marks the rest unknown",
    "smtp": 'the SMTP server, when send.transport = "smtp"',
    "smtp.host": "the server's name",
    "smtp.port": "587 for starttls, 465 for ssl",
    "smtp.security": "starttls | ssl | none; certificates are always verified",
    "smtp.username": "the login; the password comes from BROADSHEET_SMTP_PASSWORD",
    "smtp.timeout": "seconds to wait for the server's answer to a command",
    "smtp.data_timeout": "seconds to wait for the answer to the message's final '.' (RFC 5321 advises 10 minutes)",
    "smtp.pipelining": "send MAIL, RCPT and DATA in one write when the server offers PIPELINING",
    "smtp.chunking": "send MAIL, RCPT and BDAT with the message in one write when the server offers CHUNKING and PIPELINING is on",
    "smtp.messages_per_connection": "messages before a connection is renewed",
    "smtp.ca_file": "a PEM file of the certificate authority to trust instead of the system's (a private server)",
    "smtp.return_path": 'a VERP envelope sender, e.g. "bounces+{token}@example.org": bounces name their subscriber',
    "dkim": "DKIM signatures, so receivers can check the mail is yours",
    "dkim.domain": "the signing domain (d=), usually the from address's",
    "dkim.selector": "the selector (s=) whose DNS TXT record holds the public key",
    "dkim.private_key_file": "the PEM private key, relative to this file; or the key itself in BROADSHEET_DKIM_KEY",
    "postmark": 'Postmark\'s API, when send.transport = "postmark"',
    "postmark.base_url": "the API's address",
    "postmark.message_stream": "the ID of the broadcast stream to send through; the token is BROADSHEET_POSTMARK_TOKEN",
    "sendgrid": 'SendGrid\'s API, when send.transport = "sendgrid"; the key is BROADSHEET_SENDGRID_KEY',
    "sendgrid.base_url": "the API's address",
    "mailgun": 'Mailgun\'s API, when send.transport = "mailgun"; the key is BROADSHEET_MAILGUN_KEY',
    "mailgun.base_url": "the API's address; EU: https://api.eu.mailgun.net",
    "mailgun.domain": "the sending domain set up at Mailgun (required)",
    "ses": 'Amazon SES, when send.transport = "ses"; keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    "ses.region": "the AWS region of your SES account",
    "ses.base_url": "the API's address; empty: https://email.{region}.amazonaws.com",
    "ses.configuration_set": "an SES configuration set (event publishing for bounces and complaints)",
    "resend": 'Resend\'s API, when send.transport = "resend"; the key is BROADSHEET_RESEND_KEY',
    "resend.base_url": "the API's address",
    "preview": "`broadsheet preview`, the live page of an issue",
    "preview.port": "the port on 127.0.0.1",
    "preview.sample_subscriber": "whom the preview, lint and a test copy without a list personalise as",
    "bounces": "what a bounce does to a subscriber",
    "bounces.soft_limit": "soft bounces within window_days that count as a hard one; 0: never",
    "bounces.window_days": "the days soft bounces are counted over",
    "bounces.sns_topic_arn": "SES webhooks through SNS: the topic ARNs accepted, comma-separated",
    "inbox": "the mailbox `broadsheet inbox` reads bounces, complaints and unsubscribe mails from",
    "inbox.host": "the IMAP server; empty: no mailbox is read",
    "inbox.port": "993 for ssl",
    "inbox.security": "ssl | starttls; certificates are always verified",
    "inbox.username": "the login; the password comes from BROADSHEET_INBOX_PASSWORD",
    "inbox.folder": "the folder to read",
    "inbox.processed_folder": "where recognised mails are moved",
    "inbox.ca_file": "a PEM file of the certificate authority to trust instead of the system's",
    "inbox.timeout": "seconds to wait for the server",
    "inbox.feedback_senders": "the From addresses of your providers' feedback loops; other complaint reports are refused",
    "inbox.authserv_id": "your receiving server's name in Authentication-Results; empty: no complaint applied",
    "serve": "`broadsheet serve`, for unsubscribes, sign-ups, confirmations, webhooks and the archive",
    "serve.public_url": "where readers reach it, e.g. https://news.example.org (behind a reverse proxy)",
    "serve.host": "the address it listens on; keep 127.0.0.1 behind a reverse proxy",
    "serve.port": "the port it listens on",
    "serve.threads": "worker threads",
    "serve.trusted_proxy": "the proxy whose X-Forwarded-For names the client; empty: none",
    "serve.form_origins": "other sites whose pages may post the sign-up form, e.g. https://example.org",
    "serve.signups_per_minute": "sign-ups taken per minute from one client address",
    "serve.signups_per_hour": "sign-ups taken per hour from one client address",
    "serve.max_body_bytes": "the largest form accepted, in bytes",
    "doctor": "`broadsheet doctor`: where it looks things up",
    "tracking": "counted clicks, off by default: links go through `broadsheet serve` (docs: Counting clicks)",
    "tracking.clicks": "rewrite each http(s) link of an issue to {serve.public_url}/r/<token> and count its clicks",
    "sequences": "welcome and drip sequences: folders of short emails `send --due` sends as they fall due",
    "sequences.folder": "the folder of the sequence folders (each a folder of step files NN-slug.md)",
    "sequences.welcome": 'the sequence every new subscriber enters, e.g. "welcome"; empty: none',
    "database": "where the subscriber store lives: SQLite in .broadsheet/ unless a PostgreSQL url is given"
    " (docs: PostgreSQL)",
    "database.url": "postgresql://user@host:port/dbname, no password (BROADSHEET_DATABASE_PASSWORD or a libpq"
    " service/password file); empty: SQLite",
    "tracking.per_subscriber": "the click links name the reader too (personal data): unique clicks per link",
    "doctor.nameservers": "DNS servers doctor asks (ip, ip:port, [ipv6]:port); empty: the system's; "
    "--nameserver and BROADSHEET_NAMESERVERS come first",
}

# The secrets broadsheet reads, each from its environment variable only (never from broadsheet.toml):
# variable -> (the table it goes with, "" for none; why). A test checks every variable the code reads.
SECRET_HELP: dict[str, tuple[str, str]] = {
    "BROADSHEET_SECRET": ("", "signs unsubscribe and confirmation links; a real send needs a strong one"),
    "BROADSHEET_SECRET_PREVIOUS": ("", "the secret before a rotation: links it signed still work"),
    "BROADSHEET_SMTP_PASSWORD": ("smtp", "the SMTP login's password"),
    "BROADSHEET_DKIM_KEY": ("dkim", "the DKIM private key itself, PEM, instead of private_key_file"),
    "BROADSHEET_POSTMARK_TOKEN": ("postmark", "the server token"),
    "BROADSHEET_POSTMARK_WEBHOOK_USER": ("postmark", "basic-auth user of Postmark's webhooks to `broadsheet serve`"),
    "BROADSHEET_POSTMARK_WEBHOOK_PASSWORD": ("postmark", "basic-auth password of those webhooks"),
    "BROADSHEET_SENDGRID_KEY": ("sendgrid", "the API key"),
    "BROADSHEET_SENDGRID_WEBHOOK_KEY": ("sendgrid", "the public key that signs SendGrid's event webhooks"),
    "BROADSHEET_MAILGUN_KEY": ("mailgun", "the API key"),
    "BROADSHEET_MAILGUN_WEBHOOK_KEY": ("mailgun", "the key that signs Mailgun's webhooks"),
    "AWS_ACCESS_KEY_ID": ("ses", "the AWS access key"),
    "AWS_SECRET_ACCESS_KEY": ("ses", "its secret"),
    "AWS_SESSION_TOKEN": ("ses", "a session token, with temporary keys"),
    "BROADSHEET_RESEND_KEY": ("resend", "the API key"),
    "BROADSHEET_RESEND_WEBHOOK_SECRET": ("resend", "the secret that signs Resend's webhooks"),
    "BROADSHEET_INBOX_PASSWORD": ("inbox", "the IMAP login's password"),
    "BROADSHEET_DATABASE_PASSWORD": (
        "database",
        "the PostgreSQL user's password (else libpq's service or password file)",
    ),
}


@dataclass(frozen=True)
class ConfigKey:
    """One key of broadsheet.toml: its table ("" at the top), TOML name, default and why (KEY_HELP)."""

    table: str
    name: str
    default: Any
    help: str

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name


def config_tables() -> list[tuple[str, list[ConfigKey]]]:
    """Every table of broadsheet.toml ("" first: the top level) with its keys, in the dataclasses' order."""
    found: list[tuple[str, list[ConfigKey]]] = []

    def walk(cls: type, table: str) -> None:
        keys: list[ConfigKey] = []
        found.append((table, keys))
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            if item.metadata.get("internal"):
                continue
            if isinstance(hints[item.name], type) and dataclasses.is_dataclass(hints[item.name]):
                walk(hints[item.name], f"{table}.{item.name}" if table else item.name)
                continue
            name = _toml_name(item.name) if not table else item.name
            default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
            dotted = f"{table}.{name}" if table else name
            keys.append(ConfigKey(table, name, default, KEY_HELP.get(dotted, "")))

    walk(Config, "")
    return found


TOML_ALIASES = {"from": "from_address"}
TOPIC_TAG = re.compile(r"[^;,\s](?:[^;,]{0,98}[^;,\s])?")  # a tag (data/store check_tags, a list's tags column)
MULTILINE_KEYS = {"postal_address", "why"}  # the footer's text; every other string is one line
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # control characters but tab
CSS_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}|[A-Za-z]+|(?:rgb|rgba|hsl|hsla)\([0-9.,%\s/]+\)")
TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
KEY_LINE = re.compile(
    r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
NONZERO = {
    "logo_width",
    "connections",
    "port",
    "timeout",
    "messages_per_connection",
    "data_timeout",
    "threads",
    "max_body_bytes",
    "worker_lease",
}  # 0 makes no sense
MAXIMUM = {
    "logo_width": 600,  # px, the email's column
    "connections": 100,  # a thread each
    "batch_size": 10_000,
    "compose_workers": 64,  # a process each
    "rate_per_second": 10_000,
    "rate_per_hour": 36_000_000,
    "retries": 100,
    "retry_delay": 86_400,  # s
    "worker_lease": 86_400,  # s
    "daily_limit": 1_000_000_000,
    "port": 65_535,
    "timeout": 3_600,  # s
    "messages_per_connection": 1_000_000,
    "data_timeout": 3_600,  # s
    "soft_limit": 1_000,
    "window_days": 3_650,
    "threads": 100,
    "signups_per_minute": 10_000,
    "signups_per_hour": 1_000_000,
    "max_body_bytes": 10 * 1024 * 1024,
}  # the largest value of each number key: beyond it a thread, a date or a buffer cannot be had (and inf, nan)
SECRET_ENV = {
    **secret_variables(),  # the transports' (broadsheet.core.providers)
    "unsubscribe": "BROADSHEET_SECRET",
    "dkim": "BROADSHEET_DKIM_KEY",
    "inbox": "BROADSHEET_INBOX_PASSWORD",
    "database": "BROADSHEET_DATABASE_PASSWORD",
}


# How to make a secret that signs links (README, the errors that ask for one).
MAKE_SIGNING_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
SIGNING_SECRET_CHARS = 32
SIGNING_SECRET_BITS = 128


def secret(name: str, *, required: bool = True, token: bool = False) -> str:
    """Read a secret from its environment variable; never from the file, never printed.

    ``token``: the value goes into an HTTP header or a signature (API keys), so it must be printable
    ASCII without spaces; anything else (a pasted smart quote, a line break) is a ConfigError that
    names the variable and what is wrong, never the value. The secret that signs links, when
    ``required``, must be strong (:func:`check_signing_secret`)."""
    variable = SECRET_ENV.get(name, name)
    value = os.environ.get(variable, "")
    if required and not value:
        raise ConfigError(f"the environment variable {variable} is not set", fix=f"export {variable}=…")
    if required and name == "unsubscribe":
        check_signing_secret(variable, value)
    if token:
        _check_token(variable, value)
    return value


def weak_secret(value: str) -> str | None:
    """Why ``value`` is too weak to sign links (a forger who guesses it unsubscribes anyone), or None.

    It needs 32 characters or more and room for 128 random bits: at least 8 different characters, and
    length × log2(different characters) ≥ 128, the most that many characters from that few can hold.
    Every ``secrets.token_urlsafe(32)`` and ``token_hex(32)`` passes; ``aaaa…``, ``abab…`` do not."""
    if len(value) < SIGNING_SECRET_CHARS:
        return f"it is shorter than {SIGNING_SECRET_CHARS} characters"
    different = len(set(value))
    if different < 8 or len(value) * math.log2(different) < SIGNING_SECRET_BITS:
        return f"it repeats too few different characters to hold {SIGNING_SECRET_BITS} random bits"
    return None


def check_signing_secret(variable: str, value: str) -> None:
    """ConfigError naming ``variable`` (never the value) when the secret in it is too weak to sign links."""
    if (why := weak_secret(value)) is not None:
        raise ConfigError(
            f"too weak to sign links: {why}, so one message received is enough to guess it and forge links",
            where=f"environment variable {variable}",
            fix=f"make one with {MAKE_SIGNING_SECRET} and export {variable}=<it>",
        )


def _check_token(variable: str, value: str) -> None:
    """ConfigError at the first character an HTTP header cannot carry as a key (position only)."""
    for position, char in enumerate(value, 1):
        if "!" <= char <= "~":
            continue
        if char in "\r\n":
            kind = "a line break"
        elif char in " \t":
            kind = "a space"
        elif char.isascii() or not char.isprintable():
            kind = "a control character"
        else:
            kind = "a character outside ASCII (a pasted smart quote or dash?)"
        raise ConfigError(
            f"holds {kind} at character {position} of {len(value)}: API keys are printable ASCII",
            where=f"environment variable {variable}",
            fix=f"set {variable} to the key exactly as the provider shows it",
        )


def find_config(start: Path | None = None) -> Path | None:
    """``broadsheet.toml`` in ``start`` or the nearest folder above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | str | None = None, *, start: Path | None = None) -> Config:
    """Load and validate the config at ``path``, or the one found from ``start`` upward.

    With no file anywhere, the defaults apply with ``start`` (or the current folder) as the root.
    """
    found = Path(path) if path is not None else find_config(start)
    if found is None:
        return Config(root=(start or Path.cwd()).resolve())
    if not found.exists():
        raise ConfigError("config file not found", where=str(found), fix="check the --config path")
    return parse_config(read_utf8(found, ConfigError), found)


def parse_config(text: str, found: Path) -> Config:
    """The config ``text`` holds, as if read from the file ``found`` (errors name its lines)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(
            f"invalid TOML: {exc}", where=f"{found}:{line[1]}" if line else str(found), fix="fix the TOML syntax"
        ) from None
    checker = _TomlChecker(found, text)
    if isinstance(data.get("theme"), dict):
        data = {**data, "theme": _theme_name(data["theme"], checker)}
    values = checker.table(Config, data, prefix="")
    if "serve" in values:
        _check_origins(values["serve"], checker)
    if "topics" in values:
        _check_topics(values["topics"], checker)
    if values.get("base_url") and not values["base_url"].startswith(("https://", "http://")):
        raise ConfigError(
            f"base_url must be a whole web address, not {values['base_url']!r}",
            where=checker.line_of("base_url"),
            fix=f'write base_url = "https://{values["base_url"]}"',
        )
    _check_smtp_timeouts(values.get("smtp"), checker)
    if "send" in values:
        _check_feedback_sender(values["send"], checker)
    if "inbox" in values:
        _check_inbox(values["inbox"], checker)
    if "doctor" in values:
        for server in values["doctor"].nameservers:
            if nameserver_address(server) is None:
                raise ConfigError(
                    f'doctor.nameservers must hold addresses such as "192.0.2.53" or "127.0.0.1:5353", not {server!r}',
                    where=checker.line_of("doctor.nameservers"),
                    fix="give each DNS server as an IP address, with :port when it is not 53",
                )
    if "tracking" in values:
        _check_tracking(values["tracking"], values.get("serve", Serve()), checker)
    if "database" in values:
        _check_database(values["database"], checker)
    return Config(**values, root=found.parent.resolve(), path=found.resolve())


def _theme_name(table: dict[str, Any], checker: _TomlChecker) -> str:
    """``[theme] name = "letter"``, the table form of the top-level ``theme = "letter"``."""
    for key in table:
        if key != "name":
            raise ConfigError(f"unknown key 'theme.{key}'", where=checker.line_of(f"theme.{key}"), fix="allowed: name")
    name = table.get("name", "default")
    if not isinstance(name, str) or not name.strip():
        raise checker.wrong("theme.name", 'a theme\'s name such as "default" or "letter", or a folder', name)
    return name


def nameserver_address(text: str) -> tuple[str, int] | None:
    """(IP address, port) of a DNS server written ``ip``, ``ip:port`` or ``[ipv6]:port``; None when malformed."""
    import ipaddress

    text = text.strip()
    host, port = text, "53"
    bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?", text)
    if bracketed:
        host, port = bracketed[1], bracketed[2] or "53"
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return (host, int(port)) if port.isdigit() and 0 < int(port) < 65536 else None


def _check_database(database: Database, checker: _TomlChecker) -> None:
    """A PostgreSQL URL without a password: the password comes from the environment or libpq's files."""
    problem = database_url_problem(database.url)
    if problem is not None:
        raise ConfigError(f"database.url {problem}", where=checker.line_of("database.url"), fix=DATABASE_URL_FIX)


def database_url_problem(url: str) -> str | None:
    """What is wrong with a ``[database] url`` (or ``db copy --to``), said without the URL; None when fine.
    Empty is fine: SQLite."""
    from urllib.parse import urlsplit

    if not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- a port that is not a number raises here
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.scheme not in ("postgresql", "postgres"):
        return "must start with postgresql://"
    if parts.password is not None or "password=" in parts.query:
        return "holds a password: keep it out of files and command lines (export BROADSHEET_DATABASE_PASSWORD)"
    return None


DATABASE_URL_FIX = 'write url = "postgresql://user@host:5432/dbname" and export BROADSHEET_DATABASE_PASSWORD, or remove [database] for SQLite'


def _check_tracking(tracking: Tracking, serve: Serve, checker: _TomlChecker) -> None:
    """Counted clicks go through serve: ``[serve] public_url`` is where the links point."""
    if tracking.per_subscriber and not tracking.clicks:
        raise ConfigError(
            "[tracking] per_subscriber needs clicks = true",
            where=checker.line_of("tracking.per_subscriber"),
            fix="add clicks = true under [tracking], or remove per_subscriber",
        )
    if tracking.clicks and not serve.public_url:
        raise ConfigError(
            "[tracking] clicks needs [serve] public_url: the links point at serve",
            where=checker.line_of("tracking.clicks"),
            fix='add [serve] public_url = "https://news.example.org", or set clicks = false',
        )


def _check_topics(topics: dict[str, str], checker: _TomlChecker) -> None:
    """Each topic is a tag as a subscriber list writes it (no ';' or ',', no spaces around it, one per case)
    with a label to show."""
    seen: dict[str, str] = {}
    for tag, label in topics.items():
        where = checker.line_of(f"topics.{tag}")
        if not TOPIC_TAG.fullmatch(tag):
            raise ConfigError(
                f"topics: {tag!r} is not a tag name: a tag has no ';' or ',' and no spaces around it",
                where=where,
                fix='name the tag as the subscribers\' tags column writes it, e.g. trade = "Trade missions"',
            )
        if tag.casefold() in seen:
            raise ConfigError(
                f"topics: {tag!r} and {seen[tag.casefold()]!r} are one tag (tags ignore case)",
                where=where,
                fix="keep one of them",
            )
        seen[tag.casefold()] = tag
        if not label.strip():
            raise ConfigError(f"topics.{tag} has no label", where=where, fix=f'write {tag} = "Its name for readers"')


def _check_origins(serve: Serve, checker: _TomlChecker) -> None:
    """``[serve] public_url`` and ``form_origins`` are origins: scheme and host (and port), no path."""
    named = [("serve.public_url", serve.public_url)] if serve.public_url else []
    for key, value in [*named, *(("serve.form_origins", origin) for origin in serve.form_origins)]:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?/?", value):
            raise ConfigError(
                f"{key} must be a site's address like https://news.example.org, not {value!r}",
                where=checker.line_of(key),
                fix="give scheme and host (and port) only, no path",
            )


def _check_feedback_sender(send: Send, checker: _TomlChecker) -> None:
    """Gmail's SenderId: 5 to 15 characters that cannot break the Feedback-ID header's fields."""
    value = send.feedback_sender_id
    if value and not re.fullmatch(r"[A-Za-z0-9._-]{5,15}", value):
        raise ConfigError(
            f"send.feedback_sender_id must be 5 to 15 letters, digits, dots, dashes or underscores, not {value!r}",
            where=checker.line_of("send.feedback_sender_id"),
            fix='choose a short, stable name such as "bcecc-news"',
        )


def _check_inbox(inbox: Inbox, checker: _TomlChecker) -> None:
    """``feedback_senders`` are addresses; ``authserv_id`` is a name as Authentication-Results writes it."""
    for sender in inbox.feedback_senders:
        if not re.fullmatch(r"[^@\s<>\"(),;:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", sender):
            raise ConfigError(
                f'inbox.feedback_senders must hold addresses such as "fbl@isp.example", not {sender!r}',
                where=checker.line_of("inbox.feedback_senders"),
                fix="list the From addresses of your providers' feedback loops",
            )
    if inbox.authserv_id and not re.fullmatch(r"[A-Za-z0-9._-]+", inbox.authserv_id):
        raise ConfigError(
            f'inbox.authserv_id must be a host name such as "mx.example.org", not {inbox.authserv_id!r}',
            where=checker.line_of("inbox.authserv_id"),
            fix="copy the name before the first ';' of the Authentication-Results your server adds",
        )


def _check_smtp_timeouts(smtp: Smtp | None, checker: _TomlChecker) -> None:
    """The reply to the final "." may take longer than any command's, never less (RFC 5321 §4.5.3.2)."""
    if smtp is not None and smtp.data_timeout < smtp.timeout:
        where = checker.line_of("smtp.data_timeout")
        raise ConfigError(
            f"smtp.data_timeout ({smtp.data_timeout:g} s) is shorter than smtp.timeout ({smtp.timeout:g} s)",
            where=where if where != str(checker.path) else checker.line_of("smtp.timeout"),
            fix="set smtp.data_timeout to 600 (RFC 5321 advises 10 minutes)",
        )


MAX_TEXT_BYTES = 1024 * 1024  # config and Markdown files: anything larger is a mistake (or /dev/zero)


def read_utf8(path: Path, error: type[BroadsheetError], *, limit: int = MAX_TEXT_BYTES) -> str:
    """The text of a UTF-8 file (a BOM is dropped); unreadable, not a regular file, over ``limit`` bytes
    or not UTF-8 raises ``error`` naming file:line."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device never end
            raise error("not a regular file", where=str(path), fix="point to a text file")
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read the file: {exc.strerror}", where=str(path)) from None
    if len(raw) > limit:
        raise error(
            f"the file is over {limit / 2**20:g} MiB",
            where=str(path),
            fix="split it into smaller files, or check that it is the file you meant",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error("the file is not UTF-8", where=f"{path}:{line}", fix="save it as UTF-8") from None


class _TomlChecker:
    """Checks a parsed TOML table against a dataclass, naming file:line on any mistake."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, key: str) -> str:
        """``file:line`` of a dotted key (``brand.logo``) or table (``footer``), inside its own table; a key
        of an inline table (``sample_subscriber = { name = … }``) gives the line of that table."""
        number = self._find(key, tables=True)
        while number is None and "." in key:
            key = key.rpartition(".")[0]
            number = self._find(key, tables=False)
        return f"{self.path}:{number}" if number else str(self.path)

    def _find(self, key: str, *, tables: bool) -> int | None:
        table = ""
        for number, line in enumerate(self.lines, 1):
            header = TABLE_HEADER.match(line)
            if header:
                table = _dotted(header.group(1))
                if tables and table == key:
                    return number
                continue
            assigned = KEY_LINE.match(line)
            if assigned and ".".join(filter(None, [table, _dotted(assigned.group(1))])) == key:
                return number
        return None

    def table(self, cls: type, data: dict[str, Any], prefix: str) -> dict[str, Any]:
        fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for raw_key, value in data.items():
            name = TOML_ALIASES.get(raw_key, raw_key) if not prefix else raw_key
            dotted = prefix + raw_key
            if name not in fields:
                allowed = [k for k in ([*fields] if prefix else [_toml_name(k) for k in fields])]
                close = difflib.get_close_matches(raw_key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(sorted(allowed))
                raise ConfigError(f"unknown key '{dotted}'", where=self.line_of(dotted), fix=hint)
            values[name] = self.value(hints[name], value, dotted)
        return values

    def value(self, hint: Any, value: Any, dotted: str) -> Any:
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a [table]
            if not isinstance(value, dict):
                raise self.wrong(dotted, f"a table [{dotted}]", value)
            return hint(**self.table(hint, value, prefix=dotted + "."))
        origin = typing.get_origin(hint)
        if origin is Literal:
            allowed = typing.get_args(hint)
            if value not in allowed:
                raise self.wrong(dotted, " or ".join(repr(a) for a in allowed), value)
            return value
        if origin is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.wrong(dotted, "a list of strings", value)
            return list(value)
        if origin is dict:
            if not isinstance(value, dict):
                raise self.wrong(dotted, "a table of strings", value)
            for key, item in value.items():
                if not isinstance(item, str):
                    raise self.wrong(f"{dotted}.{key}", "a string", item)
            return {self.text(dotted, k): self.text(f"{dotted}.{k}", v) for k, v in value.items()}
        if origin in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if hint in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if hint is int and isinstance(value, float):
                raise self.wrong(dotted, "a whole number", value)
            leaf = dotted.rsplit(".", 1)[-1]
            low = 0 if hint is float or leaf not in NONZERO else 1
            if not low <= value <= MAXIMUM[leaf] or (value == 0 and leaf in NONZERO):  # nan is in no range
                raise self.wrong(dotted, _allowed(hint, leaf), value)
            return hint(value)
        if hint is str and type(value) is str:
            return self.text(dotted, value)
        if hint in (float, bool) and type(value) is hint:
            return value
        raise self.wrong(dotted, _describe(hint), value)

    def text(self, dotted: str, value: str) -> str:
        """``value`` when it holds no control character (nor a line break, but where text may have several lines)."""
        leaf = dotted.rsplit(".", 1)[-1]
        bad = CONTROL.search(value.replace("\n", "") if leaf in MULTILINE_KEYS else value)
        if bad:
            what = "a line break" if bad.group() in "\r\n" else f"the control character U+{ord(bad.group()):04X}"
            raise ConfigError(
                f"'{dotted}' holds {what}",
                where=self.line_of(dotted),
                fix="remove it" if leaf in MULTILINE_KEYS else f"write {dotted} as one line of plain text",
            )
        if leaf.endswith("_color") and not CSS_COLOUR.fullmatch(value):  # it goes into the theme's CSS as is
            raise self.wrong(dotted, 'a CSS colour such as "#1f4e79"', value)
        return value

    def wrong(self, dotted: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(
            f"'{dotted}' must be {expected}, not {type(value).__name__} {value!r}",
            where=self.line_of(dotted),
            fix=f"set {dotted} to {expected}",
        )


def _dotted(key: str) -> str:
    """A TOML key as written (``a . "b c"``) in the dotted form errors use (``a.b c``)."""
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", key)
    return ".".join(next(filter(None, part), "") for part in parts)


def _toml_name(name: str) -> str:
    return {v: k for k, v in TOML_ALIASES.items()}.get(name, name)


def _allowed(hint: Any, leaf: str) -> str:
    """The range a number key takes, as its error says it."""
    if hint is float and leaf in NONZERO:
        return f"a number above 0 and at most {MAXIMUM[leaf]}"
    kind = "whole number" if hint is int else "number"
    return f"a {kind} from {1 if hint is int and leaf in NONZERO else 0} to {MAXIMUM[leaf]}"


def _describe(hint: Any) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}.get(hint, str(hint))
