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
class Sequences:
    folder: str = "sequences"  # one folder per sequence, of step files NN-slug.md
    welcome: str = ""  # the sequence every new subscriber enters ("" for none)


@dataclass(frozen=True)
class Config:
    """The whole of ``broadsheet.toml``; ``root`` is the folder it lives in."""

    name: str = "My Newsletter"
    from_address: str = "newsletter@example.org"  # TOML key: from
    reply_to: str = ""
    base_url: str = ""  # where web versions and images are served, e.g. https://news.example.org
    list_id: str = ""  # e.g. "weekly.news.example.org"
    language: str = "en"
    theme: str = "default"  # a folder under templates/, or a path
    issues_dir: str = "issues"
    output_dir: str = "dist"
    unsubscribe_url: str = ""  # template: {email} {token} {list_id}
    unsubscribe_mailto: str = ""
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
    sequences: Sequences = field(default_factory=Sequences)
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


TOML_ALIASES = {"from": "from_address"}
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
}  # 0 makes no sense
MAXIMUM = {
    "logo_width": 600,  # px, the email's column
    "connections": 100,  # a thread each
    "batch_size": 10_000,
    "rate_per_second": 10_000,
    "rate_per_hour": 36_000_000,
    "retries": 100,
    "retry_delay": 86_400,  # s
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
    text = read_utf8(found, ConfigError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(
            f"invalid TOML: {exc}", where=f"{found}:{line[1]}" if line else str(found), fix="fix the TOML syntax"
        ) from None
    checker = _TomlChecker(found, text)
    values = checker.table(Config, data, prefix="")
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
    if "serve" in values:
        _check_origins(values["serve"], checker)
    return Config(**values, root=found.parent.resolve(), path=found.resolve())


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
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise self.wrong(dotted, "a table of strings", value)
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


# What each key of broadsheet.toml means, by its dotted TOML name (a table by its own name): the docs'
# configuration reference is generated from the dataclasses above and this table (tests/test_docs.py
# fails when a key has no entry here).
DESCRIPTIONS = {
    "name": "The newsletter's name: the email's header, the archive, List-Id's display name.",
    "from": "The From address; `Name <address>` allowed.",
    "reply_to": "The Reply-To address (none when empty).",
    "base_url": "Where the web archive (`broadsheet publish`) is uploaded: each issue's page and images live "
    "under it, and the emails link there (view in your browser, `List-Archive`, `Archived-At`). Without it the "
    "theme leaves out its view-in-browser links.",
    "list_id": "The `List-Id` header, e.g. `news.example.org`. Tokens are bound to it: changing it invalidates "
    "every unsubscribe link already sent.",
    "language": "The HTML `lang` of the email, the archive and serve's pages (serve has English, French and Dutch "
    "texts; others fall back to English).",
    "theme": "A folder under `templates/`, or a path; `default` is the theme broadsheet ships.",
    "issues_dir": "The folder of the issue folders, relative to the config.",
    "output_dir": "Where `broadsheet build` writes, relative to the config.",
    "unsubscribe_url": "The unsubscribe link, a template with `{token}` (opaque, keyed with BROADSHEET_SECRET), "
    "`{list_id}` and `{email}` (lint warns: the address shows in the link). Empty with `[serve] public_url` set: "
    "`{public_url}/u/{token}`.",
    "unsubscribe_mailto": "An address for `List-Unsubscribe: <mailto:…>` (read by `broadsheet inbox`).",
    "brand": "The logo and colours of the emails, the archive and serve's pages.",
    "brand.logo": "A path relative to the project, or an https URL; optimised on build.",
    "brand.logo_alt": "The logo's alt text.",
    "brand.logo_width": "The logo's width in the email, in pixels.",
    "brand.primary_color": "A CSS colour: the masthead (the archive's links and serve's buttons too).",
    "brand.accent_color": "A CSS colour: the band under the masthead (the archive's Subscribe link too).",
    "brand.background_color": "A CSS colour: around the email's column.",
    "brand.text_color": "A CSS colour: the body text.",
    "footer": "The email's footer.",
    "footer.postal_address": "Your postal address (required by anti-spam laws; lint and build check for it).",
    "footer.why": "Why the reader gets this newsletter.",
    "footer.links": "A table of links for the footer: label = URL.",
    "send": "How `broadsheet send` sends.",
    "send.transport": "outbox, smtp, postmark, sendgrid, mailgun, ses or resend.",
    "send.list": "The subscriber CSV used when the store is empty and no `--list` is given.",
    "send.suppressions": "A CSV of addresses never mailed, whatever the list says (applied when it exists).",
    "send.connections": "Worker threads, one transport connection each.",
    "send.batch_size": "Messages per batch; 0: as many as the transport takes per call (smtp 1, outbox 100, "
    "postmark 500, sendgrid and mailgun 1,000, resend 100, ses 1).",
    "send.rate_per_second": "A cap shared by all connections; 0: unlimited.",
    "send.rate_per_hour": "A cap shared by all connections; 0: unlimited.",
    "send.retries": "How many times a deferred recipient is retried.",
    "send.retry_delay": "Seconds before the first retry; doubling each time, ±50 % jitter.",
    "send.outbox_dir": "Where the outbox transport writes one `.eml` per recipient.",
    "send.daily_limit": "Messages per calendar day in UTC over real transports; 0: no limit.",
    "send.warmup": "Cap each day by the warm-up table for a new sending domain.",
    "send.warmup_start": "Day 1 of the warm-up, `YYYY-MM-DD`; empty: the day the journal first sent.",
    "send.feedback_id": "A Feedback-ID header on every message, for Gmail's feedback loop (Postmaster Tools).",
    "send.feedback_sender_id": "Feedback-ID's SenderId: 5 to 15 letters, digits, `.`, `_`, `-`; empty: the From "
    "domain without its last label.",
    "smtp": "The SMTP server (transport smtp). The password comes from BROADSHEET_SMTP_PASSWORD.",
    "smtp.host": "The server's host name.",
    "smtp.port": "587 for STARTTLS, 465 for implicit TLS.",
    "smtp.security": "starttls, ssl (implicit TLS) or none; certificates are always verified.",
    "smtp.username": "The AUTH user name (none: no login).",
    "smtp.timeout": "Seconds to wait for each reply.",
    "smtp.messages_per_connection": "A connection is renewed after this many messages.",
    "smtp.ca_file": "A CA bundle for a private certificate authority.",
    "smtp.data_timeout": "Seconds to wait for the reply to the final `.` (RFC 5321 advises 10 minutes; never "
    "shorter than `timeout`). Without a reply the recipient is `unknown`, never resent by itself.",
    "smtp.pipelining": "Send MAIL, RCPT and DATA in one write when the server offers PIPELINING (RFC 2920).",
    "smtp.return_path": "A VERP envelope sender such as `bounces+{token}@example.org`: an opaque per-recipient "
    "token, read back by `broadsheet inbox`.",
    "dkim": "DKIM-sign every message (the key itself may come from BROADSHEET_DKIM_KEY instead of a file).",
    "dkim.domain": "The signing domain (`d=`).",
    "dkim.selector": "The selector (`s=`) whose DNS record holds the public key.",
    "dkim.private_key_file": "The PEM private key, relative to the project.",
    "postmark": "Postmark (token in BROADSHEET_POSTMARK_TOKEN; up to 500 messages per call).",
    "postmark.base_url": "The API's address.",
    "postmark.message_stream": "The broadcast message stream's ID.",
    "sendgrid": "SendGrid (key in BROADSHEET_SENDGRID_KEY; up to 1,000 recipients per call).",
    "sendgrid.base_url": "The API's address.",
    "mailgun": "Mailgun (key in BROADSHEET_MAILGUN_KEY; up to 1,000 recipients per call).",
    "mailgun.base_url": "The API's address; EU: `https://api.eu.mailgun.net`.",
    "mailgun.domain": "The sending domain (required).",
    "ses": "Amazon SES v2 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN; one raw message "
    "per call).",
    "ses.region": "The AWS region, e.g. `eu-west-1`.",
    "ses.base_url": "The API's address; empty: `https://email.{region}.amazonaws.com`.",
    "ses.configuration_set": "The configuration set to send with (its event destination feeds bounces).",
    "resend": "Resend (key in BROADSHEET_RESEND_KEY; up to 100 per call, with an Idempotency-Key).",
    "resend.base_url": "The API's address.",
    "preview": "`broadsheet preview`.",
    "preview.port": "The port on 127.0.0.1.",
    "preview.sample_subscriber": "The subscriber whose values fill the merge tags (a table of strings).",
    "bounces": "What bounces count for.",
    "bounces.soft_limit": "Soft bounces within `window_days` that count as a hard one; 0: never.",
    "bounces.window_days": "The window for `soft_limit`, in days.",
    "bounces.sns_topic_arn": "SES webhooks through SNS: the accepted topic ARNs, comma-separated.",
    "inbox": "The IMAP mailbox `broadsheet inbox` reads (password from BROADSHEET_INBOX_PASSWORD).",
    "inbox.host": "The IMAP server.",
    "inbox.port": "993 for implicit TLS.",
    "inbox.security": "ssl or starttls; certificates are always verified.",
    "inbox.username": "The login.",
    "inbox.folder": "The folder to read.",
    "inbox.processed_folder": "Where recognised mails are moved.",
    "inbox.ca_file": "A CA bundle for a private certificate authority.",
    "inbox.timeout": "Seconds to wait for the server.",
    "inbox.feedback_senders": "The From addresses of your providers' feedback loops: complaint reports from "
    "anyone else are refused (empty: none applied).",
    "inbox.authserv_id": "The name your receiving server writes first in its Authentication-Results (e.g. "
    "`mx.google.com`); empty: no complaint or unsubscribe mail is applied.",
    "serve": "`broadsheet serve`: unsubscribes, sign-ups, webhooks.",
    "serve.public_url": "Where readers reach serve, e.g. `https://news.example.org` (scheme and host only); "
    "the unsubscribe links are `{public_url}/u/{token}`.",
    "serve.host": "The address to listen on (behind a reverse proxy).",
    "serve.port": "The port to listen on.",
    "serve.threads": "waitress worker threads.",
    "serve.trusted_proxy": "The proxy whose X-Forwarded-For names the client; empty: none.",
    "serve.form_origins": "Other sites whose pages may post the sign-up form (`serve --form-snippet`).",
    "serve.signups_per_minute": "Sign-ups per client address per minute.",
    "serve.signups_per_hour": "Sign-ups per client address per hour.",
    "serve.max_body_bytes": "The largest request body for a page (webhooks: 4 MB).",
    "sequences": "Automated sequences of emails (`send --due` sends their steps as they fall due).",
    "sequences.folder": "The folder of the sequence folders (each holds step files `NN-slug.md`), relative to the "
    "config.",
    "sequences.welcome": "The sequence every new subscriber enters: a confirmed sign-up, `subscribers add`, an "
    "import with `--sequence`; empty: none.",
}
