"""Which campaign an event belongs to: the send journal keeps each recipient's message id."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from broadsheet.core.config import Config
from broadsheet.core.errors import CampaignError
from broadsheet.data.journal.engines import journal_exists, open_journal_for
from broadsheet.data.journal.journal import Journal

from .policy import CampaignLookup

_open = threading.local()  # per thread: project root -> its Journal, kept open (a webhook server's threads live long)


def journal_lookup(config: Config) -> CampaignLookup | None:
    """A lookup through the project's send journal, or None when nothing was ever sent from here.

    The journal is opened once per thread and kept: opening it costs more than the look-ups."""
    journal = _journal(config)
    if journal is None:
        return None
    return lambda provider_id, message_id, email: journal.campaign_of((provider_id, message_id), email)


def row_email_lookup(config: Config) -> Callable[[int], str | None] | None:
    """journal row id -> its address (for VERP bounce tokens), or None when nothing was ever sent."""
    journal = _journal(config)
    return None if journal is None else journal.email_of_row


def _journal(config: Config) -> Journal | None:
    journals: dict[tuple[Path, str], Journal] = _open.__dict__.setdefault("journals", {})
    where = (config.root, config.database.url)
    journal = journals.get(where)
    if journal is None:
        try:
            if journal_exists(config):
                journal = journals[where] = open_journal_for(config)
        except CampaignError:
            return None
    return journal
