"""The outbox transport: one ``.eml`` file per recipient, for demos and for reading what would go out.

Files land in ``<send.outbox_dir>/<slug>/<n>-<address>.eml`` under the project root. ``slug`` (the
issue's) comes through the constructor keyword; without it the files go straight into the outbox folder.
Test copies (``test=True``, from ``send --test``) go to ``<slug>/test/``, apart from the campaign's.
"""

from __future__ import annotations

import email.parser
import email.policy
import errno
import itertools
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config
from broadsheet.core.errors import TransportError

from .base import Delivery, Transport, TransportOptions, Verdict

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")
_counters: dict[Path, itertools.count[int]] = {}
_counters_lock = threading.Lock()


def safe_address(address: str) -> str:
    """The address as a file-name part: only letters, digits and ``@._+-``."""
    return _UNSAFE.sub("_", address)[:120]


def _next_number(folder: Path) -> int:
    """A number unique within ``folder`` across every worker of this process, continuing past old files."""
    with _counters_lock:
        counter = _counters.get(folder)
        if counter is None:
            counter = _counters[folder] = itertools.count(sum(1 for _ in folder.glob("*.eml")) + 1)
        return next(counter)


def remove_messages_to(folder: Path, is_them: Callable[[str], bool]) -> int:
    """Delete every message under ``folder`` (campaigns' and test copies) whose To or Cc names an address
    ``is_them`` accepts, read from the parsed headers (RFC 2047 names, IDNA domains); how many. Links are
    not followed: only the outbox's own files go."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    removed = 0
    for top, _, names in os.walk(folder):
        for name in names:
            path = Path(top) / name
            if path.suffix != ".eml" or path.is_symlink():
                continue
            try:
                with path.open("rb") as handle:
                    headers = parser.parse(handle)
                recipients = [address.addr_spec for field in ("To", "Cc") for value in headers.get_all(field, [])
                              for address in getattr(value, "addresses", ())]  # fmt: skip
                if any(is_them(recipient) for recipient in recipients):
                    path.unlink()
                    removed += 1
            except OSError as exc:
                raise TransportError(
                    f"cannot remove a message from the outbox: {exc.strerror}", where=str(path)
                ) from None
    return removed


class OutboxTransport(Transport):
    """Writes each message's raw bytes to its own file (written whole, then renamed into place)."""

    name = "outbox"
    raw_only = True

    def verify(self) -> Verdict:
        return "ok", "the outbox writes files: no server, no credentials"

    def __init__(self, config: Config, options: TransportOptions | None = None):
        super().__init__(config, options)
        slug, test = self.options.slug, self.options.test
        self.folder = (
            config.resolve(config.send.outbox_dir) / safe_address(slug)
            if slug
            else config.resolve(config.send.outbox_dir)
        )
        if test:
            self.folder = self.folder / "test"

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(f"cannot create the outbox: {exc.strerror}", where=str(self.folder)) from None

    def send_one(self, message: Message) -> Delivery:
        path = self.folder / f"{_next_number(self.folder)}-{safe_address(message.recipient)}.eml"
        partial = path.with_name(f".{path.name}.part")
        try:
            with open(partial, "wb") as handle:
                handle.write(message.raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)  # no part of a message is left behind
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise TransportError(
                    "the disk holding the outbox is full", where=str(self.folder),
                    fix="free some space, then run the same command again to resume",
                ) from None  # fmt: skip
            raise TransportError(f"cannot write to the outbox: {exc.strerror}", where=str(path)) from None
        return Delivery(message.recipient, "sent", detail=str(path), message_id=message.headers.get("Message-ID", ""))
