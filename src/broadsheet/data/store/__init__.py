"""The subscriber store: who is subscribed, with what, and everything that happened to them (SQLite, or
PostgreSQL with ``[database] url``).

Imports config, errors and audience only. See docs/architecture/data.md for the schema.
"""

from .group import GroupWriter
from .mailboxes import MailboxLimit
from .schema import STATUSES, SUPPRESSING
from .store import Event, Store, StoredSubscriber, Suppression, store_is_set_up, store_location, store_path, utc_now

__all__ = [
    "STATUSES",
    "SUPPRESSING",
    "Event",
    "GroupWriter",
    "MailboxLimit",
    "Store",
    "StoredSubscriber",
    "Suppression",
    "store_is_set_up",
    "store_location",
    "store_path",
    "utc_now",
]
