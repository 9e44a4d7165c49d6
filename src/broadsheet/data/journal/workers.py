"""Several ``send --worker`` processes on one campaign: workers registered, rows leased, handed over, released.

A worker leases due rows (a ``leases`` row each: worker, lease_until) in one short write transaction,
and marks each batch ``sending`` (committed) just before handing it to the transport, as a single send
does (the first batch in the lease's own transaction).
A worker that stops renewing its lease (killed) leaves its rows to the others: rows it had not handed over
are leased again once the lease ran out; rows in ``sending`` become ``unknown`` and are never resent by
themselves. Only the row-locking clause differs between engines (``ROW_LOCK``): SQLite's ``BEGIN IMMEDIATE``
already serialises the transaction; PostgreSQL's workers lease at once, each skipping the rows another
holds (``FOR UPDATE SKIP LOCKED``), and a lease still running is never taken over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .base import ROW_COLUMNS, CampaignRecord, Row, explained
from .file import JournalLocked
from .recipients import RecipientRows

ROW_LOCK = ""  # PostgreSQL: " FOR UPDATE SKIP LOCKED" (the only difference in the claim)
EXPIRED_DETAIL = "in flight when its worker stopped renewing its lease (killed?)"
SILENT_DAYS = 7  # a worker silent this long (stopped or killed) is forgotten once it holds no lease
T = TypeVar("T")

_LEASE = (
    "INSERT INTO leases (recipient, worker, lease_until)"
    " SELECT id, :worker, :until FROM recipients WHERE campaign = :campaign AND {due}"
    " AND id NOT IN (SELECT recipient FROM leases WHERE lease_until >= :now) ORDER BY {order} LIMIT :size{lock}"
    " ON CONFLICT (recipient) DO UPDATE SET worker = excluded.worker, lease_until = excluded.lease_until"
    " WHERE leases.lease_until < :now RETURNING recipient"
)


def lease_statements(lock: str) -> tuple[str, str]:
    """The statements leasing due deferred rows, then queued ones, with the engine's row-locking clause."""
    deferred = _LEASE.format(due="state = 'deferred' AND next_attempt <= :now", order="next_attempt", lock=lock)
    return deferred, _LEASE.format(due="state = 'queued'", order="id", lock=lock)


