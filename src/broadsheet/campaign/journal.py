"""The campaign journal: SQLite at ``.broadsheet/state.db`` beside broadsheet.toml (WAL).

One campaign per issue identity and transport. The identity (``key``) is the issue's front-matter ``id``
(``broadsheet new`` writes one), so renaming or moving the folder, or editing the content, resumes the
same campaign; an issue without an id falls back to its folder name. One row per recipient with its state:

    queued → sending → sent | failed | deferred (→ sending again) ; sending left by a crash → unknown
    sending → skipped: the subscriber store suppressed the address after the campaign started (never mailed)

A row is marked ``sending`` (and committed) before its message goes out, so a crash can never lose track
of one: at the next start, rows still in ``sending`` become ``unknown``. The subscriber's own fields are
kept in the row (``data``), so a resumed send composes from the journal alone. The file itself is made,
recognised and migrated by ``journalfile``; the send lock is ``lock.ProjectLock``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from ..audience.bulk import Selection, Staging, attached, chunked
from ..db import connect
from ..db.checkpoint import Checkpointer, without_autocheckpoint
from ..errors import CampaignError
from ..providers import delivers, not_delivering_sql
from .journalfile import JournalFull, JournalLocked, explain, journal_uid, open_journal
from .lock import ProjectLock

STATES = ("queued", "sending", "sent", "failed", "deferred", "unknown", "skipped")
LOAD_CHUNK = 5_000  # rows handed from the reading thread to the loading one at a time
LOAD_CACHE_KIB = 24_576  # page cache while a list moves in (24 MiB; default 2), also the sort's memory
WAIT = 5.0  # seconds SQLite waits for another program's write lock before a statement gives up
PATIENCE = 60.0  # seconds recording outcomes keeps trying through another program's lock
ROOM = 1 << 20  # bytes kept aside during a send for the outcomes in flight when the disk fills up
RECENT_DAYS = 7  # a campaign mailing people who got the same subject this recently is refused

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: int
    key: str  # the issue's identity: its front-matter id, else its folder name
    issue_id: str  # the front-matter id ("" when the issue has none)
    slug: str  # the folder name at the last send
    transport: str
    issue_dir: str
    subject: str  # the subject at the last send
    list_fingerprint: str
    generation: int
    created: str


@dataclass(frozen=True, slots=True)
class RecentSend:
    """Another campaign that sent the same subject to some of this campaign's recipients lately."""

    campaign: CampaignRecord
    recipients: int  # how many of this campaign's due recipients it sent to
    last: float  # when it last sent to one of them (Unix time)


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


