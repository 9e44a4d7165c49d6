"""The journal read for reports: counts and rows of a campaign, what was not sent, what went out when (the
daily limit, ``campaign/caps.py``), and which campaign sent a message (bounces, complaints, VERP)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from broadsheet.core.providers import not_delivering_sql

from .base import CAMPAIGN_COLUMNS, ROW_COLUMNS, STATES, CampaignRecord, JournalBase, Row, explained


class Reports(JournalBase):
    """Reads of the journal that change nothing."""

    @explained
    def counts(self, campaign: CampaignRecord) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, count in self.db.execute(
            "SELECT state, count(*) FROM recipients WHERE campaign = ? GROUP BY state", (campaign.id,)
        ):
            counts[state] = count
        return counts

    @explained
    def recent_campaigns(self, limit: int) -> list[CampaignRecord]:
        """The last ``limit`` campaigns begun over a transport that delivers, newest first."""
        rows = self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE {not_delivering_sql('transport')} ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [CampaignRecord(*row) for row in rows]

    def rows(self, campaign: CampaignRecord, states: tuple[str, ...], *, limit: int | None = None) -> Iterator[Row]:
        """Stream rows in id order (the order they are sent in: by address), a page at a time."""
        marks = ",".join("?" * len(states))
        last, left = 0, limit if limit is not None else -1
        while left != 0:
            page = self.db.execute(
                f"SELECT {ROW_COLUMNS} FROM recipients WHERE campaign = ? AND id > ?"
                f" AND state IN ({marks}) ORDER BY id LIMIT ?",
                (campaign.id, last, *states, 1000 if left < 0 else min(left, 1000)),
            ).fetchall()
            if not page:
                return
            for row in page:
                yield Row(*row)
            last = page[-1][0]
            left = left - len(page) if left > 0 else left

    def problems(
        self, campaign: CampaignRecord, states: tuple[str, ...] = ("failed", "unknown", "deferred")
    ) -> Iterator[tuple[str, str, int, str, float]]:
        """(email, state, attempts, detail, updated) for rows not sent, most recent first."""
        marks = ",".join("?" * len(states))
        try:
            yield from self.db.execute(
                f"SELECT email, state, attempts, detail, updated FROM recipients WHERE campaign = ?"
                f" AND state IN ({marks}) ORDER BY updated DESC, id",
                (campaign.id, *states),
            )
        except self._errors() as exc:
            raise self._explain(exc) from None

    # -- what went out, for the daily limit (campaign/caps.py) ----------------------------------

    @explained
    def sent_between(self, start: float, end: float) -> int:
        """Messages sent from ``start`` to ``end`` (Unix times) over real transports, every campaign.

        Rows marked sent without an attempt (already sent over another transport) went out earlier and
        are not counted again; outbox campaigns mail no one. Read through the ``recipients_sent`` index:
        the cost is the rows of that span, not the journal's size.
        """
        count: int = self.db.execute(
            "SELECT count(*) FROM recipients AS r JOIN campaigns AS c ON c.id = r.campaign"
            " WHERE r.state = 'sent' AND r.updated >= ? AND r.updated < ? AND r.attempts > 0"
            f" AND {not_delivering_sql('c.transport')}",
            (start, end),
        ).fetchone()[0]
        return count

    @explained
    def first_sent(self) -> float | None:
        """When the first message the journal knows went out over a real transport (Unix time), or None."""
        row = self.db.execute(  # walks the recipients_sent index in time order and stops at the first
            f"SELECT updated FROM recipients{self.BY_SENT_TIME} WHERE state = 'sent' AND attempts > 0"
            f" AND campaign IN (SELECT id FROM campaigns WHERE {not_delivering_sql('transport')}) ORDER BY updated LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    @explained
    def campaign_of(self, message_ids: Iterable[str], email: str) -> str:
        """The slug of the campaign that sent ``email`` a message with one of these ids (provider's or
        Message-ID, with or without angle brackets), or "" when none did (for bounces and complaints).
        The ``message_id <> ''`` term lets SQLite use the partial index: without it, every look-up scans
        the whole recipients table."""
        ids = {form for mid in message_ids if mid for form in (mid.strip("<>"), f"<{mid.strip('<>')}>")}
        if not ids:
            return ""
        row = self.db.execute(
            "SELECT c.slug FROM recipients r JOIN campaigns c ON c.id = r.campaign"
            f" WHERE r.message_id IN ({','.join('?' * len(ids))}) AND r.message_id <> '' AND r.email = ? LIMIT 1",
            (*ids, email),
        ).fetchone()
        return row[0] if row else ""

    @explained
    def email_of_row(self, row: int) -> str | None:
        """The address of recipient row ``row`` (any campaign), or None: for VERP bounce tokens."""
        found = self.db.execute("SELECT email FROM recipients WHERE id = ?", (row,)).fetchone()
        return found[0] if found else None

    @explained
    def sent_at(self, campaign: CampaignRecord, email: str) -> float | None:
        """When ``campaign`` was sent to ``email`` (None: it was not)."""
        row = self.db.execute(
            "SELECT updated FROM recipients WHERE campaign = ? AND email = ? AND state = 'sent'", (campaign.id, email)
        ).fetchone()
        return float(row[0]) if row else None
