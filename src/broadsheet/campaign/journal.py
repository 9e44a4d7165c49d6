"""The campaign journal: SQLite at ``.broadsheet/state.db`` beside broadsheet.toml (WAL).

One campaign per issue slug and transport; one row per recipient with its state:

    queued → sending → sent | failed | deferred (→ sending again) ; sending left by a crash → unknown
    sending → skipped: the subscriber store suppressed the address after the campaign started (never mailed)

A row is marked ``sending`` (and committed) before its message goes out, so a crash can never lose track
of one: at the next start, rows still in ``sending`` become ``unknown``. The subscriber's own fields are
kept in the row (``data``), so a resumed send composes from the journal alone.
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from ..errors import CampaignError

STATES = ("queued", "sending", "sent", "failed", "deferred", "unknown", "skipped")
INSERT_CHUNK = 10_000  # rows per transaction: big enough to be fast, small enough to keep memory flat

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL,
    transport TEXT NOT NULL,
    issue_dir TEXT NOT NULL DEFAULT '',
    list_fingerprint TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    UNIQUE (slug, transport)
);
CREATE TABLE IF NOT EXISTS recipients (
    id INTEGER PRIMARY KEY,
    campaign INTEGER NOT NULL REFERENCES campaigns(id),
    email TEXT NOT NULL COLLATE NOCASE,
    line INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '{}',
    generation INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT '',
    next_attempt REAL NOT NULL DEFAULT 0,
    updated REAL NOT NULL DEFAULT 0,
    UNIQUE (campaign, email)
);
CREATE INDEX IF NOT EXISTS recipients_by_state ON recipients (campaign, state);
CREATE INDEX IF NOT EXISTS recipients_by_message_id ON recipients (message_id) WHERE message_id <> '';
CREATE INDEX IF NOT EXISTS recipients_deferred ON recipients (campaign, next_attempt) WHERE state = 'deferred';
"""


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: int
    slug: str
    transport: str
    issue_dir: str
    list_fingerprint: str
    generation: int
    created: str


