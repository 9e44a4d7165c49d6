"""What the report shows, as typed values: gathered from the store and the journal (``gather``), drawn by
``charts`` and laid out by ``page``."""

from __future__ import annotations

from dataclasses import dataclass

SUBSCRIBER_SERIES = ("joined", "left", "bounced", "complained")
ISSUE_SERIES = ("hard bounces", "soft bounces", "complaints", "unsubscribes", "clicks")


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One UTC day's events, per series of ``SUBSCRIBER_SERIES``."""

    day: str  # YYYY-MM-DD
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class IssueCounts:
    """One issue: messages sent, and the people who bounced, complained, left or clicked after it."""

    slug: str
    subject: str
    sent: int
    hard: int
    soft: int
    complained: int
    unsubscribed: int
    clicks: int | None  # None: no click data

    def counts(self) -> tuple[int | None, ...]:
        """The numbers of ``ISSUE_SERIES``, in its order."""
        return (self.hard, self.soft, self.complained, self.unsubscribed, self.clicks)

    def rates(self) -> tuple[float | None, ...]:
        """Each of ``counts`` as a share of the messages sent (0 when none were; None without click data)."""
        return tuple(None if count is None else count / self.sent if self.sent else 0.0 for count in self.counts())


@dataclass(frozen=True, slots=True)
class RatePoint:
    minutes: float  # since the campaign's first message
    per_minute: float


@dataclass(frozen=True, slots=True)
class SendRateCurve:
    """The last campaign's messages per minute, over buckets of ``seconds``."""

    slug: str
    seconds: int
    points: tuple[RatePoint, ...]


@dataclass(frozen=True, slots=True)
class WarmupDay:
    day: str  # YYYY-MM-DD
    sent: int
    cap: int | None  # the day's cap (warm-up or daily limit); None: nothing capped it


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything on the page; a part is None when its source (store or journal) does not exist."""

    name: str
    subscribers: dict[str, int] | None  # status -> addresses now
    days: tuple[DayCounts, ...] | None
    issues: tuple[IssueCounts, ...] | None
    clicks_known: bool
    send_rate: SendRateCurve | None  # None: no journal, or nothing sent
    warmup: tuple[WarmupDay, ...] | None
    warmup_note: str  # what capped the days ("warm-up from 2026-12-01", "daily limit 5,000", "no cap")

    @property
    def empty(self) -> bool:
        return self.subscribers is None and self.issues is None
