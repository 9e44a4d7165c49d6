"""The send lock: one ``broadsheet send`` per project (per database, for a journal in PostgreSQL) at a time.

The lock is an flock on the project folder itself (the folder holding ``broadsheet.toml`` and
``.broadsheet/``), not on a file inside ``.broadsheet/``: deleting or replacing that folder during a send
cannot let a second send in. The kernel drops the lock when the process ends, however it ends. A journal
in PostgreSQL is locked in the database instead (``AdvisoryLock``): its sends may run on several machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any, Self

from broadsheet.core.errors import CampaignError

from ..db import postgres

RETRY_SECONDS = 0.05  # between tries of an advisory lock waited for


class SendRunning(CampaignError):
    """Another process holds the send lock of this project (``send --due`` then leaves quietly)."""


class HeldLock:
    """What both send locks share: held as a context, from ``acquire()`` to ``release()``."""

    def acquire(self, *, shared: bool = False) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    @property
    def held(self) -> bool:
        raise NotImplementedError

    def is_free(self) -> bool:
        """Whether no other process holds the lock now (taken and released at once)."""
        if self.held:
            return True
        try:
            self.acquire()
        except CampaignError:
            return False
        self.release()
        return True

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class ProjectLock(HeldLock):
    """Held from ``acquire()`` to ``release()``; ``acquire`` refuses when another process holds it."""

    def __init__(self, folder: Path, *, wait: bool = False):
        self.folder = folder
        self.wait = wait  # wait for the lock instead of refusing
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, shared: bool = False) -> None:
        """Take the lock, or refuse; ``shared``: together with other shared holders (``send --worker``)."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
        except OSError as exc:
            raise CampaignError(
                f"cannot open the project folder to take the send lock: {exc.strerror}",
                where=str(self.folder),
                fix="make the project folder readable by the user running broadsheet",
            ) from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise SendRunning(
                "another 'broadsheet send' is running for this project",
                where=str(self.folder),
                fix="wait for it to finish, or stop it with Ctrl-C",
            ) from None
        except OSError as exc:
            os.close(fd)
            raise CampaignError(
                f"cannot take the send lock: {exc.strerror}",
                where=str(self.folder),
                fix="keep the project on a local file system that supports flock",
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def last(self) -> bool:
        """Whether no other process holds the lock with this one (the last ``send --worker``); True when it is
        not held. Only as the lock is let go: flock may drop a shared lock while it tries for an exclusive one."""
        if self._fd is None:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


class AdvisoryLock(HeldLock):
    """``ProjectLock`` for a journal in PostgreSQL: a session-level advisory lock ``key`` on the journal's own
    connection, so a send on one machine keeps one on another out. It ends with the connection, however the
    process ends (the server drops a dead client's session)."""

    def __init__(self, db: Any, key: int, *, where: str, wait: bool = False):
        self.db = db  # a postgres.Connection of the journal's own (never a pooled one: the lock would outlive it)
        self.key = key
        self.where = where
        self.wait = wait  # wait for the lock instead of refusing
        self._shared: bool | None = None  # how it is held; None: not held

    @property
    def held(self) -> bool:
        return self._shared is not None

    def acquire(self, *, shared: bool = False) -> None:
        """Take the lock, or refuse (``wait``: wait for it); ``shared``: with other shared holders."""
        if self._shared is not None:
            return
        kind = "_shared" if shared else ""
        while not self._try(f"SELECT pg_try_advisory_lock{kind}(?)"):
            if not self.wait:
                raise SendRunning(
                    "another 'broadsheet send' is running on this journal's database", where=self.where,
                    fix="wait for it to finish, or stop it with Ctrl-C",
                )  # fmt: skip
            time.sleep(RETRY_SECONDS)
        self._shared = shared

    def _try(self, statement: str) -> bool:
        try:
            return bool(self.db.execute(statement, (self.key,)).fetchone()[0])
        except postgres.errors() as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CampaignError(
                f"cannot take the send lock: {first}", where=self.where,
                fix="check that the database server runs, then run the same command again",
            ) from None  # fmt: skip

    def release(self) -> None:
        """Let go; a connection already lost let go with its session."""
        if self._shared is not None:
            kind = "_shared" if self._shared else ""
            self._shared = None
            if self.db.raw is not None and not self.db.raw.closed:
                with contextlib.suppress(*postgres.errors()):
                    self.db.execute(f"SELECT pg_advisory_unlock{kind}(?)", (self.key,))

    def last(self) -> bool:
        """True: nothing is kept aside for the holders to give back (``ProjectLock.last``)."""
        return True
