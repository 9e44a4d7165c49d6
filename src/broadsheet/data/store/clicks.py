"""Counted clicks in the store: written in batches (serve buffers them), read per campaign and per link.

A click names a campaign, a link (its number in the issue and its address), when, whether a link scanner
made it, and a subscriber only when clicks are counted per subscriber (``[tracking] per_subscriber``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .store import Store


@dataclass(frozen=True, slots=True)
class Click:
    """One click as serve saw it; ``email``: the reader, "" when the token names none."""

    campaign: str
    link: int
    url: str
    at: str  # ISO 8601 UTC, as the store writes times
    scanner: bool = False
    email: str = ""


@dataclass(frozen=True, slots=True)
class CampaignClicks:
    """A campaign's clicks: ``total`` counts every click, ``scanner`` those of them link scanners made."""

    total: int
    scanner: int

    @property
    def readers(self) -> int:
        return self.total - self.scanner


@dataclass(frozen=True, slots=True)
class LinkClicks:
    """One link's clicks; ``unique``: readers who clicked it (scanners left out), None when the clicks
    name no reader (the default)."""

    link: int
    url: str
    total: int
    scanner: int
    unique: int | None


def record_clicks(store: Store, clicks: Sequence[Click]) -> None:
    """Write ``clicks`` in one transaction (a reader the store does not know is recorded as nobody)."""
    if not clicks:
        return
    rows = [(c.campaign, c.link, c.url, c.at, int(c.scanner), store.key(c.email) if c.email else None) for c in clicks]
    with store._write():
        store.db.executemany(
            "INSERT INTO clicks (campaign, link, url, at, scanner, subscriber)"
            " VALUES (?, ?, ?, ?, ?, (SELECT id FROM subscribers WHERE email_key = ?))",
            rows,
        )


def clicks_per_campaign(store: Store) -> dict[str, CampaignClicks]:
    """campaign → its clicks (total, of which by scanners), for every campaign with a click."""
    with store._lock:
        rows = store.db.execute(
            "SELECT campaign, count(*), sum(scanner) FROM clicks GROUP BY campaign ORDER BY campaign"
        ).fetchall()
    return {campaign: CampaignClicks(total, scanner) for campaign, total, scanner in rows}


def clicks_per_link(store: Store, campaign: str) -> list[LinkClicks]:
    """The clicked links of ``campaign`` in issue order (a link nobody clicked has no row)."""
    with store._lock:
        rows = store.db.execute(
            "SELECT link, min(url), count(*), sum(scanner),"
            " count(DISTINCT CASE WHEN scanner = 0 THEN subscriber END), count(subscriber)"
            " FROM clicks WHERE campaign = ? GROUP BY link ORDER BY link",
            (campaign,),
        ).fetchall()
    return [
        LinkClicks(link, url, total, scanner, unique if named else None)
        for link, url, total, scanner, unique, named in rows
    ]


__all__ = ["Click", "CampaignClicks", "LinkClicks", "record_clicks", "clicks_per_campaign", "clicks_per_link"]
