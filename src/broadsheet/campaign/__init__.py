"""Campaign: recipients × transport → the SQLite journal (batching, workers, rate limit, retries, resume)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..audience import ChunkedList, Subscriber, SubscriberList
from ..providers import delivers
from ..store.recipients import CheckedList, StoreList
from .journal import CampaignRecord, Journal, Outcome, RecentSend, Row, journal_path
from .parts import load_in_parts
from .recipients import campaign_fingerprint, journal_chunks, journal_rows, subscriber_from_row
from .runner import CampaignRunner, RunResult, Settings


@dataclass(frozen=True)
class Prepared:
    """A campaign ready to run: its record, and what getting it ready did."""

    record: CampaignRecord
    loaded: int | None  # recipients (re)loaded from the list; None when the list had not changed
    setup_seconds: float
    recovered: int  # rows a crashed send left in flight, now unknown
    replayed: int = 0  # outcomes an earlier send could not write (journal locked), written now


def prepare_campaign(
    journal: Journal,
    *,
    slug: str,
    transport: str,
    issue_dir: str,
    fingerprint: str,
    subscribers: Iterable[Subscriber],
    issue_id: str | None = None,
    subject: str = "",
    resend_all: bool = False,
) -> Prepared:
    """Find or create the campaign, load the list when it is new or changed, recover a crash's rows.

    The campaign is the issue's (``campaign_key``): the same after a rename, a move or content edits
    when the issue has an ``id``. Call with the send lock held. A sent-mark of this issue that the journal
    does not account for (a lost journal) stops it, unless ``resend_all``.
    """
    key = campaign_key(issue_id, slug)
    if delivers(transport) and not resend_all:
        journal.lost_send(key, slug)
    replayed = journal.replay_pending()
    record, changed = journal.start_campaign(
        key, transport, issue_dir, fingerprint, slug=slug, issue_id=issue_id or "", subject=subject
    )
    started = time.perf_counter()
    loaded = None
    if changed:
        loaded = _load(journal, record, fingerprint, subscribers)
        record = journal.current(key, transport)
    seconds = time.perf_counter() - started
    recovered = journal.recover_in_flight(record)
    return Prepared(record, loaded, seconds, recovered, replayed)


def _load(journal: Journal, record: CampaignRecord, fingerprint: str, subscribers: Iterable[Subscriber]) -> int:
    """The list into the journal. A list read in chunks leaves the repeats of an address to the journal's
    UNIQUE (campaign, email), which keeps the first (cheaper than the list's own look-up of every
    address); the repeats are told back to the list, which counts them as it would have."""
    if isinstance(subscribers, StoreList):  # selected in SQL: no Python per subscriber but the first-name rule
        with subscribers.selection() as selection:
            return journal.load_selected(record, fingerprint, selection)
    if not isinstance(subscribers, ChunkedList):
        return journal.load_recipients(record, fingerprint, journal_rows(subscribers))
    deduplicate, subscribers.deduplicate = subscribers.deduplicate, False
    try:
        if isinstance(subscribers, (SubscriberList, CheckedList)):  # a long one is read by one process per core
            loaded = load_in_parts(journal, record, fingerprint, subscribers)
            if loaded is not None:
                return loaded
        offered = _Counted(subscribers.chunks())
        loaded = journal.load_recipient_chunks(record, fingerprint, journal_chunks(offered))
    finally:
        subscribers.deduplicate = deduplicate
    subscribers.count_duplicates(offered.count - loaded)
    return loaded


class _Counted:
    """Chunks passed through, their items counted."""

    def __init__(self, chunks: Iterable[list[Subscriber]]):
        self.chunks = chunks
        self.count = 0

    def __iter__(self) -> Iterator[list[Subscriber]]:
        for chunk in self.chunks:
            self.count += len(chunk)
            yield chunk


def campaign_key(issue_id: str | None, slug: str) -> str:
    """A campaign's identity: the issue's front-matter id; for an issue without one, its folder name
    (as every campaign was keyed before ids existed, so those campaigns resume)."""
    return issue_id or slug


def issue_key(issue_dir: Path, root: Path) -> str:
    """The issue folder as the journal names it: relative to the project root when inside it."""
    resolved = Path(issue_dir).resolve()
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return resolved.as_posix()


__all__ = [
    "CampaignRecord",
    "CampaignRunner",
    "Journal",
    "Outcome",
    "Prepared",
    "RecentSend",
    "Row",
    "RunResult",
    "Settings",
    "campaign_fingerprint",
    "campaign_key",
    "issue_key",
    "journal_path",
    "prepare_campaign",
    "subscriber_from_row",
]
