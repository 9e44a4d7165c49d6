"""Recipients the receiving side refused at send time, applied as bounces by the one policy (``policy.apply``):
a 550 5.1.1 to RCPT is a hard bounce as a DSN saying it would be, so the next issue does not mail it again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from broadsheet.core.config import Bounces
from broadsheet.core.errors import BroadsheetError
from broadsheet.core.events import MailEvent, iso_utc, short
from broadsheet.data.store import Store

from .policy import Applied, apply


class SendRejections:
    """Callable, for the campaign runner: (address, kind, detail) of refused recipients, as MailEvents of
    ``campaign`` (one per address, kind and campaign: a resend refused again counts once)."""

    def __init__(
        self, store: Path | str, bounces: Bounces, *, campaign: str, transport: str, warn: Callable[[str], None]
    ):
        self.location = store  # the store's file or URL (``store_location``)
        self.bounces = bounces
        self.campaign = campaign
        self.transport = transport
        self.warn = warn
        self.applied = Applied()
        self._store: Store | None = None

    def __call__(self, refused: list[tuple[str, str, str]]) -> None:
        at = iso_utc(time.time())
        events = [self._event(email, kind, detail, at) for email, kind, detail in refused]
        try:
            if self._store is None:
                self._store = Store(self.location)
            self.applied.add(apply(events, self._store, self.bounces, source="send"))
        except BroadsheetError as exc:  # the send goes on; the journal keeps the refusal and its reason
            self.warn(f"could not record {len(events)} refusal(s) as bounces in the subscriber store: {exc}")

    def _event(self, email: str, kind: str, detail: str, at: str) -> MailEvent:
        key = f"send:{self.campaign}:{email.lower()}:{kind}"
        return MailEvent(kind, email, self.transport, at, key, campaign=self.campaign, detail=short(detail))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
