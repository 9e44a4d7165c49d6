"""The report's data from the subscriber store and the send journal, each read when it exists and
never created; sums and buckets come from SQL (``data.store.history``, ``data.journal.history``)."""

from __future__ import annotations

import datetime as dt

from broadsheet.core.config import Config
from broadsheet.data.journal import history as journal_history
from broadsheet.data.journal.engines import journal_exists, open_journal_for
from broadsheet.data.journal.journal import Journal
from broadsheet.data.store import STATUSES, Store
from broadsheet.data.store import history as store_history
from broadsheet.data.store.clicks import clicks_per_campaign

from ..campaign.caps import DAY, WARMUP_DAYS, cap_for_day, day_start, warmup_start
from .model import SUBSCRIBER_SERIES, DayCounts, IssueCounts, RatePoint, ReportData, SendRateCurve, WarmupDay

MAX_DAYS = 400  # the warm-up chart shows at most the last this many days


def gather(config: Config, *, now: float) -> ReportData:
    subscribers, days, per_campaign, clicks = None, None, {}, None
    if Store.exists_for_config(config):
        with Store.for_config(config) as store:
            subscribers = {status: store.count(status) for status in STATUSES}
            days = _days(store_history.events_per_day(store))
            per_campaign = store_history.events_per_campaign(store)
            counted = clicks_per_campaign(store)  # readers' clicks; none kept while counting is off
            clicks = {slug: c.readers for slug, c in counted.items()} if counted or config.tracking.clicks else None
    issues, rate, warmup, note = None, None, None, ""
    if journal_exists(config):
        with open_journal_for(config, read_only=True) as journal:
            issues = tuple(
                _issue(sent, per_campaign.get(sent.slug, {}), clicks)
                for sent in journal_history.sent_per_issue(journal)
            )
            rate = _curve(journal_history.last_send_rate(journal))
            warmup, note = _warmup(config, journal, now)
    return ReportData(
        name=config.name,
        subscribers=subscribers,
        days=days,
        issues=issues,
        clicks_known=clicks is not None,
        send_rate=rate,
        warmup=warmup,
        warmup_note=note,
    )


def _days(rows: list[tuple[str, str, int]]) -> tuple[DayCounts, ...]:
    by_day: dict[str, list[int]] = {}
    for day, series, count in rows:
        by_day.setdefault(day, [0] * len(SUBSCRIBER_SERIES))[SUBSCRIBER_SERIES.index(series)] = count
    return tuple(DayCounts(day, tuple(counts)) for day, counts in by_day.items())


def _issue(sent: journal_history.IssueSent, kinds: dict[str, int], clicks: dict[str, int] | None) -> IssueCounts:
    return IssueCounts(
        slug=sent.slug,
        subject=sent.subject,
        sent=sent.sent,
        hard=kinds.get("bounced_hard", 0),
        soft=kinds.get("bounced_soft", 0),
        complained=kinds.get("complained", 0),
        unsubscribed=kinds.get("unsubscribed", 0),
        clicks=None if clicks is None else clicks.get(sent.slug, 0),
    )


def _curve(rate: journal_history.SendRate | None) -> SendRateCurve | None:
    if rate is None:
        return None
    points = tuple(RatePoint(bucket * rate.seconds / 60, count * 60 / rate.seconds) for bucket, count in rate.counts)
    return SendRateCurve(rate.slug, rate.seconds, points)


def _warmup(config: Config, journal: Journal, now: float) -> tuple[tuple[WarmupDay, ...] | None, str]:
    """Each day from the first sent (or the warm-up's day 1) to the last sent (or the warm-up's last day),
    with what went out and the day's cap; None when nothing was sent and no warm-up is set."""
    sent = dict(journal_history.sent_per_day(journal))
    start = warmup_start(config, journal, day_start(now))
    ends = [*sent]
    if start is not None:
        ends += [start, start + (WARMUP_DAYS - 1) * DAY]
    if not ends:
        return None, ""
    first, last = min(ends), max(ends)
    first = max(first, last - (MAX_DAYS - 1) * DAY)
    days = []
    for number in range(int((last - first) // DAY) + 1):
        day = first + number * DAY
        cap, _ = cap_for_day(config, day, start)
        days.append(WarmupDay(_date(day), sent.get(day, 0), cap))
    return tuple(days), _note(config, start)


def _note(config: Config, start: float | None) -> str:
    parts = []
    if start is not None:
        parts.append(f"warm-up of {WARMUP_DAYS} days from {_date(start)}")
    if config.send.daily_limit:
        parts.append(f"daily limit {config.send.daily_limit:,}")
    return ", ".join(parts) or "none (send.warmup and send.daily_limit are off)"


def _date(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d")
