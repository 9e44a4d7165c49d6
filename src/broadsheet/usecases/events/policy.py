"""What an event does to a subscriber: the one place the bounce and complaint policy lives.

A hard bounce or a complaint suppresses the address (status bounced or complained); ``soft_limit`` soft
bounces within ``window_days`` count as a hard one; an unsubscribe unsubscribes; a delivery is recorded.
The store keeps the strongest status (complained > bounced > unsubscribed): a later, weaker event is
recorded without lowering it.
Every event carries a dedupe key, so a replayed webhook, a second sync or a mail read twice changes
nothing. Events are matched to their campaign through the send journal when the caller passes a lookup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from broadsheet.core.audience.addresses import AddressChecker, InvalidAddress
from broadsheet.core.config import Bounces
from broadsheet.core.events import MailEvent

if TYPE_CHECKING:
    from broadsheet.data.store import Store

# (provider message id, RFC 5322 Message-ID, email) -> campaign slug or ""
CampaignLookup = Callable[[str, str, str], str]

ADDRESSES = AddressChecker()
STATUS_FOR = {"hard_bounce": "bounced", "complaint": "complained", "unsubscribe": "unsubscribed"}
RECORDED_AS = {"soft_bounce": "bounced_soft", "delivered": "delivered"}


@dataclass
class Applied:
    """What a batch of events did: how many of each kind were read, and whom they newly suppressed."""

    kinds: Counter[str] = field(default_factory=Counter)  # kind -> events read (repeats included)
    invalid: int = 0  # events whose address is not an address: skipped
    suppressed: list[str] = field(default_factory=list)  # addresses mailable before (or unknown), suppressed now

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    def add(self, other: Applied) -> None:
        self.kinds.update(other.kinds)
        self.invalid += other.invalid
        self.suppressed.extend(other.suppressed)

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(self.kinds.items())) or "no events"
        skipped = f"; {self.invalid} with an invalid address skipped" if self.invalid else ""
        return f"{kinds}; {len(self.suppressed)} newly suppressed{skipped}"


def apply(
    events: Iterable[MailEvent], store: Store, bounces: Bounces, *, source: str, campaigns: CampaignLookup | None = None
) -> Applied:
    """Record each event once in ``store`` and change statuses by the policy; ``source`` names the way in
    (``webhook``, ``sync``, ``inbox``): the store's event source is ``source:provider`` (just ``inbox``)."""
    applied = Applied()
    for event in events:
        try:
            event = replace(event, email=ADDRESSES.normalise(event.email))
        except InvalidAddress:
            applied.invalid += 1
            continue
        if campaigns is not None and not event.campaign:
            event = replace(event, campaign=campaigns(event.provider_message_id, event.message_id, event.email))
        _apply_one(event, store, bounces, _source(source, event.provider), applied)
    return applied


def _apply_one(event: MailEvent, store: Store, bounces: Bounces, source: str, applied: Applied) -> None:
    applied.kinds[event.kind] += 1
    status = STATUS_FOR.get(event.kind)
    if status is not None:
        change = store.set_status(event.email, status, source=source, campaign=event.campaign, detail=event.detail,
                                  dedupe_key=event.dedupe_key)  # fmt: skip
    else:
        new = store.record_event(event.email, RECORDED_AS[event.kind], source=source, campaign=event.campaign,
                                 detail=event.detail, dedupe_key=event.dedupe_key, at=event.at)  # fmt: skip
        if not (new and event.kind == "soft_bounce" and bounces.soft_limit):
            return
        count = store.count_events(event.email, "bounced_soft", _days_before(event.at, bounces.window_days))
        if count < bounces.soft_limit:
            return
        change = store.set_status(
            event.email,
            "bounced",
            source=source,
            campaign=event.campaign,
            detail=f"{count} soft bounces within {bounces.window_days} days (soft_limit {bounces.soft_limit})",
            dedupe_key=f"{event.dedupe_key}:soft-limit",
        )
    if change is not None and change.newly_suppressed:
        applied.suppressed.append(event.email)


def _source(way_in: str, provider: str) -> str:
    return way_in if way_in == "inbox" else f"{way_in}:{provider}"


def _days_before(at: str, days: int) -> str:
    moment = datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ")
    since = moment - min(timedelta(days=days), moment - datetime.min)  # never before the year 1
    return since.isoformat(timespec="seconds") + "Z"
