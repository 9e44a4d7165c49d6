"""WAL checkpoints off the path that writes: a thread of their own instead of inside a COMMIT.

SQLite's automatic checkpoint (WAL → database file, with an fsync) runs inside the COMMIT that takes the
write-ahead log past 1,000 pages, in the thread that commits. In serve that COMMIT holds the store's write
lock, so every request that writes now and then waits behind it: the slowest one-click unsubscribes. In send it
is the commit that ends a long list's load and then every thousandth page of claims and outcomes. Those connections turn it off
(:func:`without_autocheckpoint`) and a :class:`Checkpointer` of their own checkpoints (PASSIVE: it never
blocks a writer or a reader) every ``interval`` seconds. Other programs (the CLI) keep SQLite's default.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .connect import connect

INTERVAL = 1.0  # seconds between checkpoints: often enough to keep serve's WAL small


def without_autocheckpoint(db: sqlite3.Connection) -> None:
    """This connection's commits never checkpoint (the Checkpointer does)."""
    db.execute("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    """A daemon thread with its own connection that checkpoints ``path`` every ``interval`` seconds."""

    def __init__(self, path: Path, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once; later calls do nothing)."""
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"checkpoint-{self.path.name}", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)

    def checkpoint(self, db: sqlite3.Connection) -> tuple[int, int]:
        """(frames in the WAL, frames moved to the database file) after one PASSIVE checkpoint."""
        _busy, frames, moved = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames, moved

    def _run(self) -> None:
        """Checkpoint until stopped, then once more. A failure (busy, a full disk, a removed file) is left to the
        writers, whose own statements fail and say so in one line: the WAL keeps every commit meanwhile."""
        try:
            db = connect(self.path, wait=1.0)
        except sqlite3.Error:
            return
        try:
            while not self._stop.wait(self.interval):
                self._try(db)
            self._try(db)
        finally:
            db.close()

    def _try(self, db: sqlite3.Connection) -> None:
        try:
            self.checkpoint(db)
        except sqlite3.Error:  # busy or locked this time: the next round tries again
            pass
