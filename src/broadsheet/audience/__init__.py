"""Audience: the subscriber CSV -> a stream of valid, filtered, deduplicated, suppressed Subscribers."""

from .csvfile import list_fingerprint
from .model import RowProblem, Subscriber
from .subscriber_list import SubscriberList

__all__ = ["RowProblem", "Subscriber", "SubscriberList", "list_fingerprint"]
