"""Whom a send mails from a store in PostgreSQL: the same people, with the same data, as ``StoreList`` selects
from a SQLite store, streamed from a server-side cursor a page at a time into the SQLite journal.

SQLite's selection attaches the store file to the journal; a PostgreSQL store cannot be attached, so the
rows cross in pages (only the columns a send keeps), the suppression file asked a page at a time too.
"""

from __future__ import annotations

import collections
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from broadsheet.core.audience import JournalLoader, RowProblem, Subscriber, first_word, list_fingerprint
from broadsheet.core.audience.addresses import AddressChecker

from ..db import postgres
from ..db.ledger import Ledger
from ..subscriber_list import check_segments, suppression_keys
from .store import PAGE, Store

STREAM_PAGE = 5 * PAGE  # rows per page from the server-side cursor
SKIPPED_STATUSES = ("unconfirmed", "unsubscribed", "bounced", "complained")


def display_name(url: str) -> str:
    """The store as a send's summary names it: its database's name (a URL holds no password)."""
    database = url.split("?", 1)[0].rsplit("/", 1)[-1]
    return f"{database} (PostgreSQL store)" if database else "the PostgreSQL store"


class PostgresStoreList:
    """The subscribed subscribers of the store at ``url``, less segments and the suppression file; a
    segment's tag counts only for those who have not left it as a topic (as ``StoreList``)."""

    def __init__(self, url: str, *, segments: Sequence[str] = (), suppressions: Path | None = None):
        self.url = url
        self.path = Path(display_name(url))  # what a send names its audience by
        self.segments = frozenset(tag.casefold() for tag in segments)
        self.suppressions = suppressions
        self.problems: list[RowProblem] = []
        self.skipped: collections.Counter[str] = collections.Counter()

    def load_into(self, loader: JournalLoader) -> int:
        """The selection into a journal, a page at a time (the journal sorts them into address order)."""
        return loader.chunks(self.chunks())

    def __iter__(self) -> Iterator[Subscriber]:
        """The subscribers a send mails, in the order they joined."""
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[Subscriber]]:
        """Pages of the subscribers a send mails, in the order they joined; ``skipped`` counted at the end."""
        self.skipped = collections.Counter()
        self.check_segments()
        # this generator's own store, no lock: a journal's load reads it in a second thread (``bulk.read_ahead``)
        with Ledger() as ledger, Store(self.url) as store:
            ledger.add_suppressed(suppression_keys(self.suppressions, AddressChecker()))
            for page in postgres.stream(store.db, self._query(), self._segments(), STREAM_PAGE):
                if chunk := self._kept(page, ledger):
                    yield chunk
            counts = dict(store.db.execute("SELECT status, count(*) FROM subscribers GROUP BY status").fetchall())
        for status in SKIPPED_STATUSES:
            if counts.get(status):
                self.skipped[status] += counts[status]

    def _kept(self, page: list[tuple[Any, ...]], ledger: Ledger) -> list[Subscriber]:
        """The page's subscribers a send mails; the others counted in ``skipped``."""
        suppressed = ledger.suppressed([row[0] for row in page]) if ledger.has_suppressed else set()
        kept = []
        for key, email, name, fields_json, tags, in_segment in page:
            if key in suppressed:
                self.skipped["suppressed"] += 1
            elif not in_segment:
                self.skipped["not in segment"] += 1
            else:
                fields: dict[str, str] = json.loads(fields_json)
                first_name = fields.pop("first_name", "") or first_word(name)
                kept.append(Subscriber(email, name, first_name, tuple(tags), fields))
        return kept

    def _query(self) -> str:
        """SQL: (key, email, name, fields, tags in their keys' byte order, in a segment) of every subscribed."""
        return (
            "SELECT s.email_key, s.email, s.name, s.fields,"
            ' ARRAY(SELECT t.tag FROM tags t WHERE t.subscriber = s.id ORDER BY t.tag_key COLLATE "C"),'
            f" {self._in_segment()} FROM subscribers s WHERE s.status = 'subscribed'{self._also()} ORDER BY s.id"
        )

    def _also(self) -> str:
        """SQL: more conditions on ``s`` (`` AND …``), for a kind of list that narrows this one."""
        return ""

    def _in_segment(self) -> str:
        """SQL: ``s`` has one of the segments' tags and has not left that topic (true without segments)."""
        if not self.segments:
            return "true"
        marks = ", ".join(f":segment{n}" for n in range(len(self.segments)))
        return (
            f"EXISTS (SELECT 1 FROM tags t WHERE t.subscriber = s.id AND t.tag_key IN ({marks})"
            " AND NOT EXISTS (SELECT 1 FROM topic_choices c WHERE c.subscriber = s.id AND c.topic_key = t.tag_key))"
        )

    def _segments(self) -> dict[str, str]:
        return {f"segment{n}": tag for n, tag in enumerate(sorted(self.segments))}

    def check_segments(self) -> None:
        """AudienceError when a segment is a tag no subscriber of the store has (a typo would mail no one)."""
        if not self.segments:
            return
        with Store(self.url) as store, store._lock:
            found = "SELECT 1 FROM tags WHERE tag_key = ? LIMIT 1"
            if all(store.db.execute(found, (tag,)).fetchone() for tag in self.segments):
                return
            tags = [tag for (tag,) in store.db.execute("SELECT min(tag) FROM tags GROUP BY tag_key")]
        check_segments(self.segments, tags, where=self.url)

    def fingerprint(self) -> str:
        """Changes whenever who is subscribed (or with what) changes, or the suppression file or segments do."""
        with Store(self.url) as store:
            revision = store.revision()
        suppressions = list_fingerprint(self.suppressions) if self.suppressions is not None else "-"
        text = f"store|{revision}|{suppressions}|{','.join(sorted(self.segments))}"
        return hashlib.sha256(text.encode()).hexdigest()
