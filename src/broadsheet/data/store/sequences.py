"""Sequence members in the store: who entered which sequence and when, who left it; and ``StepList``, the
subscribers due for one step, selected in SQL for the journal to load.

Times are the store's (ISO 8601 UTC text). A member whose status is no longer ``subscribed`` is stopped
for good: a later resubscribe does not resume the sequence.
"""

from __future__ import annotations

import collections
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from broadsheet.core.audience import JournalLoader
from broadsheet.core.audience.model import Selection

from ..db.connect import scratch
from .postgres_list import PostgresStoreList
from .recipients import StoreList
from .schema import SUPPRESSING, TIME_FORMAT
from .store import IN_CHUNK, Store

ENTERED = "INSERT INTO sequence_members (subscriber, sequence, entered_at) "
KEEP_FIRST = " ON CONFLICT (sequence, subscriber) DO NOTHING"


def store_time(moment: float) -> str:
    """``moment`` (seconds since the epoch) as the store writes times."""
    return time.strftime(TIME_FORMAT, time.gmtime(moment))


def enter(store: Store, sequence: str, emails: Iterable[str], at: float) -> int:
    """The subscribed ``emails`` enter ``sequence`` at ``at`` (members already, stopped or not, stay as they
    are). Returns how many entered."""
    keys = [store.key(email) for email in emails]
    entered = 0
    with store._write():
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            entered += store.db.execute(
                f"{ENTERED} SELECT id, ?, ? FROM subscribers WHERE status = 'subscribed' AND email_key IN ({marks})"
                f" AND true{KEEP_FIRST}",
                (sequence, store_time(at), *chunk),
            ).rowcount
    return entered


def enter_added(store: Store, sequence: str, *, source: str, since: float, at: float) -> int:
    """The subscribed subscribers an import of the file ``source`` added since ``since`` enter ``sequence`` at
    ``at`` (``subscribers import --sequence``); how many entered."""
    with store._write():
        return store.db.execute(
            f"{ENTERED} SELECT DISTINCT s.id, ?, ? FROM subscribers s JOIN events e ON e.subscriber = s.id"
            " WHERE e.kind = 'imported' AND e.detail = ? AND e.at >= ? AND s.status = 'subscribed'"
            f"{KEEP_FIRST}",
            (sequence, store_time(at), source, store_time(since)),
        ).rowcount


def enter_tagged(store: Store, sequence: str, tag: str, at: float) -> int:
    """Every subscribed subscriber with ``tag`` enters ``sequence`` at ``at``; how many entered."""
    with store._write():
        return store.db.execute(
            f"{ENTERED} SELECT s.id, ?, ? FROM subscribers s JOIN tags t ON t.subscriber = s.id"
            f" WHERE s.status = 'subscribed' AND t.tag_key = ?{KEEP_FIRST}",
            (sequence, store_time(at), tag.strip().casefold()),
        ).rowcount


def enter_all(store: Store, sequence: str, at: float) -> int:
    """Every subscribed subscriber who never entered ``sequence`` enters it at ``at`` (``--backfill``)."""
    with store._write():
        return store.db.execute(
            f"{ENTERED} SELECT id, ?, ? FROM subscribers WHERE status = 'subscribed' AND true{KEEP_FIRST}",
            (sequence, store_time(at)),
        ).rowcount


def enter_confirmed(store: Store, sequence: str, now: float) -> int:
    """Whoever confirmed a sign-up since ``sequence`` became the welcome sequence (the first call, which
    notes that moment) enters it at their confirmation; subscribers from before are not back-filled."""
    name = f"welcome-since:{sequence}"
    since = store.note(name)
    if since is None:
        store.set_note(name, store_time(now))
        return 0
    with store._write():
        return store.db.execute(
            f"{ENTERED} SELECT s.id, ?, min(e.at) FROM subscribers s JOIN events e ON e.subscriber = s.id"
            " WHERE e.kind = 'confirmed' AND e.at >= ? AND s.status = 'subscribed'"
            f" GROUP BY s.id{KEEP_FIRST}",
            (sequence, since),
        ).rowcount


def stop_left(store: Store, sequence: str, now: float) -> int:
    """Members of ``sequence`` who unsubscribed, bounced or complained are stopped at ``now``; how many."""
    marks = ",".join("?" * len(SUPPRESSING))
    where = (
        "WHERE sequence = ? AND stopped_at = ''"
        f" AND subscriber IN (SELECT id FROM subscribers WHERE status IN ({marks}))"
    )
    with store._lock:
        if not store.db.execute(f"SELECT count(*) FROM sequence_members {where}", (sequence, *SUPPRESSING)).fetchone()[
            0
        ]:
            return 0  # no write lock taken for nothing: every --due run asks
    with store._write():
        return store.db.execute(
            f"UPDATE sequence_members SET stopped_at = ? {where}", (store_time(now), sequence, *SUPPRESSING)
        ).rowcount


@dataclass(frozen=True)
class Membership:
    """Members of one sequence: still in it, and stopped (unsubscribed, bounced, complained)."""

    active: int
    stopped: int


def membership(store: Store, sequence: str) -> Membership:
    with store._lock:
        active, stopped = store.db.execute(
            "SELECT count(*) FILTER (WHERE stopped_at = ''), count(*) FILTER (WHERE stopped_at <> '')"
            " FROM sequence_members WHERE sequence = ?",
            (sequence,),
        ).fetchone()
    return Membership(active, stopped)


def entered_at(store: Store, sequence: str, email: str) -> str | None:
    """When ``email`` entered ``sequence`` (store time), or None."""
    with store._lock:
        row = store.db.execute(
            "SELECT m.entered_at FROM sequence_members m JOIN subscribers s ON s.id = m.subscriber"
            " WHERE m.sequence = ? AND s.email_key = ?",
            (sequence, store.key(email)),
        ).fetchone()
    return row[0] if row else None


