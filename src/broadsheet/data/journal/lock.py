"""The send lock: one ``broadsheet send`` per project at a time.

The lock is an flock on the project folder itself (the folder holding ``broadsheet.toml`` and
``.broadsheet/``), not on a file inside ``.broadsheet/``: deleting or replacing that folder during a send
cannot let a second send in. The kernel drops the lock when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from broadsheet.core.errors import CampaignError


class SendRunning(CampaignError):
    """Another process holds the send lock of this project (``send --due`` then leaves quietly)."""


class ProjectLock:
    """Held from ``acquire()`` to ``release()``; ``acquire`` refuses when another process holds it."""

    def __init__(self, folder: Path, *, wait: bool = False):
        self.folder = folder
        self.wait = wait  # wait for the lock instead of refusing
        self._fd: int | None = None

    def __enter__(self) -> ProjectLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

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

    def is_free(self) -> bool:
        """Whether no other process holds the lock now (taken and released at once)."""
        if self._fd is not None:
            return True
        try:
            self.acquire()
        except CampaignError:
            return False
        self.release()
        return True