LEASE_DEFERRED, LEASE_QUEUED = lease_statements(ROW_LOCK)
# workers to forget: none holding a lease; those stopped once their campaign has no row left to send, and
# any (a killed one too) silent for SILENT_DAYS
PRUNE_WORKERS = (
    "DELETE FROM workers WHERE NOT EXISTS (SELECT 1 FROM leases WHERE leases.worker = workers.id)"
    " AND (heartbeat < :before OR (stopped > 0 AND NOT EXISTS (SELECT 1 FROM recipients"
    " WHERE recipients.campaign = workers.campaign AND recipients.state IN ('queued', 'deferred', 'sending'))))"
)


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One worker of a campaign, as ``status`` shows it."""

    id: int
    host: str
    pid: int
    started: float
    heartbeat: float  # Unix time of its last renewal
    last_batch: float  # Unix time it last handed a batch to the transport (0: none yet)
    batches: int


class Workers(RecipientRows):
    """The journal's side of shared sending; every write is one short transaction, tried through the lock."""

    LEASES = (LEASE_DEFERRED, LEASE_QUEUED)  # PostgreSQL's lock the rows they lease (``lease_statements``)

    def register_worker(self, campaign: CampaignRecord, host: str, pid: int, now: float) -> int:
        """A new worker of ``campaign``; the workers done with (``PRUNE_WORKERS``) are forgotten first, so the
        table holds the workers of the campaigns still sending and of the last few days only."""

        def register() -> int:
            self.db.execute(PRUNE_WORKERS, {"before": now - SILENT_DAYS * 86400})
            cursor = self.db.execute(
                "INSERT INTO workers (campaign, host, pid, started, heartbeat) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (campaign.id, host, pid, now, now),
            )
            return int(cursor.fetchone()[0])

        self._leasing = True  # outcomes recorded from now on end the rows' leases
        return self._patiently(register)

    def lease(
        self,
        campaign: CampaignRecord,
        worker: int,
        *,
        carried: Sequence[Row],
        hand: int,
        size: int,
        now: float,
        until: float,
        allow: Callable[[int], int],
    ) -> tuple[list[Row], list[Row]]:
        """Up to ``size`` more due rows (deferred first, then queued) leased to ``worker`` until ``until``, and
        the first ``hand`` of ``carried`` (rows it leased before) and the new ones handed over (``hand_over``),
        in one write transaction (the rows held before keep their lease: ``renew`` extends it). It first
        turns this campaign's ``sending`` rows whose lease ran out
        ``unknown``, and asks ``allow`` (the campaign's shared budget, read and written in the same
        transaction) how many may be leased. Returns (handed over, still leased)."""
        self.check_in_place()

        def lease() -> tuple[list[Row], list[Row]]:
            self._expire(campaign, now)
            self.db.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (now, worker))
            allowed = min(size, allow(size)) if size > 0 else 0
            ids: list[int] = []
            for statement in self.LEASES:
                if len(ids) < allowed:
                    values = {"worker": worker, "until": until, "campaign": campaign.id, "now": now}
                    ids += [found for (found,) in self.db.execute(statement, {**values, "size": allowed - len(ids)})]
            marks = ",".join("?" * len(ids))
            found = (
                [
                    Row(*row)
                    for row in self.db.execute(f"SELECT {ROW_COLUMNS} FROM recipients WHERE id IN ({marks})", ids)
                ]
                if ids
                else []
            )
            held = {row.id for row in carried}  # its own rows whose lease ran out come back: once, not twice
            new = sorted(
                (row for row in found if row.id not in held), key=lambda row: (row.state != "deferred", row.id)
            )  # deferred first, then by id
            rows = [*carried, *new]
            batch, rest = rows[:hand], rows[hand:]
            if batch:
                self._mark_sent(campaign)  # before the first message leaves
            taken = self._mark_sending(worker, batch, now)
            return [row for row in batch if row.id in taken], rest

        return self._patiently(lease)

    def hand_over(self, worker: int, rows: Sequence[Row], now: float) -> list[Row]:
        """Mark ``sending`` (committed) those of ``rows`` still leased to ``worker``: they go to the transport
        now. Rows whose lease ran out (another worker may have them, or the daily cap) are left out."""
        if not rows:
            return []
        self.check_in_place()
        taken = self._patiently(lambda: self._mark_sending(worker, rows, now))
        return [row for row in rows if row.id in taken]

    def _mark_sending(self, worker: int, rows: Sequence[Row], now: float) -> set[int]:
        if not rows:
            return set()
        ids = [row.id for row in rows]
        marks = ",".join("?" * len(ids))
        taken = {
            found
            for (found,) in self.db.execute(
                f"UPDATE recipients SET state = 'sending', updated = ? WHERE id IN ({marks})"
                " AND state IN ('queued', 'deferred')"
                " AND id IN (SELECT recipient FROM leases WHERE worker = ? AND lease_until >= ?) RETURNING id",
                (now, *ids, worker, now),
            )
        }
        self.db.execute("UPDATE workers SET last_batch = ?, batches = batches + 1 WHERE id = ?", (now, worker))
        return taken

    def renew(self, worker: int, now: float, until: float) -> None:
        """The worker's heartbeat: its lease on every row it still holds runs until ``until`` (one that ran
        out is not revived: the cap counted it free)."""
        self._patiently(lambda: self._beat(worker, now, until))

    def release(self, worker: int, now: float) -> None:
        """The worker stops: rows it leased and did not hand over go back to the others at once."""

        def release() -> None:
            self.db.execute(
                "DELETE FROM leases WHERE worker = ?"
                " AND (SELECT state FROM recipients WHERE id = leases.recipient) IN ('queued', 'deferred')",
                (worker,),
            )
            self.db.execute("UPDATE workers SET stopped = ?, heartbeat = ? WHERE id = ?", (now, now, worker))

        self._patiently(release)

    @explained
    def open_rows(self, campaign: CampaignRecord, worker: int) -> int:
        """Rows of the campaign not settled yet, but for this worker's own ones in ``sending``: while any
        is left, a worker keeps watching (another worker may die and leave its rows)."""
        count: int = self.db.execute(
            "SELECT (SELECT count(*) FROM recipients WHERE campaign = :campaign AND state IN ('queued', 'deferred'))"
            " + (SELECT count(*) FROM recipients WHERE campaign = :campaign AND state = 'sending'"
            " AND id NOT IN (SELECT recipient FROM leases WHERE worker = :worker))",
            {"campaign": campaign.id, "worker": worker},
        ).fetchone()[0]
        return count

    @explained
    def in_flight(self, now: float) -> int:
        """Rows leased now by any worker of any campaign and not settled: they count against the daily cap."""
        count: int = self.db.execute(
            "SELECT count(*) FROM leases JOIN recipients ON recipients.id = leases.recipient"
            " WHERE leases.lease_until >= ? AND recipients.state IN ('queued', 'deferred', 'sending')",
            (now,),
        ).fetchone()[0]
        return count

    @explained
    def bucket(self, campaign: CampaignRecord, name: str) -> tuple[float, float] | None:
        """(tokens, Unix time) of the campaign's rate-limit bucket ``name``; None before its first use."""
        row = self.db.execute(
            "SELECT tokens, stamp FROM buckets WHERE campaign = ? AND name = ?", (campaign.id, name)
        ).fetchone()
        return (float(row[0]), float(row[1])) if row else None

    def put_bucket(self, campaign: CampaignRecord, name: str, tokens: float, stamp: float) -> None:
        """Write a bucket back; only inside ``lease``'s transaction (its ``allow``)."""
        self.db.execute(
            "INSERT INTO buckets (campaign, name, tokens, stamp) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (campaign, name) DO UPDATE SET tokens = excluded.tokens, stamp = excluded.stamp",
            (campaign.id, name, tokens, stamp),
        )

    @explained
    def workers(self, campaign: CampaignRecord) -> list[WorkerRecord]:
        """The campaign's workers that have not stopped (a killed one too, until SILENT_DAYS pass)."""
        rows = self.db.execute(
            "SELECT id, host, pid, started, heartbeat, last_batch, batches FROM workers"
            " WHERE campaign = ? AND stopped = 0 ORDER BY id",
            (campaign.id,),
        ).fetchall()
        return [WorkerRecord(*row) for row in rows]

    def _expire(self, campaign: CampaignRecord, now: float) -> None:
        """Rows of this campaign whose lease ran out: in ``sending``, ``unknown``; the others free again."""
        values = {"now": now, "campaign": campaign.id, "detail": EXPIRED_DETAIL}
        self.db.execute(
            "UPDATE recipients SET state = 'unknown', detail = :detail, updated = :now"
            " WHERE id IN (SELECT recipient FROM leases WHERE lease_until < :now)"
            " AND campaign = :campaign AND state = 'sending'",
            values,
        )
        self.db.execute(
            "DELETE FROM leases WHERE lease_until < :now"
            " AND (SELECT campaign FROM recipients WHERE id = leases.recipient) = :campaign",
            values,
        )

    def _beat(self, worker: int, now: float, until: float) -> None:
        self.db.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (now, worker))
        self.db.execute("UPDATE leases SET lease_until = ? WHERE worker = ? AND lease_until >= ?", (until, worker, now))

    def _patiently(self, work: Callable[[], T]) -> T:
        """``work`` in one write transaction, tried again through another program's write lock until
        ``patience`` runs out (then JournalLocked)."""
        deadline = time.monotonic() + self.patience
        while True:
            try:
                with self._transaction():
                    return work()
            except JournalLocked:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
