"""What came back after a campaign, as rates against the thresholds providers act on, and the store's
health before one (many unconfirmed or long-silent addresses hurt a sender's reputation too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from broadsheet.core.config import Config
from broadsheet.data.store import Store
from broadsheet.data.store.clicks import clicks_per_link

COMPLAINT_LIMIT = 0.001  # 0.1 %: Gmail and Yahoo's bulk-sender guidance; providers suspend at 0.1–0.3 %
BOUNCE_LIMIT = 0.02  # 2 %: hard bounces; providers review accounts at about 5 %
UNCONFIRMED_LIMIT = 0.10  # share of unconfirmed addresses that earns a warning before a send
STALE_DAYS = 365


@dataclass(frozen=True)
class AfterSend:
    """One campaign's later events: people counted once per kind."""

    sent: int
    hard: int = 0
    soft: int = 0
    complained: int = 0
    unsubscribed: int = 0

    @classmethod
    def from_counts(cls, sent: int, counts: dict[str, int]) -> AfterSend:
        return cls(
            sent,
            counts.get("bounced_hard", 0),
            counts.get("bounced_soft", 0),
            counts.get("complained", 0),
            counts.get("unsubscribed", 0),
        )

    def lines(self) -> list[str]:
        if not self.sent:
            return []
        lines = [
            f"  after sending: bounced {self.hard + self.soft:,} (hard {self.hard:,}, soft {self.soft:,}) "
            f"{self._rate(self.hard)} · complained {self.complained:,} {self._rate(self.complained)} · "
            f"unsubscribed {self.unsubscribed:,} {self._rate(self.unsubscribed)}"
        ]
        if self.complained / self.sent > COMPLAINT_LIMIT:
            lines.append(
                f"  warning: complaints {self._rate(self.complained)} are above {COMPLAINT_LIMIT:.1%} "
                "(providers suspend senders at about 0.1–0.3 %): mail only people who asked, make leaving easy"
            )
        if self.hard / self.sent > BOUNCE_LIMIT:
            lines.append(
                f"  warning: hard bounces {self._rate(self.hard)} are above {BOUNCE_LIMIT:.0%} "
                "(providers review accounts at about 5 %): clean the list, confirm new sign-ups"
            )
        return lines

    def _rate(self, count: int) -> str:
        return f"{count / self.sent:.2%}"


def store_warnings(store: Store, *, now: datetime | None = None) -> list[str]:
    """Warnings about the store before a campaign: many unconfirmed addresses, many long-silent ones."""
    subscribed, unconfirmed = store.count("subscribed"), store.count("unconfirmed")
    warnings = []
    if subscribed + unconfirmed and unconfirmed / (subscribed + unconfirmed) > UNCONFIRMED_LIMIT:
        warnings.append(
            f"{unconfirmed:,} of {subscribed + unconfirmed:,} addresses in the store are unconfirmed "
            f"({unconfirmed / (subscribed + unconfirmed):.0%}); they are not mailed until they confirm"
        )
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=STALE_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = store.count_unchanged("subscribed", cutoff)
    if subscribed and stale / subscribed > UNCONFIRMED_LIMIT:
        warnings.append(
            f"{stale:,} subscribed addresses have not changed in over {STALE_DAYS} days; "
            "consider asking them to confirm they still want the newsletter"
        )
    return warnings


def store_health(config: Config) -> list[str]:
    """``store_warnings`` for the configured store (SQLite or PostgreSQL), when there is one (before a send)."""
    if not Store.exists_for_config(config):
        return []
    with Store.for_config(config) as store:
        return store_warnings(store)


def after_send_lines(config: Config, slug: str, sent: int) -> list[str]:
    """The after-send lines for ``broadsheet status``, when the project has a subscriber store."""
    if not sent or not Store.exists_for_config(config):
        return []
    with Store.for_config(config) as store:
        return AfterSend.from_counts(sent, store.campaign_counts(slug)).lines()


def click_lines(config: Config, slug: str) -> list[str]:
    """``broadsheet status``'s clicks per link (``[tracking] clicks``): the address, clicks, of which by
    link scanners, and readers (unique) where the clicks name them; nothing when none was counted."""
    if not Store.exists_for_config(config):
        return []
    with Store.for_config(config) as store:
        links = clicks_per_link(store, slug)
    if not links:
        return []
    lines = [
        f"  clicks ({sum(link.total for link in links):,}, of which link scanners {sum(link.scanner for link in links):,}):"
    ]
    for link in links:
        unique = "" if link.unique is None else f", {link.unique:,} unique"
        lines.append(f"    {link.url}  {link.total:,} clicks ({link.scanner:,} by scanners{unique})")
    return lines
