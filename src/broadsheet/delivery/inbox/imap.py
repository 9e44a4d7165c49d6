"""The mailbox, over IMAP with TLS always on and the certificate verified (imaplib)."""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from typing import Any

from broadsheet.core.config import Inbox, secret
from broadsheet.core.errors import BroadsheetError

FETCH_CHUNK = 100  # messages per FETCH
UID_IN_FETCH = re.compile(rb"UID (\d+)")


class InboxError(BroadsheetError):
    """The mailbox cannot be reached, logged into or read."""


class Mailbox:
    """One IMAP session on ``settings.folder``: list, fetch and move messages by UID."""

    def __init__(self, settings: Inbox):
        if not settings.host:
            raise InboxError("no IMAP server is set", where="inbox.host", fix='set [inbox] host = "imap.example.org"')
        if settings.processed_folder.strip().lower() == settings.folder.strip().lower():
            raise InboxError(
                "processed_folder is the folder being read: processed mails would be read again",
                where="inbox.processed_folder",
                fix='set processed_folder = "broadsheet-processed"',
            )
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"
        self.imap: imaplib.IMAP4 | None = None
        self.can_move = False

    def __enter__(self) -> Mailbox:
        password = secret("inbox")
        try:
            self.imap = self._connect()
            self._ok(self.imap.login(self.settings.username, password), "log in")
            self.can_move = (
                "MOVE" in self._ok(self.imap.capability(), "ask the capabilities")[0].decode().upper().split()
            )
            self._ok(self.imap.select(_quoted(self.settings.folder)), f"open the folder {self.settings.folder!r}")
        except imaplib.IMAP4.error as exc:
            self.close()
            raise InboxError(
                f"the IMAP server refused: {_clean(exc, password)}",
                where=self.where,
                fix="check inbox.username and BROADSHEET_INBOX_PASSWORD",
            ) from None
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise InboxError(
                f"the IMAP server's certificate is not trusted: {exc.verify_message}",
                where=self.where,
                fix="check inbox.host, or set inbox.ca_file to the CA that signed it",
            ) from None
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise InboxError(
                f"cannot reach the IMAP server: {exc}",
                where=self.where,
                fix="check inbox.host, inbox.port and inbox.security",
            ) from None
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.imap is not None:
            try:
                self.imap.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
            self.imap = None

    def uids(self) -> list[bytes]:
        data = self._ok(self._imap.uid("SEARCH", "ALL"), "list the messages")
        return data[0].split() if data and data[0] else []

    def fetch(self, uids: Sequence[bytes]) -> Iterator[tuple[bytes, bytes]]:
        """(uid, raw message) for each, FETCH_CHUNK per request, without setting \\Seen."""
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = b",".join(uids[start : start + FETCH_CHUNK]).decode()
            for item in self._ok(self._imap.uid("FETCH", chunk, "(UID BODY.PEEK[])"), "fetch messages"):
                if isinstance(item, tuple) and (uid := UID_IN_FETCH.search(item[0])):
                    yield uid[1], item[1]

    def move(self, uids: Sequence[bytes], folder: str) -> None:
        """Move the messages to ``folder`` (created when missing): MOVE, or COPY + \\Deleted + EXPUNGE."""
        if not uids:
            return
        self._imap.create(_quoted(folder))  # "already exists" is fine
        for start in range(0, len(uids), FETCH_CHUNK):
            chunk = b",".join(uids[start : start + FETCH_CHUNK]).decode()
            if self.can_move:
                self._ok(self._imap.uid("MOVE", chunk, _quoted(folder)), f"move messages to {folder!r}")
            else:
                self._ok(self._imap.uid("COPY", chunk, _quoted(folder)), f"copy messages to {folder!r}")
                self._ok(self._imap.uid("STORE", chunk, "+FLAGS.SILENT", r"(\Deleted)"), "mark moved messages")
        if not self.can_move:
            self._ok(self._imap.expunge(), "expunge moved messages")

    @property
    def _imap(self) -> imaplib.IMAP4:
        assert self.imap is not None, "use Mailbox as a context manager"
        return self.imap

    def _connect(self) -> imaplib.IMAP4:
        settings = self.settings
        context = ssl.create_default_context(cafile=settings.ca_file or None)
        if settings.security == "ssl":
            return imaplib.IMAP4_SSL(settings.host, settings.port, ssl_context=context, timeout=settings.timeout)
        imap = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
        try:
            self._ok(imap.starttls(ssl_context=context), "start TLS")
        except (imaplib.IMAP4.error, OSError):
            with contextlib.suppress(OSError):  # a failed handshake leaves the socket closed: keep its error
                imap.shutdown()
            raise
        return imap

    def _ok(self, answer: tuple[str, list[Any]], doing: str) -> list[Any]:
        status, data = answer
        if status != "OK":
            detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise InboxError(f"the IMAP server would not {doing}: {detail[:200]}", where=self.where)
        return data


def _quoted(folder: str) -> str:
    if any(c in folder for c in '"\\\r\n'):
        raise InboxError(f"folder name {folder!r} has characters IMAP cannot take here", where="inbox.folder")
    return f'"{folder}"'


def _clean(exc: Exception, password: str) -> str:
    text = " ".join(str(exc).split())[:200]
    return text.replace(password, "[secret]") if password else text


__all__ = ["InboxError", "Mailbox"]