class Window(NamedTuple):
    """Which step's due members a step list selects: ``first`` step or not, the ``previous`` step's journal
    campaign id (-1 when there is none yet), ``cutoff`` now less the step's ``after``."""

    sequence: str
    first: bool
    previous: int
    cutoff: float

    def fingerprint(self, store: str) -> str:
        """Changes with every run: who is due depends on the time as much as on the store (``store``)."""
        text = f"{store}|{self.sequence}|{self.cutoff}|{self.previous}"
        return hashlib.sha256(text.encode()).hexdigest()


class StepList(StoreList):
    """The subscribers due for one step of a sequence, as the journal loads a campaign's list.

    Due: a member of the sequence not stopped, subscribed (and not in the suppression file), who entered
    at least ``after`` ago (the first step) or was sent the previous step at least ``after`` ago (the
    previous step's campaign, ``previous``: a journal campaign id, -1 when there is none yet); and whose
    row of this step's campaign, if any, is still queued or deferred. The query runs in the journal's
    connection (``Journal.load_selected``): ``main`` is the journal, ``:campaign`` this step's campaign."""

    def __init__(self, root: Path, *, window: Window, suppressions: Path | None):
        super().__init__(root, suppressions=suppressions)
        self.window = window
        self.sequence, self.first, self.previous, self.cutoff = window

    def _rows(self, schema: str) -> str:
        since = (
            "m.entered_at <= :seq_entered"
            if self.first
            else "EXISTS (SELECT 1 FROM main.recipients p WHERE p.campaign = :seq_previous AND p.email = s.email"
            " AND p.state = 'sent' AND p.updated <= :seq_cutoff)"
        )
        return super()._rows(schema) + (
            f" AND EXISTS (SELECT 1 FROM {schema}.sequence_members m WHERE m.subscriber = s.id"
            f" AND m.sequence = :seq_name AND m.stopped_at = '' AND {since})"
            " AND NOT EXISTS (SELECT 1 FROM main.recipients r WHERE r.campaign = :campaign AND r.email = s.email"
            " AND r.state NOT IN ('queued', 'deferred'))"
        )

    def _segments(self) -> dict[str, str]:
        return {
            **super()._segments(),
            "seq_name": self.sequence,
            "seq_entered": store_time(self.cutoff),
            "seq_previous": str(self.previous),
            "seq_cutoff": str(self.cutoff),
        }

    def _count_skipped(self, store: Store) -> collections.Counter[str]:
        """Nothing: a step's run does not report the store's other subscribers (and runs every minute)."""
        return collections.Counter()

    def fingerprint(self) -> str:
        return self.window.fingerprint(super().fingerprint())


class PostgresStepList(PostgresStoreList):
    """``StepList`` for a store in PostgreSQL. The store's side (members not stopped, subscribed, not in
    the suppression file, entered long enough ago for a first step) is streamed into a scratch SQLite file;
    the journal's side (the previous step sent long enough ago, this step not sent yet) is then selected
    from it in the journal's connection, as ``StepList`` does (``Journal.load_selected``)."""

    def __init__(self, url: str, *, window: Window, suppressions: Path | None):
        super().__init__(url, suppressions=suppressions)
        self.window = window
        self.sequence, self.first, self.previous, self.cutoff = window

    def _also(self) -> str:
        entered = " AND m.entered_at <= :seq_entered" if self.first else ""
        return (
            " AND EXISTS (SELECT 1 FROM sequence_members m WHERE m.subscriber = s.id"
            f" AND m.sequence = :seq_name AND m.stopped_at = ''{entered})"
        )

    def _segments(self) -> dict[str, str]:
        return {**super()._segments(), "seq_name": self.sequence, "seq_entered": store_time(self.cutoff)}

    def load_into(self, loader: JournalLoader) -> int:
        folder = Path(tempfile.mkdtemp(prefix="broadsheet-step-"))
        try:
            db = scratch(folder / "due.db", cache_kib=8_192)
            try:
                db.execute("CREATE TABLE rows (email TEXT NOT NULL, data TEXT NOT NULL)")
                for chunk in self.chunks():
                    rows = [
                        (
                            s.email,
                            json.dumps(
                                [s.name, s.first_name, s.tags, s.fields], ensure_ascii=False, separators=(",", ":")
                            ),
                        )
                        for s in chunk
                    ]
                    with db:
                        db.executemany("INSERT INTO rows (email, data) VALUES (?, ?)", rows)
            finally:
                db.close()
            self.skipped = collections.Counter()  # a step's run does not report the store's other subscribers
            return loader.selected(Selection(self._due(), {"due": folder / "due.db"}, self._journal_values()))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _due(self) -> str:
        """SQL, in the journal's connection: the streamed members this step is due for, in address order."""
        since = (
            ""
            if self.first
            else " AND EXISTS (SELECT 1 FROM main.recipients p WHERE p.campaign = :seq_previous AND p.email = d.email"
            " AND p.state = 'sent' AND p.updated <= :seq_cutoff)"
        )
        return (
            "SELECT d.email AS email, 0 AS line, d.data AS data FROM due.rows d WHERE NOT EXISTS (SELECT 1"
            " FROM main.recipients r WHERE r.campaign = :campaign AND r.email = d.email"
            f" AND r.state NOT IN ('queued', 'deferred')){since} ORDER BY lower(d.email), d.rowid"
        )

    def _journal_values(self) -> dict[str, object]:
        return {"seq_previous": str(self.previous), "seq_cutoff": str(self.cutoff)}

    def fingerprint(self) -> str:
        return self.window.fingerprint(super().fingerprint())