def _explained(method: Callable[Concatenate[Journal, P], R]) -> Callable[Concatenate[Journal, P], R]:
    """A journal read whose SQLite failure (disk I/O error, damaged page) becomes a one-line CampaignError."""

    @functools.wraps(method)
    def read(self: Journal, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise explain(exc, self.path) from None

    return read


def journal_path(root: Path) -> Path:
    return root / ".broadsheet" / "state.db"


class Journal:
    """The SQLite journal. Use from one thread; the send lock (``lock=True`` or ``lock()``) keeps a second
    ``send`` out of the project.

    ``wait``: seconds each statement waits for another program's write lock; ``patience``: how long
    recording outcomes keeps trying before it saves them aside (see ``record``); ``create``: make the
    file when it does not exist; ``read_only`` (status): neither create it nor probe it for writing.
    """

    def __init__(
        self,
        path: Path,
        *,
        wait: float = WAIT,
        patience: float = PATIENCE,
        create: bool = True,
        lock: bool = False,
        read_only: bool = False,
    ):
        self.path = path
        self.wait, self.patience = wait, patience
        self._checkpointer: Checkpointer | None = None
        self._project_lock = ProjectLock(path.parent.parent)
        if lock:  # before the file is opened or created: a send never makes a journal under another's feet
            self._project_lock.acquire()
        try:
            self.db = open_journal(path, wait=wait, create=create, read_only=read_only)
            self.uid = journal_uid(self.db, path)
        except BaseException:
            self._project_lock.release()
            raise
        self._identity = _file_identity(path)
        self._mode = _file_mode(path)  # a journal written back after its removal gets it again
        self._blocked: CampaignError | None = None  # set once the journal cannot be written any more
        self._marked: set[int] = set()  # campaigns whose sent-mark this journal has written (``claim``)

    @classmethod
    def for_project(cls, root: Path, **options: Any) -> Journal:
        return cls(journal_path(root), **options)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()  # its last checkpoint, before the connection goes
        self.db.close()
        self._release_room()
        self.unlock()

    def checkpoints_aside(self) -> Callable[[], None]:
        """From now on this connection's commits never copy the WAL into the file (``checkpoint``); returns
        what starts the thread that does. Start it once no process is to be forked any more (after the list
        is loaded: its part readers fork from a process of one thread); closing the journal stops it."""
        if self._checkpointer is not None:  # an earlier issue's (send --due): stopped, so this load may fork
            self._checkpointer.stop()
        without_autocheckpoint(self.db)
        self._checkpointer = Checkpointer(self.path)
        return self._checkpointer.start

    def keep_room(self) -> None:
        """Set ``ROOM`` bytes of disk aside (``<journal>.room``) for the outcomes of the messages in flight when
        the disk fills up: a full disk stops the send with everyone recorded. A disk without that room is
        refused now, before anything is sent. Closing the journal gives the room back."""
        path = room_path(self.path)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(descriptor, 0, ROOM)
            finally:
                os.close(descriptor)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise explain(exc, self.path) from None

    def _release_room(self) -> None:
        room_path(self.path).unlink(missing_ok=True)

    def unlock(self) -> None:
        """Let another send in (closing the journal does this too)."""
        self._project_lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def lock(self) -> None:
        """Hold the send lock for this project, or refuse: two sends must not share a journal."""
        self._project_lock.acquire()

    def send_running(self) -> bool:
        """Whether another process holds the send lock now."""
        return not self._project_lock.is_free()

    def check_in_place(self) -> None:
        """Raise JournalGone unless the file at ``path`` is still the one this connection writes to.

        A journal removed under a running send (``rm -rf .broadsheet``) is written back first, from this
        connection, which then writes to it: the send stops, and the next one resumes instead of mailing
        everyone again. A journal replaced by another file is left alone; outcomes go aside (``record``).
        """
        now = _file_identity(self.path)
        if now == self._identity:
            return
        if now is None and self._write_back():
            raise JournalGone(
                "the send journal was removed while this send ran: written back from the running send, which "
                "stopped", where=str(self.path),
                fix="run the same command to resume; delete the journal only when no send runs (it is what "
                "keeps anyone from being mailed twice)",
            )  # fmt: skip
        what = "removed" if now is None else "replaced by another file"
        raise JournalGone(
            f"the send journal was {what} while this send ran; stopped", where=str(self.path),
            fix="put the journal back and run the same command to resume (a new journal forgets who was sent)",
        )  # fmt: skip

    def _write_back(self) -> bool:
        """Copy this connection's journal (still readable after its file was unlinked) to ``path``, with the
        file's mode, and continue on the copy. False when that cannot be done (outcomes then go aside).

        The connections to the removed file close before the copy takes its name: the last one to close
        deletes ``<name>-wal`` by name, which would by then be the copy's, with what it recorded since."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.restore")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.unlink(missing_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(descriptor, self._mode)
            finally:
                os.close(descriptor)
            copy = connect(temporary)
            try:
                self.db.backup(copy)
            finally:
                copy.close()
        except (OSError, sqlite3.Error):
            temporary.unlink(missing_ok=True)
            return False
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.db.close()
        try:
            os.link(temporary, self.path)  # never over a file that appeared meanwhile
            restored = open_journal(self.path, wait=self.wait)
        except (OSError, sqlite3.Error, CampaignError):
            return False
        finally:
            temporary.unlink(missing_ok=True)
        self.db, self._identity = restored, _file_identity(self.path)
        return True

    # -- campaigns ------------------------------------------------------------------------------

    @_explained
    def campaign(self, key: str, transport: str) -> CampaignRecord | None:
        row = self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE key = ? AND transport = ?", (key, transport)
        ).fetchone()
        return CampaignRecord(*row) if row else None

    @_explained
    def campaigns_for(self, key: str, slug: str = "") -> list[CampaignRecord]:
        """Every campaign of this issue (all transports); ``slug`` also finds ones begun before it had an id."""
        rows = self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE key = ? OR (key = ? AND issue_id = '') ORDER BY id",
            (key, slug),
        ).fetchall()
        return [CampaignRecord(*row) for row in rows]

    def start_campaign(
        self,
        key: str,
        transport: str,
        issue_dir: str,
        fingerprint: str,
        *,
        slug: str = "",
        issue_id: str = "",
        subject: str = "",
    ) -> tuple[CampaignRecord, bool]:
        """The campaign for this issue and transport, created if new. True when its list must be (re)loaded.

        An issue given an id after a send began (its campaigns keyed by folder name) keeps those campaigns.
        The folder, slug and subject are updated to the current ones: they describe, the key identifies.
        """
        slug = slug or key
        with self._transaction():
            if issue_id:
                self._adopt(issue_id, slug)
            self.db.execute(
                "INSERT INTO campaigns (key, issue_id, slug, transport, issue_dir, subject, list_fingerprint, created)"
                " VALUES (?, ?, ?, ?, ?, ?, '', datetime('now')) ON CONFLICT (key, transport) DO UPDATE SET"
                " slug = excluded.slug, issue_dir = excluded.issue_dir, subject = excluded.subject",
                (key, issue_id, slug, transport, issue_dir, subject),
            )
        record = self.current(key, transport)
        return record, record.list_fingerprint != fingerprint

    def _adopt(self, issue_id: str, slug: str) -> None:
        """Key the campaigns begun under the folder name ``slug`` (before the issue had an id) by the id."""
        self.db.execute(
            "UPDATE campaigns SET key = ?, issue_id = ? WHERE key = ? AND issue_id = ''"
            " AND transport NOT IN (SELECT transport FROM campaigns WHERE key = ?)",
            (issue_id, issue_id, slug, issue_id),
        )

    @_explained
    def recent_same_subject(
        self, campaign: CampaignRecord, *, days: float = RECENT_DAYS, now: float | None = None
    ) -> list[RecentSend]:
        """Other issues' campaigns with this subject that sent to this campaign's due recipients lately.

        One indexed join per such campaign (recipients are looked up by (campaign, email)), so it stays
        cheap for a million recipients. Outbox campaigns neither count nor are checked: they mail no one.
        """
        wanted = _same_subject(campaign.subject)
        if not delivers(campaign.transport) or not wanted:
            return []
        since = (time.time() if now is None else now) - days * 86400
        found = []
        for row in self.db.execute(
            f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE key <> ? AND {not_delivering_sql('transport')} ORDER BY id",
            (campaign.key,),
        ).fetchall():
            other = CampaignRecord(*row)
            if _same_subject(other.subject) != wanted:
                continue
            count, last = self.db.execute(
                "SELECT count(*), max(theirs.updated) FROM recipients AS mine"
                " JOIN recipients AS theirs ON theirs.campaign = ? AND theirs.email = mine.email"
                " WHERE mine.campaign = ? AND mine.state IN ('queued', 'deferred')"
                " AND theirs.state = 'sent' AND theirs.updated >= ?",
                (other.id, campaign.id, since),
            ).fetchone()
            if count:
                found.append(RecentSend(other, count, last))
        return found

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
            return self._move_in(
                campaign, fingerprint,
                f"SELECT :campaign, email, line, data, :generation FROM {staging.TABLE} WHERE true"
                " ORDER BY email COLLATE NOCASE, rowid",
            )  # fmt: skip

    def load_staged(self, campaign: CampaignRecord, fingerprint: str, files: Sequence[Path]) -> int:
        """``load_recipient_chunks`` for a list read in parts by other processes (``campaign.parts``): SQLite
        files each with a table ``sorted (email COLLATE NOCASE, line, data)`` whose primary key is (email,
        line). SQLite merges the sorted parts (no sort here); the smallest line of an address is kept."""
        with attached(self.db, files) as names:
            parts = " UNION ALL ".join(
                f"SELECT :campaign, email, line, data, :generation FROM {name}.sorted WHERE true" for name in names
            )
            return self._move_in(campaign, fingerprint, f"{parts} ORDER BY 2 COLLATE NOCASE, 3")

    def load_selected(self, campaign: CampaignRecord, fingerprint: str, selection: Selection) -> int:
        """``load_recipient_chunks`` for rows another room selects in SQL, with no Python per row (a send from
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
            before = self.db.total_changes
            self.db.execute(
                f"INSERT INTO recipients (campaign, email, line, data, generation) {select}"
                " ON CONFLICT (campaign, email) DO UPDATE SET line = excluded.line, data = excluded.data,"
                " generation = excluded.generation WHERE recipients.generation <> excluded.generation",
                {**(parameters or {}), "campaign": campaign.id, "generation": generation},
            )
            total = self.db.total_changes - before
            self.db.execute(
                "DELETE FROM recipients WHERE campaign = ? AND generation <> ? AND state IN ('queued', 'deferred')",
                (campaign.id, generation),
            )
            self.db.execute(
                "UPDATE campaigns SET list_fingerprint = ?, generation = ? WHERE id = ?",
                (fingerprint, generation, campaign.id),
            )
        return total

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

    def current(self, key: str, transport: str) -> CampaignRecord:
        record = self.campaign(key, transport)
        if record is None:
            raise CampaignError(f"no campaign for {key} over {transport}")
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

    @_explained
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

    # -- sent-marks: what a lost journal cannot take with it -------------------------------------

    def _mark_sent(self, campaign: CampaignRecord) -> None:
        """Before a campaign's first message leaves, note in ``sent/<key>.json`` beside the journal that this
        journal sent the issue over this transport (``lost_send`` reads it). Once per campaign and run."""
        if campaign.id in self._marked or not delivers(campaign.transport):
            return
        path = sent_mark_path(self.path, campaign.key)
        mark = read_sent_mark(path)
        transports = set(mark.get("transports", ())) if mark and mark.get("journal") == self.uid else set()
        if campaign.transport not in transports:
            since = mark.get("since") if mark and transports else None
            content = {
                "key": campaign.key,
                "journal": self.uid,
                "transports": sorted(transports | {campaign.transport}),
            }
            _write_whole(path, json.dumps({**content, "since": since or time.time()}).encode())
        self._marked.add(campaign.id)

    def lost_send(self, key: str, slug: str) -> None:
        """Raise CampaignError when a sent-mark says this issue was sent from a journal that is not this one, or
        that this journal no longer knows it (removed, replaced, restored from an older backup): a send would
        mail everyone again. ``send --resend-all`` does not ask."""
        path = sent_mark_path(self.path, key)
        mark = read_sent_mark(path)
        if mark is None:
            return
        known = any(delivers(c.transport) for c in self.campaigns_for(key, slug))
        if mark.get("journal") == self.uid and known:
            return
        over = ", ".join(str(name) for name in mark.get("transports", ())) or "a transport"
        since = mark.get("since")
        when = time.strftime(" on %Y-%m-%d", time.gmtime(since)) if isinstance(since, (int, float)) else ""
        raise CampaignError(
            f"this issue was sent over {over}{when}, but the send journal does not record it (removed, replaced "
            "or restored from an older backup): a send now would mail everyone again", where=str(path),
            fix=f"put back the {self.path.name} that sent it and run the same command to resume; "
            "to mail the whole list again anyway, add --resend-all",
        )  # fmt: skip

    def record(self, outcomes: Iterable[Outcome]) -> None:
        """Write what happened to claimed rows, in one transaction.

        Another program's write lock is waited out for ``patience`` seconds. When the outcomes cannot be
        written (lock held longer, journal removed or replaced), they are saved aside in ``<journal>.pending``
        — replayed by the next send before it recovers anything — and CampaignError says why: messages
        that went out stay recorded as sent, never turn ``unknown``.
        """
        outcomes = list(outcomes)
        if not outcomes:
            return
        moved = None
        try:
            if self._blocked is not None:
                raise self._blocked
            try:
                self.check_in_place()
            except JournalGone as exc:
                if _file_identity(self.path) != self._identity:
                    raise  # not written back: nowhere to write
                moved = exc  # written back: record there, then stop the campaign
            self._write_outcomes(outcomes)
        except CampaignError as exc:
            self._blocked = exc
            self._save_aside(outcomes)
            raise
        if moved is not None:
            raise moved

    def _write_outcomes(self, outcomes: list[Outcome]) -> None:
        now = time.time()
        self._write_patiently(
            "UPDATE recipients SET state = ?, detail = ?, message_id = ?, next_attempt = ?,"
            " attempts = attempts + ?, updated = ? WHERE id = ?",
            [(o.state, o.detail, o.message_id, o.next_attempt, int(o.counts_attempt), now, o.id) for o in outcomes],
        )  # fmt: skip

    def _write_patiently(self, statement: str, values: list[tuple[Any, ...]]) -> None:
        """One transaction of ``statement`` over ``values``, tried again through another program's write
        lock until ``patience`` runs out (then JournalLocked)."""
        deadline = time.monotonic() + self.patience
        reclaimed = False
        while True:
            try:
                with self._transaction():
                    self.db.executemany(statement, values)
                return
            except JournalLocked:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)  # each statement already waited `wait` seconds for the lock
            except JournalFull:
                if reclaimed:
                    raise
                reclaimed = True  # once: the room kept aside, and the WAL copied into the file, make space
                self._release_room()
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _save_aside(self, outcomes: list[Outcome]) -> None:
        """Append outcomes to ``<journal>.pending`` (flushed to disk); best effort when the folder is gone."""
        lines = "".join(json.dumps([self.uid, *astuple(o)]) + "\n" for o in outcomes)
        path = pending_path(self.path)
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:  # a line cut short is skipped by the replay; an empty file is not left to be read
            with contextlib.suppress(OSError):
                if path.stat().st_size == 0:
                    path.unlink()

    def replay_pending(self) -> int:
        """Write outcomes an earlier send saved aside into this journal (when they name it); returns how many."""
        path = pending_path(self.path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise explain(exc, path) from None
        outcomes = []
        for line in text.splitlines():
            try:
                uid, *values = json.loads(line)
                outcome = Outcome(*values)
            except (ValueError, TypeError):
                continue  # a line cut short by a crash while it was written
            if uid == self.uid:
                outcomes.append(outcome)
        self._write_outcomes(outcomes)
        path.unlink(missing_ok=True)
        return len(outcomes)

    @_explained
    def counts(self, campaign: CampaignRecord) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, count in self.db.execute(
            "SELECT state, count(*) FROM recipients WHERE campaign = ? GROUP BY state", (campaign.id,)
        ):
            counts[state] = count
        return counts

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
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise explain(exc, self.path) from None

    # -- what went out, for the daily limit (campaign/caps.py) ----------------------------------

    @_explained
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

    @_explained
    def first_sent(self) -> float | None:
        """When the first message the journal knows went out over a real transport (Unix time), or None."""
        row = self.db.execute(  # walks the recipients_sent index in time order and stops at the first
            "SELECT updated FROM recipients INDEXED BY recipients_sent WHERE state = 'sent' AND attempts > 0"
            f" AND campaign IN (SELECT id FROM campaigns WHERE {not_delivering_sql('transport')}) ORDER BY updated LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    @_explained
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

    @_explained
    def email_of_row(self, row: int) -> str | None:
        """The address of recipient row ``row`` (any campaign), or None: for VERP bounce tokens."""
        found = self.db.execute("SELECT email FROM recipients WHERE id = ?", (row,)).fetchone()
        return found[0] if found else None

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

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db, self.path)


class JournalGone(CampaignError):
    """The journal file was removed or replaced under a running send."""


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error; SQLite failures become one-line CampaignErrors."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db = db
        self.path = path

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except sqlite3.Error as failure:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise explain(exc if isinstance(exc, sqlite3.Error) else failure, self.path) from None
        if isinstance(exc, sqlite3.Error):
            raise explain(exc, self.path) from None


def sent_mark_path(path: Path, key: str) -> Path:
    """Where the sent-mark of campaign ``key`` is kept: ``sent/`` beside the journal (not ``state.db*``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:100]
    if name != key:  # two keys must not share a file
        name += "-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    return path.parent / "sent" / f"{name}.json"


def read_sent_mark(path: Path) -> dict[str, Any] | None:
    """A sent-mark's content; None when there is none. One that cannot be read counts as a mark (of an
    unknown journal): it says no more than that the issue went."""
    try:
        mark = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return mark if isinstance(mark, dict) else {}


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` into ``path`` whole or not at all: a file beside it, flushed to disk, renamed over it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise explain(exc, path) from None


def room_path(path: Path) -> Path:
    """The disk space a running send keeps aside for recording outcomes on a full disk (``keep_room``)."""
    return path.with_name(path.name + ".room")


def pending_path(path: Path) -> Path:
    """Where outcomes that could not be written are kept until the next send writes them."""
    return path.with_name(path.name + ".pending")


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _file_mode(path: Path) -> int:
    """The permission bits of ``path`` (0o600, as a new journal has, when it cannot be read)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o600


def _same_subject(subject: str) -> str:
    """Subjects compared without case and spacing differences."""
    return " ".join(subject.split()).casefold()


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
