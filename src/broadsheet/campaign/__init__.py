"""Campaign: recipients × transport → the SQLite journal (batching, workers, rate limit, retries, resume)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..audience import Subscriber
from .journal import CampaignRecord, Journal, Outcome, Row, journal_path
from .recipients import campaign_fingerprint, journal_rows, subscriber_from_row
from .runner import CampaignRunner, RunResult, Settings


@dataclass(frozen=True)
class Prepared:
    """A campaign ready to run: its record, and what getting it ready did."""

    record: CampaignRecord
    loaded: int | None  # recipients (re)loaded from the list; None when the list had not changed
    setup_seconds: float
    recovered: int  # rows a crashed send left in flight, now unknown


def prepare_campaign(
    journal: Journal,
    *,
    slug: str,
    transport: str,
    issue_dir: str,
    fingerprint: str,
    subscribers: Iterable[Subscriber],
) -> Prepared:
    """Find or create the campaign, load the list when it is new or changed, recover a crash's rows."""
    record, changed = journal.start_campaign(slug, transport, issue_dir, fingerprint)
    started = time.perf_counter()
    loaded = None
    if changed:
        loaded = journal.load_recipients(record, fingerprint, journal_rows(subscribers))
        record = journal.current(slug, transport)
    seconds = time.perf_counter() - started
    recovered = journal.recover_in_flight(record)
    return Prepared(record, loaded, seconds, recovered)


def issue_key(issue_dir: Path, root: Path) -> str:
    """The issue folder as the journal names it: relative to the project root when inside it."""
    resolved = Path(issue_dir).resolve()
    try:
        return resolved.relative_to(root).as_posix()
    except ValueError:
        return resolved.as_posix()


__all__ = [
    "CampaignRecord", "CampaignRunner", "Journal", "Outcome", "Prepared", "Row", "RunResult", "Settings",
    "campaign_fingerprint", "issue_key", "journal_path", "prepare_campaign", "subscriber_from_row",
]
