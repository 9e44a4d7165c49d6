"""WAL checkpoints off the path that writes: a thread of their own instead of inside a COMMIT.

SQLite's automatic checkpoint (WAL → database file, with an fsync) runs inside the COMMIT that takes the
write-ahead log past 1,000 pages, in the thread that commits. In serve that COMMIT holds the store's write
lock, so every request that writes now and then waits behind it: the slowest one-click unsubscribes. In send it
is the commit that ends a long list's load and then every thousandth page of claims and outcomes. Those connections turn it off
(:func:`without_autocheckpoint`) and a :class:`Checkpointer` of their own checkpoints (PASSIVE: it never
blocks a writer or a reader) every ``interval`` seconds. Other programs (the CLI) keep SQLite's default.

Under writes that never pause (serve's one-clicks in a burst) a PASSIVE checkpoint is always overtaken by
new frames, so no commit ever finds the WAL all moved and starts it over: it grows by the whole burst. With
``restart_frames``, once a long WAL is all moved, a RESTART checkpoint holds writers off for the few frames
since (and ``RESTART_WAIT_MS`` at most for a reader), and the next commit starts the WAL over.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .connect import connect

INTERVAL = 1.0  # seconds between checkpoints: often enough to keep serve's WAL small
WAIT = 1.0  # seconds a checkpoint waits for a lock
RESTART_WAIT_MS = 20  # how long a RESTART checkpoint (writers held off) waits for a reader to finish


def without_autocheckpoint(db: sqlite3.Connection) -> None:
    """This connection's commits never checkpoint (the Checkpointer does)."""
    db.execute("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    """A daemon thread with its own connection that checkpoints ``path`` every ``interval`` seconds."""

    def __init__(self, path: Path, interval: float = INTERVAL, *, restart_frames: int = 0) -> None:
        """``restart_frames``: once the WAL holds that many frames, all moved, start it over (0: never)."""
        self.path = path
        self.interval = interval
        self.restart_frames = restart_frames
        self.wait = WAIT
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
            db = connect(self.path, wait=self.wait)
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
            frames, moved = self.checkpoint(db)
            if self.restart_frames and frames >= self.restart_frames and moved == frames:
                self.restart(db)
        except sqlite3.Error:  # busy or locked this time: the next round tries again
            pass

    def restart(self, db: sqlite3.Connection) -> None:
        """Have the next write start the WAL over: the few frames written since the PASSIVE checkpoint
        moved, with writers held off meanwhile (for ``RESTART_WAIT`` at most while a reader finishes)."""
        db.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        try:
            db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            db.execute(f"PRAGMA busy_timeout={int(self.wait * 1000)}")
