"""Audience: the subscriber CSV -> a stream of valid, filtered, deduplicated, suppressed Subscribers."""

from broadsheet.data.subscriber_list import SubscriberList, list_chunks, read_suppressions

from .csvfile import list_fingerprint
from .model import JournalLoader, ListRow, LoadableList, RowProblem, Subscriber, first_word

__all__ = [
    "JournalLoader",
    "ListRow",
    "LoadableList",
    "RowProblem",
    "Subscriber",
    "SubscriberList",
    "list_fingerprint",
    "first_word",
    "list_chunks",
    "read_suppressions",
]
