"""Audience: the subscriber CSV -> a stream of valid, filtered, deduplicated, suppressed Subscribers."""

from .csvfile import list_fingerprint
from .model import ChunkedList, ListRow, RowProblem, Subscriber
from .subscriber_list import SubscriberList, list_chunks, read_suppressions

__all__ = [
    "ChunkedList",
    "ListRow",
    "RowProblem",
    "Subscriber",
    "SubscriberList",
    "list_fingerprint",
    "list_chunks",
    "read_suppressions",
]
