"""The journal's history for the report: what each issue sent, how fast the last campaign went, and what
went out per day, aggregated in SQL through the recipients' indexes. Reads only."""

from __future__ import annotations

from dataclasses import dataclass

from broadsheet.core.providers import not_delivering_sql

from .base import JournalBase, explained

DAY = 86400
RATE_BUCKETS = 120  # at most this many points in the send-rate chart
BUCKET_SECONDS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, DAY)


@dataclass(frozen=True, slots=True)
class IssueSent:
    """One issue's campaigns together (every transport): the events name the issue by its slug."""

    slug: str
    subject: str
    created: str  # when its first campaign started (ISO 8601 UTC)
    sent: int


@dataclass(frozen=True, slots=True)
class SendRate:
    """The messages of one campaign marked sent per bucket of ``seconds`` from ``start`` (Unix time)."""

    slug: str
    start: float
    seconds: int
    counts: tuple[tuple[int, int], ...]  # (bucket number from start, messages)


@explained
def sent_per_issue(journal: JournalBase) -> list[IssueSent]:
    """Every issue the journal has a campaign of, oldest first, with the messages it sent over real
    transports (a row sent without an attempt went out earlier over another transport: counted there)."""
    rows = journal.db.execute(
        "SELECT c.slug, max(c.subject), min(c.created), coalesce(sum(s.sent), 0) FROM campaigns AS c"
        " LEFT JOIN (SELECT campaign, count(*) AS sent FROM recipients WHERE state = 'sent' AND attempts > 0"
        " GROUP BY campaign) AS s"
        f" ON s.campaign = c.id AND {not_delivering_sql('c.transport')} GROUP BY c.slug ORDER BY min(c.created), c.slug"
    ).fetchall()
    return [IssueSent(slug, subject, created, int(sent)) for slug, subject, created, sent in rows]


@explained
def last_send_rate(journal: JournalBase) -> SendRate | None:
    """The send rate over time of the campaign that sent last (by the time of its last message); None when
    nothing was sent. The bucket is the shortest of ``BUCKET_SECONDS`` giving at most ``RATE_BUCKETS``."""
    last = journal.db.execute(  # the recipients_sent index, read backwards from the newest
        f"SELECT campaign FROM recipients{journal.BY_SENT_TIME} WHERE state = 'sent' ORDER BY updated DESC LIMIT 1"
    ).fetchone()
    if last is None:
        return None
    (campaign,) = last
    slug, start, end = journal.db.execute(
        "SELECT (SELECT slug FROM campaigns WHERE id = ?), min(updated), max(updated) FROM recipients"
        " WHERE campaign = ? AND state = 'sent'",
        (campaign, campaign),
    ).fetchone()
    seconds = next((s for s in BUCKET_SECONDS if (end - start) / s < RATE_BUCKETS), DAY)
    counts = journal.db.execute(
        f"SELECT {journal.whole_number('(updated - ?) / ?')} AS bucket, count(*) FROM recipients"
        " WHERE campaign = ? AND state = 'sent' GROUP BY bucket ORDER BY bucket",
        (start, seconds, campaign),
    ).fetchall()
    return SendRate(slug, start, seconds, tuple((bucket, count) for bucket, count in counts))


@explained
def sent_per_day(journal: JournalBase) -> list[tuple[float, int]]:
    """(00:00 UTC of the day, messages sent that day over real transports) for every day with one: what
    the daily cap counts (``Reports.sent_between``)."""
    rows = journal.db.execute(
        f"SELECT {journal.whole_number('r.updated / ?')} AS day, count(*) FROM recipients AS r"
        " JOIN campaigns AS c ON c.id = r.campaign WHERE r.state = 'sent' AND r.attempts > 0"
        f" AND {not_delivering_sql('c.transport')} GROUP BY day ORDER BY day",
        (DAY,),
    ).fetchall()
    return [(float(day * DAY), count) for day, count in rows]
