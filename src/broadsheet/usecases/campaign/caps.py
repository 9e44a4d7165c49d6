"""The daily cap: ``[send] daily_limit`` and the warm-up of a new sending domain.

Days are calendar days in UTC (00:00 to 24:00 UTC), whatever the machine's zone: a cap resets at
00:00 UTC. What went out on a day is counted from the journal (every campaign over a real transport;
outbox campaigns mail no one and are neither counted nor capped). The cap of a day is the smaller of
``daily_limit`` (0: none) and, with ``warmup``, the warm-up table's value for that day of the warm-up.

The warm-up starts small and grows by a fifth each day for six weeks (42 days), as mailbox providers
expect of a domain they do not know yet: 200 messages on day 1, about 1,000 on day 10, 7,600 on day
21, 170,000 on day 38; from day 43 on there is no warm-up cap (``WARMUP``, ``warmup_cap``). Day 1 is
``[send] warmup_start`` (YYYY-MM-DD) or, when that is empty, the day the journal first sent anything.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from broadsheet.core.config import Config
from broadsheet.core.errors import ConfigError
from broadsheet.core.providers import delivers
from broadsheet.data.journal.journal import Journal

DAY = 86400
WARMUP_DAYS = 42
WARMUP_FIRST_DAY = 200
WARMUP_GROWTH = 1.2


def _two_figures(value: float) -> int:
    """``value`` rounded down to two significant figures (1,234 → 1,200): a table a person can read."""
    scale = 10 ** max(0, int(math.log10(value)) - 1)
    return int(value // scale * scale)


WARMUP = tuple(_two_figures(WARMUP_FIRST_DAY * WARMUP_GROWTH**day) for day in range(WARMUP_DAYS))


def warmup_cap(day: int) -> int | None:
    """The warm-up's cap on its ``day`` (1 = the first day); None once the warm-up is over."""
    return WARMUP[max(day, 1) - 1] if day <= WARMUP_DAYS else None


@dataclass(frozen=True)
class DailyCap:
    """Today's cap and how much of it is used (Unix times; days in UTC)."""

    limit: int  # messages allowed today
    sent_today: int
    resets_at: float  # the next 00:00 UTC
    reason: str  # "daily limit" or "warm-up day N"

    @property
    def left(self) -> int:
        return max(0, self.limit - self.sent_today)


def day_start(now: float) -> float:
    """00:00 UTC of the day holding ``now``."""
    return now - now % DAY


def cap_for_day(config: Config, day: float, start: float | None) -> tuple[int | None, str]:
    """The cap of the UTC day starting at ``day`` and what sets it; (None, "") when nothing caps it.
    ``start``: day 1 of the warm-up (``warmup_start``), None without a warm-up."""
    send = config.send
    caps: list[tuple[int, str]] = []
    if send.daily_limit:
        caps.append((send.daily_limit, "daily limit"))
    if send.warmup and start is not None:
        number = int((day - day_start(start)) // DAY) + 1
        cap = warmup_cap(number)
        if cap is not None:
            caps.append((cap, f"warm-up day {number} of {WARMUP_DAYS}"))
    if not caps:
        return None, ""
    return min(caps)


def daily_cap(config: Config, journal: Journal, transport: str, now: float) -> DailyCap | None:
    """Today's cap for a send over ``transport``; None when nothing caps it (no limit, or the outbox)."""
    check_caps(config)
    if not delivers(transport):
        return None
    today = day_start(now)
    limit, reason = cap_for_day(config, today, warmup_start(config, journal, today))
    if limit is None:
        return None
    return DailyCap(limit, journal.sent_between(today, today + DAY), today + DAY, reason)


def warmup_start(config: Config, journal: Journal, today: float) -> float | None:
    """Day 1 of the warm-up: ``warmup_start``, else the day of the journal's first message, else today;
    None without a warm-up."""
    if not config.send.warmup:
        return None
    if config.send.warmup_start:
        start = dt.datetime.combine(_start_date(config), dt.time(), dt.UTC)
        return start.timestamp()
    first = journal.first_sent()
    return day_start(first) if first is not None else today


def days_to_send(config: Config, journal: Journal, cap: DailyCap, count: int) -> list[tuple[float, int]]:
    """How ``count`` messages would go if nothing else is sent: (day start, messages) per day, today
    first (when any of today's cap is left). At most 400 days are listed."""
    plan: list[tuple[float, int]] = []
    if cap.left:
        plan.append((day_start(cap.resets_at - DAY), min(cap.left, count)))
        count -= plan[-1][1]
    day = cap.resets_at
    start = warmup_start(config, journal, day - DAY)
    while count > 0 and len(plan) < 400:
        limit, _ = cap_for_day(config, day, start)
        share = count if limit is None else min(limit, count)
        plan.append((day, share))
        count -= share
        day += DAY
    return plan


def check_caps(config: Config) -> None:
    """ConfigError for a negative daily_limit or a warmup_start that is not a date."""
    if config.send.daily_limit < 0:
        raise ConfigError(
            "'daily_limit' must be 0 (no limit) or more",
            where=config.where("send.daily_limit"),
            fix="write daily_limit = 5000, or leave it out",
        )
    if config.send.warmup_start:
        _start_date(config)


def _start_date(config: Config) -> dt.date:
    try:
        return dt.date.fromisoformat(config.send.warmup_start)
    except ValueError:
        raise ConfigError(
            f"'warmup_start' is not a date: {config.send.warmup_start!r}",
            where=config.where("send.warmup_start"),
            fix='write warmup_start = "2026-12-01" (the first day the new domain sends), or leave it out',
        ) from None


def utc_text(stamp: float) -> str:
    """``2026-12-02 00:00 UTC``."""
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
