"""Which campaign an event belongs to: the send journal keeps each recipient's message id."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from broadsheet.core.errors import CampaignError
from broadsheet.data.journal.journal import Journal, journal_path

from .policy import CampaignLookup

_open = threading.local()  # per thread: project root -> its Journal, kept open (a webhook server's threads live long)


def journal_lookup(root: Path) -> CampaignLookup | None:
    """A lookup through the project's send journal, or None when nothing was ever sent from here.

    The journal is opened once per thread and kept: opening it costs more than the look-ups."""
    journal = _journal(root)
    if journal is None:
        return None
    return lambda provider_id, message_id, email: journal.campaign_of((provider_id, message_id), email)


def row_email_lookup(root: Path) -> Callable[[int], str | None] | None:
    """journal row id -> its address (for VERP bounce tokens), or None when nothing was ever sent."""
    journal = _journal(root)
    return None if journal is None else journal.email_of_row


def _journal(root: Path) -> Journal | None:
    journals: dict[Path, Journal] = _open.__dict__.setdefault("journals", {})
    journal = journals.get(root)
    if journal is None and journal_path(root).is_file():
        try:
            journal = journals[root] = Journal.for_project(root)
        except CampaignError:
            return None
    return journal