@dataclass(frozen=True, slots=True)
class Row:
    """One recipient claimed for sending: enough to compose its message again."""

    id: int
    email: str
    line: int
    data: str
    attempts: int
    state: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The new state of one row after an attempt."""

    id: int
    state: str
    detail: str = ""
    message_id: str = ""
    next_attempt: float = 0.0
    counts_attempt: bool = True


# What CampaignRecord and Row are built from: the columns their fields are named after, in order.
CAMPAIGN_COLUMNS = ", ".join(f.name for f in fields(CampaignRecord))
ROW_COLUMNS = ", ".join(f.name for f in fields(Row))


def journal_path(root: Path) -> Path:
    return root / ".broadsheet" / "state.db"


class Journal:
    """The SQLite journal. Use from one thread; ``lock()`` keeps a second ``send`` out."""

    def __init__(self, path: Path):
        self.path = path
        self._lock_file = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise CampaignError(
                f"cannot open the send journal: {exc}", where=str(path),
                fix="check that the folder is writable; move a damaged file aside (a new journal forgets who was sent)",
            ) from None

    @classmethod
    def for_project(cls, root: Path) -> Journal:
        return cls(journal_path(root))

    def close(self) -> None:
        self.db.close()
        self.unlock()

    def unlock(self) -> None:
        """Let another send in (closing the journal does this too)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lock(self) -> None:
        """Hold the send lock for this project, or refuse: two sends must not share a journal."""
        handle = open(self.path.with_suffix(".lock"), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise CampaignError(
                "another 'broadsheet send' is running for this project", where=str(self.path),
                fix="wait for it to finish, or stop it with Ctrl-C",
            ) from None
        self._lock_file = handle

    # -- campaigns ------------------------------------------------------------------------------

    def campaign(self, slug: str, transport: str) -> CampaignRecord | None:
        row = self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE slug = ? AND transport = ?",
            (slug, transport),
        ).fetchone()
        return CampaignRecord(*row) if row else None

    def campaigns_for(self, slug: str, issue_dir: str) -> list[CampaignRecord]:
        rows = self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE slug = ? OR issue_dir = ? ORDER BY id",
            (slug, issue_dir),
        ).fetchall()
        return [CampaignRecord(*row) for row in rows]

    def start_campaign(self, slug: str, transport: str, issue_dir: str, fingerprint: str) -> tuple[CampaignRecord, bool]:
        """The campaign for this issue and transport, created if new. True when its list must be (re)loaded."""
        existing = self.campaign(slug, transport)
        if existing is None:
            self.db.execute(
                "INSERT INTO campaigns (slug, transport, issue_dir, list_fingerprint, created)"
                " VALUES (?, ?, ?, ?, datetime('now'))",
                (slug, transport, issue_dir, ""),
            )
            existing = self.campaign(slug, transport)
            assert existing is not None
        return existing, existing.list_fingerprint != fingerprint

    def load_recipients(self, campaign: CampaignRecord, fingerprint: str, subscribers: Iterable[tuple[str, int, str]]) -> int:
        """Store (email, line, data) for each subscriber of the current list, in big transactions.

        New subscribers are queued; known ones keep their state. Queued or deferred rows of people who
        are no longer on the list are dropped (they were never sent anything). Returns the row count.
        """
        generation = campaign.generation + (1 if campaign.list_fingerprint else 0)
        upsert = (
            "INSERT INTO recipients (campaign, email, line, data, generation) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (campaign, email) DO UPDATE SET line = excluded.line, data = excluded.data,"
            " generation = excluded.generation"
        )
        total = 0
        for chunk in _chunks(subscribers, INSERT_CHUNK):
            with self._transaction():
                self.db.executemany(upsert, [(campaign.id, email, line, data, generation) for email, line, data in chunk])
            total += len(chunk)
        with self._transaction():
            self.db.execute(
                "DELETE FROM recipients WHERE campaign = ? AND generation <> ? AND state IN ('queued', 'deferred')",
                (campaign.id, generation),
            )
            self.db.execute(
                "UPDATE campaigns SET list_fingerprint = ?, generation = ? WHERE id = ?",
                (fingerprint, generation, campaign.id),
            )
        return total

    def current(self, slug: str, transport: str) -> CampaignRecord:
        record = self.campaign(slug, transport)
        if record is None:
            raise CampaignError(f"no campaign for {slug} over {transport}")
        return record

    # -- states ---------------------------------------------------------------------------------

    def recover_in_flight(self, campaign: CampaignRecord) -> int:
        """Rows a crashed send left in ``sending`` become ``unknown``; returns how many."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE recipients SET state = 'unknown', detail = 'in flight when an earlier send stopped',"
                " updated = ? WHERE campaign = ? AND state = 'sending'",
                (time.time(), campaign.id),
            )
        return cursor.rowcount

    def skip_sent_elsewhere(self, campaign: CampaignRecord) -> dict[str, int]:
        """Mark ``sent`` the due rows whose address a send of the same issue over another transport has sent.

        transport -> how many. The outbox only writes files: its campaigns neither count nor are affected.
        """
        skipped: dict[str, int] = {}
        if campaign.transport == "outbox":
            return skipped
        for other in self.campaigns_for(campaign.slug, campaign.issue_dir):
            if other.id == campaign.id or other.transport == "outbox":
                continue
            with self._transaction():
                cursor = self.db.execute(
                    "UPDATE recipients SET state = 'sent', detail = ?, updated = ? WHERE campaign = ?"
                    " AND state IN ('queued', 'deferred')"
                    " AND email IN (SELECT email FROM recipients WHERE campaign = ? AND state = 'sent')",
                    (f"already sent over {other.transport}", time.time(), campaign.id, other.id),
                )
            if cursor.rowcount:
                skipped[other.transport] = skipped.get(other.transport, 0) + cursor.rowcount
        return skipped

    def requeue(self, campaign: CampaignRecord, state: str) -> int:
        """Put every current ``failed`` or ``unknown`` row back in the queue (``--retry-failed/-unknown``)."""
        with self._transaction():
            cursor = self.db.execute(
                "UPDATE recipients SET state = 'queued', attempts = 0, next_attempt = 0, updated = ?"
                " WHERE campaign = ? AND state = ? AND generation = ?",
                (time.time(), campaign.id, state, campaign.generation),
            )
        return cursor.rowcount

    def claim(self, campaign: CampaignRecord, size: int, now: float) -> list[Row]:
        """Up to ``size`` rows due now (deferred first, then queued), marked ``sending`` and committed."""
        rows = self.db.execute(
            f"SELECT {ROW_COLUMNS} FROM recipients"
            " WHERE campaign = ? AND state = 'deferred' AND next_attempt <= ? ORDER BY next_attempt LIMIT ?",
            (campaign.id, now, size),
        ).fetchall()
        if len(rows) < size:
            rows += self.db.execute(
                f"SELECT {ROW_COLUMNS} FROM recipients"
                " WHERE campaign = ? AND state = 'queued' ORDER BY id LIMIT ?",
                (campaign.id, size - len(rows)),
            ).fetchall()
        if rows:
            with self._transaction():
                self.db.executemany(
                    "UPDATE recipients SET state = 'sending', updated = ? WHERE id = ?", [(now, row[0]) for row in rows]
                )
        return [Row(*row) for row in rows]

    def record(self, outcomes: Iterable[Outcome]) -> None:
        """Write what happened to claimed rows, in one transaction."""
        now = time.time()
        with self._transaction():
            self.db.executemany(
                "UPDATE recipients SET state = ?, detail = ?, message_id = ?, next_attempt = ?,"
                " attempts = attempts + ?, updated = ? WHERE id = ?",
                [(o.state, o.detail, o.message_id, o.next_attempt, int(o.counts_attempt), now, o.id) for o in outcomes],
            )

    def counts(self, campaign: CampaignRecord) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, count in self.db.execute(
            "SELECT state, count(*) FROM recipients WHERE campaign = ? GROUP BY state", (campaign.id,)
        ):
            counts[state] = count
        return counts

    def rows(self, campaign: CampaignRecord, states: tuple[str, ...], *, limit: int | None = None) -> Iterator[Row]:
        """Stream rows in list order (for dry runs), a page at a time."""
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

    def problems(self, campaign: CampaignRecord, states: tuple[str, ...] = ("failed", "unknown", "deferred")):
        """(email, state, attempts, detail, updated) for rows not sent, most recent first."""
        marks = ",".join("?" * len(states))
        return self.db.execute(
            f"SELECT email, state, attempts, detail, updated FROM recipients WHERE campaign = ? AND state IN ({marks})"
            " ORDER BY updated DESC, id",
            (campaign.id, *states),
        )

    def campaign_of(self, message_ids: Iterable[str], email: str) -> str:
        """The slug of the campaign that sent ``email`` a message with one of these ids (provider's or
        Message-ID, with or without angle brackets), or "" when none did (for bounces and complaints)."""
        ids = {form for mid in message_ids if mid for form in (mid.strip("<>"), f"<{mid.strip('<>')}>")}
        if not ids:
            return ""
        row = self.db.execute(
            "SELECT c.slug FROM recipients r JOIN campaigns c ON c.id = r.campaign"
            f" WHERE r.message_id IN ({','.join('?' * len(ids))}) AND r.email = ? LIMIT 1",
            (*ids, email),
        ).fetchone()
        return row[0] if row else ""

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

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *rest) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
