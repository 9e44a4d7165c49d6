"""Which campaign an event belongs to: the send journal keeps each recipient's message id."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..campaign.journal import Journal, journal_path
from ..errors import CampaignError
from .policy import CampaignLookup


@contextmanager
def journal_lookup(root: Path) -> Iterator[CampaignLookup | None]:
    """A lookup through the project's send journal, or None when nothing was ever sent from here."""
    if not journal_path(root).is_file():
        yield None
        return
    try:
        journal = Journal.for_project(root)
    except CampaignError:
        yield None
        return
    try:
        yield lambda provider_id, message_id, email: journal.campaign_of((provider_id, message_id), email)
    finally:
        journal.close()
