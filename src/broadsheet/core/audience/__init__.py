"""Audience: the subscriber CSV -> rows, checked addresses and Subscribers (the list pass with its SQLite
ledger is data.subscriber_list)."""

from .csvfile import list_fingerprint
from .model import JournalLoader, ListRow, LoadableList, RowProblem, Subscriber, SubscriberColumns, first_word

__all__ = [
    "JournalLoader",
    "ListRow",
    "LoadableList",
    "RowProblem",
    "Subscriber",
    "SubscriberColumns",
    "list_fingerprint",
    "first_word",
]
