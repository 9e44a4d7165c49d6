"""``broadsheet inbox``: read the bounce mailbox over IMAP, apply what the reports say, move them away."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from broadsheet.core.compose.verp import ReturnPaths
from broadsheet.core.config import Config
from broadsheet.core.events import MailEvent
from broadsheet.core.tokens import token_secrets
from broadsheet.delivery.inbox.imap import InboxError, Mailbox
from broadsheet.delivery.inbox.reports import Refused, VerpReader, read_report

from .matching import journal_lookup, row_email_lookup
from .policy import Applied, apply

if TYPE_CHECKING:
    from broadsheet.data.store import Store

__all__ = ["InboxError", "InboxResult", "Refused", "read_inbox", "read_report"]


@dataclass
class InboxResult:
    read: int = 0
    processed: int = 0  # recognised and moved to the processed folder
    unrecognised: int = 0  # left where they were
    refused: Counter[str] = field(default_factory=Counter)  # reason -> reports not trusted, left where they were
    applied: Applied = field(default_factory=Applied)


def read_inbox(config: Config, store: Store) -> InboxResult:
    """Every message in ``[inbox] folder``: recognised ones applied to ``store`` (each event once), then
    moved to ``processed_folder``; the others, and reports refused as possibly forged, left and counted.
    Events are recorded before the move, so a crash in between only means the mail is read again next
    time, and changes nothing then."""
    result = InboxResult()
    campaigns = journal_lookup(config)
    verp = verp_reader(config)
    with Mailbox(config.inbox) as box:
        uids = box.uids()
        for start in range(0, len(uids), 500):
            events: list[MailEvent] = []
            processed: list[bytes] = []
            for uid, raw in box.fetch(uids[start : start + 500]):
                result.read += 1
                found = read_report(
                    raw,
                    unsubscribe_address=config.unsubscribe_mailto,
                    verp=verp,
                    feedback_senders=config.inbox.feedback_senders,
                    authserv_id=config.inbox.authserv_id,
                )
                if found is None:
                    result.unrecognised += 1
                    continue
                if isinstance(found, Refused):
                    result.refused[found.reason] += 1
                    continue
                events += found
                processed.append(uid)
            result.applied.add(apply(events, store, config.bounces, source="inbox", campaigns=campaigns))
            box.move(processed, config.inbox.processed_folder)
            result.processed += len(processed)
    return result


def verp_reader(config: Config) -> VerpReader | None:
    """address -> recipient for ``[smtp] return_path`` VERP addresses, their tokens resolved through the
    send journal (None when VERP is off)."""
    if not config.smtp.return_path:
        return None
    secrets = token_secrets()
    paths = ReturnPaths(config, config.from_address, token_secret=secrets[0])
    email_of = row_email_lookup(config)
    return lambda address: paths.recipient_of(address, secrets, email_of)
