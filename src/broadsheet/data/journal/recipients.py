"""The journal's recipients: a list loaded into a campaign, rows claimed for sending, rows settled from
another transport's send of the same issue, put back in the queue, recovered after a crash, forgotten."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from broadsheet.core.audience.model import Selection
from broadsheet.core.providers import delivers

from ..bulk import Staging, attached, chunked
from .base import ROW_COLUMNS, CampaignRecord, Row, explained
from .campaigns import Campaigns
from .file import explain

LOAD_CHUNK = 5_000  # rows handed from the reading thread to the loading one at a time
LOAD_CACHE_KIB = 24_576  # page cache while a list moves in (24 MiB; default 2), also the sort's memory


class RecipientRows(Campaigns):
    """Recipient rows of the journal's campaigns: loaded, settled, put back, claimed for sending, forgotten."""

    def load_recipients(
        self, campaign: CampaignRecord, fingerprint: str, subscribers: Iterable[tuple[str, int, str]]
    ) -> int:
        """``load_recipient_chunks`` for rows one by one."""
        return self.load_recipient_chunks(campaign, fingerprint, chunked(subscribers, LOAD_CHUNK))

    def load_recipient_chunks(
        self, campaign: CampaignRecord, fingerprint: str, chunks: Iterable[list[tuple[str, int, str]]]
    ) -> int:
        """Store (email, line, data) for each subscriber of the current list, in one transaction.

        New subscribers are queued; known ones keep their state. Queued or deferred rows of people who
        are no longer on the list are dropped (they were never sent anything). An address given twice
        keeps its first row: every load is a new generation, and a row already of this generation is
        left alone. Returns the count of distinct addresses (the rows offered less the repeats).

        The list is parked in a staging file while it is read (the journal is not locked meanwhile), then
        moved in address order: the UNIQUE (campaign, email) index is filled front to back, so new rows
        get their ids, and are sent, in address order.
        """
        with Staging(self.db, self.path.parent, ("email", "line", "data")) as staging:
            staging.fill(chunks)
            # lower() folds ASCII letters only, as NOCASE does: the same order, sorted by plain byte compares
            return self._move_in(
                campaign, fingerprint,
                f"SELECT :campaign, email, line, data, :generation FROM {staging.TABLE} WHERE true"
                " ORDER BY lower(email), rowid",
            )  # fmt: skip

    def load_selected(self, campaign: CampaignRecord, fingerprint: str, selection: Selection) -> int:
        """``load_recipient_chunks`` for rows another package selects in SQL, with no Python per row (a send from
        the subscriber store: ``store.recipients.StoreList``). Its files are attached read-only, so this
        load's write transaction locks none of them."""
        for name, function in selection.functions.items():
            self.db.create_function(name, 1, function, deterministic=True)
        files = selection.files
        with self._attached(files):
            # WHERE true: without it SQLite would read ON CONFLICT as a join's ON
            select = f"SELECT :campaign, email, line, data, :generation FROM ({selection.query}) WHERE true"
            return self._move_in(campaign, fingerprint, select, selection.parameters)

    @contextlib.contextmanager
    def _attached(self, files: Mapping[str, Path]) -> Iterator[None]:
        """``files`` attached read-only under their names; a failure to attach is one line (CampaignError)."""
        try:
            with attached(self.db, list(files.values()), list(files), read_only=True):
                yield
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from None

    def _move_in(
        self, campaign: CampaignRecord, fingerprint: str, select: str, parameters: Mapping[str, object] | None = None
    ) -> int:
        """The rows of ``select`` (:campaign, email, line, data, :generation, in address order, the row an
        address keeps first) into the journal, in one transaction; see ``load_recipient_chunks``."""
        generation = campaign.generation + 1
        with self._load_pragmas(), self._transaction():
            total = self._changes(
                f"INSERT INTO recipients (campaign, email, line, data, generation) {select}"
                " ON CONFLICT (campaign, email) DO UPDATE SET line = excluded.line, data = excluded.data,"
                " generation = excluded.generation WHERE recipients.generation <> excluded.generation",
                {**(parameters or {}), "campaign": campaign.id, "generation": generation},
            )
            self.db.execute(
                "DELETE FROM recipients WHERE campaign = ? AND generation <> ? AND state IN ('queued', 'deferred')",
                (campaign.id, generation),
            )
            self.db.execute(
                "UPDATE campaigns SET list_fingerprint = ?, generation = ? WHERE id = ?",
                (fingerprint, generation, campaign.id),
            )
        return total

    def _changes(self, statement: str, parameters: Mapping[str, object]) -> int:
        """Run ``statement``; how many rows it added or changed."""
        before = self.db.total_changes
        self.db.execute(statement, parameters)
        return self.db.total_changes - before

    @contextlib.contextmanager
    def _load_pragmas(self) -> Iterator[None]:
        """A bigger page cache while a list moves in (it is also the external sort's memory), and its
        temporary files on disk, never in RAM (the sort spills the whole list)."""
        cache = self.db.execute("PRAGMA cache_size").fetchone()[0]
        temp_store = self.db.execute("PRAGMA temp_store").fetchone()[0]
        self.db.execute(f"PRAGMA cache_size={-LOAD_CACHE_KIB}")
        self.db.execute("PRAGMA temp_store=FILE")
        try:
            yield
        finally:
            self.db.execute(f"PRAGMA cache_size={cache}")
            self.db.execute(f"PRAGMA temp_store={temp_store}")

    # -- states ---------------------------------------------------------------------------------

    def recover_in_flight(self, campaign: CampaignRecord, *, everyone: bool = True) -> int:
        """Rows a crashed send left in ``sending`` become ``unknown``; returns how many. ``everyone`` False
        (a worker joining others): only rows whose lease ran out, not those other workers are sending."""
        held = "" if everyone else " AND id NOT IN (SELECT recipient FROM leases WHERE lease_until >= :now)"
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE recipients SET state = 'unknown', detail = 'in flight when an earlier send stopped',"
                f" updated = :now WHERE campaign = :campaign AND state = 'sending'{held}",
                {"now": time.time(), "campaign": campaign.id},
            )
        return cursor.rowcount

    def skip_sent_elsewhere(self, campaign: CampaignRecord) -> dict[str, int]:
        """Mark ``sent`` the due rows whose address a send of the same issue over another transport has sent.

        transport -> how many. The outbox only writes files: its campaigns neither count nor are affected.
        """
        return self._settle_from_elsewhere(campaign, ("sent",), "sent", "already sent over {}")

    def hold_unknown_elsewhere(self, campaign: CampaignRecord) -> dict[str, int]:
        """Mark ``unknown`` the due rows whose address is unknown (or was in flight) in a send of the same issue
        over another transport: it may have arrived, so only ``--retry-unknown`` sends it. transport -> how many."""
        return self._settle_from_elsewhere(
            campaign, ("unknown", "sending"), "unknown", "unknown over {}: it may have arrived"
        )

    def _settle_from_elsewhere(
        self, campaign: CampaignRecord, theirs: tuple[str, ...], state: str, detail: str
    ) -> dict[str, int]:
        """Due rows of ``campaign`` whose address is in one of ``theirs`` states in this issue's campaign over
        another real transport become ``state`` (``detail`` names that transport). transport -> how many."""
        settled: dict[str, int] = {}
        if not delivers(campaign.transport):
            return settled
        marks = ",".join("?" * len(theirs))
        for other in self.campaigns_for(campaign.key):
            if other.id == campaign.id or not delivers(other.transport):
                continue
            with self._transaction():
                cursor = self.db.execute(
                    "UPDATE recipients SET state = ?, detail = ?, updated = ? WHERE campaign = ?"
                    " AND state IN ('queued', 'deferred')"
                    f" AND email IN (SELECT email FROM recipients WHERE campaign = ? AND state IN ({marks}))",
                    (state, detail.format(other.transport), time.time(), campaign.id, other.id, *theirs),
                )
            if cursor.rowcount:
                settled[other.transport] = settled.get(other.transport, 0) + cursor.rowcount
        return settled

    def requeue(self, campaign: CampaignRecord, state: str) -> int:
        """Put every current ``failed`` or ``unknown`` row back in the queue (``--retry-failed/-unknown``)."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE recipients SET state = 'queued', attempts = 0, next_attempt = 0, updated = ?"
                " WHERE campaign = ? AND state = ? AND generation = ?",
                (time.time(), campaign.id, state, campaign.generation),
            )
        return cursor.rowcount

    @explained
    def claim(self, campaign: CampaignRecord, size: int, now: float) -> list[Row]:
        """Up to ``size`` rows due now (deferred first, then queued), marked ``sending`` and committed.

        Raises JournalGone when the journal file was removed or replaced: nothing more may go out.
        """
        self.check_in_place()
        rows = self.db.execute(
            f"SELECT {ROW_COLUMNS} FROM recipients"
            " WHERE campaign = ? AND state = 'deferred' AND next_attempt <= ? ORDER BY next_attempt LIMIT ?",
            (campaign.id, now, size),
        ).fetchall()
        if len(rows) < size:
            rows += self.db.execute(
                f"SELECT {ROW_COLUMNS} FROM recipients WHERE campaign = ? AND state = 'queued' ORDER BY id LIMIT ?",
                (campaign.id, size - len(rows)),
            ).fetchall()
        if rows:
            self._mark_sent(campaign)
            self._write_patiently(
                "UPDATE recipients SET state = 'sending', updated = ? WHERE id = ?", [(now, row[0]) for row in rows]
            )
        return [Row(*row) for row in rows]

    def forget(self, email: str) -> int:
        """Erase an address from every campaign (a GDPR request): its rows keep their counts, not who they
        were; rows not yet sent become ``skipped``. Returns how many rows held it."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE recipients SET email = 'forgotten-' || id || '@invalid', data = '[\"\",\"\",[],{}]',"
                " detail = CASE WHEN state IN ('queued', 'deferred') THEN 'forgotten' ELSE '' END,"
                " state = CASE WHEN state IN ('queued', 'deferred') THEN 'skipped' ELSE state END, updated = ?"
                " WHERE email = ?",
                (time.time(), email.strip()),
            )
        return cursor.rowcount
