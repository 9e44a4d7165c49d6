"""The campaign journal: SQLite at ``.broadsheet/state.db`` beside broadsheet.toml (WAL).

One campaign per issue identity and transport. The identity (``key``) is the issue's front-matter ``id``
(``broadsheet new`` writes one), so renaming or moving the folder, or editing the content, resumes the
same campaign; an issue without an id falls back to its folder name. One row per recipient with its state:

    queued → sending → sent | failed | deferred (→ sending again) ; sending left by a crash → unknown
    sending → skipped: the subscriber store suppressed the address after the campaign started (never mailed)

A row is marked ``sending`` (and committed) before its message goes out, so a crash can never lose track
of one: at the next start, rows still in ``sending`` become ``unknown``. The subscriber's own fields are
kept in the row (``data``), so a resumed send composes from the journal alone. The file itself is made,
recognised and migrated by ``file``; the send lock is ``lock.ProjectLock``.

``Journal`` is one class per job (``campaigns``, ``recipients``, ``outcomes``, ``reports``) over ``base``:
the records, the connection and the file kept in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import (
    PATIENCE,
    ROOM,
    STATES,
    WAIT,
    CampaignRecord,
    JournalGone,
    Outcome,
    RecentSend,
    Row,
    file_identity,
    file_mode,
    room_path,
)
from .campaigns import RECENT_DAYS, Campaigns, read_sent_mark, sent_mark_path
from .file import journal_uid, open_journal
from .lock import ProjectLock
from .outcomes import Outcomes, pending_path
from .recipients import LOAD_CHUNK
from .reports import Reports
from .workers import WorkerRecord, Workers

__all__ = [
    "LOAD_CHUNK",
    "PATIENCE",
    "RECENT_DAYS",
    "ROOM",
    "STATES",
    "WAIT",
    "CampaignRecord",
    "Journal",
    "JournalGone",
    "Outcome",
    "RecentSend",
    "Row",
    "WorkerRecord",
    "journal_path",
    "pending_path",
    "read_sent_mark",
    "room_path",
    "sent_mark_path",
]


def journal_path(root: Path) -> Path:
    return root / ".broadsheet" / "state.db"


class Journal(Workers, Campaigns, Outcomes, Reports):
    """The SQLite journal. Use from one thread; the send lock (``lock=True`` or ``lock()``) keeps a second
    ``send`` out of the project.

    ``wait``: seconds each statement waits for another program's write lock; ``patience``: how long
    recording outcomes keeps trying before it saves them aside (see ``record``); ``create``: make the
    file when it does not exist; ``read_only`` (status): neither create it nor probe it for writing;
    ``shared``: the lock is shared with other ``send --worker`` processes (and still keeps a plain send out).
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
        shared: bool = False,
    ):
        self.path = path
        self.wait, self.patience = wait, patience
        self._checkpointer = None
        self._project_lock = ProjectLock(path.parent.parent)
        if lock:  # before the file is opened or created: a send never makes a journal under another's feet
            self._project_lock.acquire(shared=shared)
        try:
            self.db = open_journal(path, wait=wait, create=create, read_only=read_only)
            self.uid = journal_uid(self.db, path)
        except BaseException:
            self._project_lock.release()
            raise
        self._identity = file_identity(path)
        self._mode = file_mode(path)  # a journal written back after its removal gets it again
        self._blocked = None
        self._marked = set()

    @classmethod
    def for_project(cls, root: Path, **options: Any) -> Journal:
        return cls(journal_path(root), **options)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()  # its last checkpoint, before the connection goes
        self.db.close()
        if self._room_kept and self._project_lock.last():  # others still sending keep the room
            self._release_room()
        self.unlock()

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

    def preparing(self) -> ProjectLock:
        """A lock that workers of one campaign take in turn to set it up (load the list, recover rows):
        held as a context, waited for."""
        return ProjectLock(self.path.parent, wait=True)

    def send_running(self) -> bool:
        """Whether another process holds the send lock now."""
        return not self._project_lock.is_free()
