"""Confirmation mails per mailbox over the last minute and hour, counted in the store: the serve replicas
sharing it keep one budget per mailbox, so together they mail an inbox no more often than one serve would
(a sign-up form must not become a way to flood someone's inbox). A row names its mailbox by a keyed hash,
never the address, and is removed once it is an hour old."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .schema import TIME_FORMAT

MINUTE, HOUR = 60, 3600


@dataclass(frozen=True)
class MailboxLimit:
    """At most ``per_minute`` and ``per_hour`` confirmation mails to one mailbox (sliding windows)."""

    per_minute: int
    per_hour: int


def has_room(db: Any, mailbox: str, limit: MailboxLimit, now: float) -> bool:
    """Inside a write transaction: one more mail to ``mailbox`` keeps within ``limit``. The rows older than
    the hour (of every mailbox) are removed first."""
    db.execute("DELETE FROM confirmation_mails WHERE at < ?", (_stamp(now - HOUR),))
    hour, minute = db.execute(
        "SELECT count(*), count(CASE WHEN at >= ? THEN 1 END) FROM confirmation_mails WHERE mailbox = ?",
        (_stamp(now - MINUTE), mailbox),
    ).fetchone()
    return bool(minute < limit.per_minute and hour < limit.per_hour)


def count_mail(db: Any, mailbox: str, now: float) -> None:
    """Inside the same write transaction: a mail to ``mailbox`` is being sent."""
    db.execute("INSERT INTO confirmation_mails (mailbox, at) VALUES (?, ?)", (mailbox, _stamp(now)))


def _stamp(moment: float) -> str:
    return time.strftime(TIME_FORMAT, time.gmtime(moment))
