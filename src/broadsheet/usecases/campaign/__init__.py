"""Campaign: recipients × transport → the SQLite journal (batching, workers, rate limit, retries, resume)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from broadsheet.core.audience import LoadableList, Subscriber, SubscriberColumns
from broadsheet.core.audience.model import Selection
from broadsheet.core.providers import delivers
from broadsheet.data.journal.engines import journal_exists, open_journal_for
from broadsheet.data.journal.journal import (
    CampaignRecord,
    Journal,
    Outcome,
    RecentSend,
    Row,
    journal_path,
)

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
    subscribers: LoadableList | Iterable[Subscriber],
    issue_id: str | None = None,
    subject: str = "",
    resend_all: bool = False,
    shared: bool = False,
) -> Prepared:
    """Find or create the campaign, load the list when it is new or changed, recover a crash's rows.

    The campaign is the issue's (``campaign_key``): the same after a rename, a move or content edits
    when the issue has an ``id``. Call with the send lock held. A sent-mark of this issue that the journal
    does not account for (a lost journal) stops it, unless ``resend_all``. ``shared``: other workers may be
    sending this campaign (``send --worker``): only rows whose lease ran out are recovered.
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
    recovered = journal.recover_in_flight(record, everyone=not shared)
    return Prepared(record, loaded, seconds, recovered, replayed)


def _load(
    journal: Journal, record: CampaignRecord, fingerprint: str, subscribers: LoadableList | Iterable[Subscriber]
) -> int:
    """The list into the journal: a list kind loads itself (``LoadableList``); any other iterable of
    Subscribers is loaded as it comes."""
    loader = _Loader(journal, record, fingerprint)
    if isinstance(subscribers, LoadableList):
        return subscribers.load_into(loader)
    return journal.load_recipients(record, fingerprint, journal_rows(subscribers))


@dataclass(frozen=True)
class _Loader:
    """The journal bound to one campaign and list fingerprint: what a list loads itself into."""

    journal: Journal
    record: CampaignRecord
    fingerprint: str

    def chunks(self, chunks: Iterable[list[Subscriber] | SubscriberColumns]) -> int:
        return self.journal.load_recipient_chunks(self.record, self.fingerprint, journal_chunks(chunks))

    def selected(self, selection: Selection) -> int:
        return self.journal.load_selected(self.record, self.fingerprint, selection)


def campaign_key(issue_id: str | None, slug: str) -> str:
    """A campaign's identity: the issue's front-matter id, else its folder name (so a campaign of an
    issue without an id still resumes)."""
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
    "journal_exists",
    "journal_path",
    "open_journal_for",
    "prepare_campaign",
    "subscriber_from_row",
]
