"""What every part of the journal shares: its records, its connection and the file under it.

``JournalBase`` holds the connection (``Journal`` opens it), runs transactions, and keeps the file in
place under a running send: a removed journal is written back, a full disk meets the room kept aside,
and the WAL is checkpointed by a thread of its own. The jobs built on it (``campaigns``,
``recipients``, ``outcomes``, ``reports``) are composed by ``journal.Journal``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from broadsheet.core.errors import CampaignError

from ..db import connect
from ..db.checkpoint import Checkpointer, without_autocheckpoint
from .file import JournalFull, JournalLocked, explain, open_journal
from .lock import ProjectLock

STATES = ("queued", "sending", "sent", "failed", "deferred", "unknown", "skipped")
WAIT = 5.0  # seconds SQLite waits for another program's write lock before a statement gives up
PATIENCE = 60.0  # seconds recording outcomes keeps trying through another program's lock
ROOM = 1 << 20  # bytes kept aside during a send for the outcomes in flight when the disk fills up

P = ParamSpec("P")
R = TypeVar("R")
J = TypeVar("J", bound="JournalBase")


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


def explained(method: Callable[Concatenate[J, P], R]) -> Callable[Concatenate[J, P], R]:
    """A journal read whose database failure (disk I/O error, damaged page, lost server) becomes a one-line
    CampaignError."""

    @functools.wraps(method)
    def read(self: J, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except self._errors() as exc:
            raise self._explain(exc) from None

    return read


class JournalBase:
    """The connection to the journal and the file under it; ``journal.Journal`` opens both."""

    path: Path
    wait: float
    patience: float
    db: sqlite3.Connection
    uid: str
    _checkpointer: Checkpointer | None
    _project_lock: ProjectLock
    _identity: tuple[int, int] | None
    _mode: int
    _blocked: CampaignError | None  # set once the journal cannot be written any more
    _marked: set[int]  # campaigns whose sent-mark this journal has written (``claim``)
    _leasing: bool = False  # this connection leases rows as one of several workers (``workers``)
    _room_kept: bool = False  # this journal set the room aside (``keep_room``): its close may give it back
    # what differs in the SQL of the engines (``postgres.PostgresJournal`` sets PostgreSQL's)
    BY_SENT_TIME = " INDEXED BY recipients_sent"  # walk the sent rows in time order

    @property
    def where(self) -> str:
        """What errors name: the journal's file (PostgreSQL: its database)."""
        return str(self.path)

    def _errors(self) -> tuple[type[Exception], ...]:
        """The failures of this journal's database that ``_explain`` turns into one line."""
        return (sqlite3.Error, UnicodeDecodeError)

    def _explain(self, exc: BaseException) -> CampaignError:
        return explain(exc, self.path)

    def whole_number(self, expression: str) -> str:
        """SQL: ``expression`` (not negative) cut to a whole number."""
        return f"CAST({expression} AS INTEGER)"

    def budget_lock(self) -> None:
        """Inside ``lease``'s transaction, before the shared budget is read: SQLite's ``BEGIN IMMEDIATE``
        already keeps every other worker's lease out until it commits."""

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
        refused now, before anything is sent. Closing the journal gives the room back (the last worker's, when
        several share it: ``send --worker``)."""
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
        self._room_kept = True

    def _release_room(self) -> None:
        room_path(self.path).unlink(missing_ok=True)

    def check_in_place(self) -> None:
        """Raise JournalGone unless the file at ``path`` is still the one this connection writes to.

        A journal removed under a running send (``rm -rf .broadsheet``) is written back first, from this
        connection, which then writes to it: the send stops, and the next one resumes instead of mailing
        everyone again. A journal replaced by another file is left alone; outcomes go aside (``record``).
        """
        now = file_identity(self.path)
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
        self.db, self._identity = restored, file_identity(self.path)
        return True

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db, self.path)

    def _write_patiently(self, statement: str, values: list[tuple[Any, ...]], *, after: str = "") -> None:
        """One transaction of ``statement`` over ``values`` (and of ``after`` over each value's last item), tried
        again through another program's write lock until ``patience`` runs out (then JournalLocked)."""
        deadline = time.monotonic() + self.patience
        reclaimed = False
        while True:
            try:
                with self._transaction():
                    self.db.executemany(statement, values)
                    if after:
                        self.db.executemany(after, [value[-1:] for value in values])
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


def room_path(path: Path) -> Path:
    """The disk space a running send keeps aside for recording outcomes on a full disk (``keep_room``)."""
    return path.with_name(path.name + ".room")


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def file_mode(path: Path) -> int:
    """The permission bits of ``path`` (0o600, as a new journal has, when it cannot be read)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o600
