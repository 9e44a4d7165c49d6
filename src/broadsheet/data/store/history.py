"""The store's history for the report: events counted per day and per campaign, in SQL (one scan of the
events table, never a row per event in Python). Reads only."""

from __future__ import annotations

from .store import Store

# What the report counts as joining, leaving, bouncing and complaining (``schema.STATUS_EVENTS``).
JOINED = ("added", "imported", "confirmed", "subscribed")
LEFT = ("unsubscribed",)
BOUNCED = ("bounced_hard",)
COMPLAINED = ("complained",)
SERIES = {"joined": JOINED, "left": LEFT, "bounced": BOUNCED, "complained": COMPLAINED}


def events_per_day(store: Store) -> list[tuple[str, str, int]]:
    """(day ``YYYY-MM-DD`` in UTC, series of ``SERIES``, events) for every day with one, oldest first."""
    kinds = {kind: name for name, group in SERIES.items() for kind in group}
    marks = ", ".join("?" * len(kinds))
    per_kind = store.db.execute(
        f"SELECT substr(at, 1, 10) AS day, kind, count(*) FROM events WHERE kind IN ({marks})"
        " GROUP BY day, kind ORDER BY day, kind",
        tuple(kinds),
    )
    per_series: dict[tuple[str, str], int] = {}
    for day, kind, count in per_kind:  # a row per day and kind: a few per day, whatever the events
        key = (day, kinds[kind])
        per_series[key] = per_series.get(key, 0) + count
    return [(day, series, count) for (day, series), count in per_series.items()]


def events_per_campaign(store: Store) -> dict[str, dict[str, int]]:
    """campaign slug -> kind -> people with an event of that kind caused by it (each person once)."""
    counts: dict[str, dict[str, int]] = {}
    for campaign, kind, count in store.db.execute(
        "SELECT campaign, kind, count(DISTINCT subscriber) FROM events WHERE campaign <> '' GROUP BY campaign, kind"
    ):
        counts.setdefault(campaign, {})[kind] = count
    return counts
