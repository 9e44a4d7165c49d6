"""What a pass over a list must remember about every address, on disk instead of in memory.

A Python set of addresses grows with the list; a temporary SQLite file with a bounded page cache keeps
memory flat whatever the list's length. The file lives in a fresh temporary
folder (never in the project: a dry run writes nothing there) and goes when the ledger is closed.
Every question is asked a chunk at a time, so a row costs a few B-tree steps inside SQLite, not a
Python round trip each.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from .connect import scratch

CACHE_KIB = 16_384  # the page cache (16 MiB): what bounds the memory, however many addresses
PARAMETERS = 500  # addresses per ``IN (…)`` query

SCHEMA = """
CREATE TABLE suppressed (key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE opted_out (key TEXT PRIMARY KEY, status TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID;
"""


class Ledger:
    """Suppressed addresses, opted-out addresses (-> their status, the first one given wins) and the
    addresses already handed on, all lower-cased keys. A context manager; ``close()`` removes the file."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="broadsheet-ledger-"))
        self.path = self._folder / "ledger.db"
        self.db = scratch(self.path, cache_kib=CACHE_KIB)
        self.db.executescript(SCHEMA)
        self.has_suppressed = False
        self.has_opted_out = False

    def close(self) -> None:
        self.db.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def add_suppressed(self, keys: Iterable[str]) -> None:
        self._insert("INSERT OR IGNORE INTO suppressed (key) VALUES (?)", ((key,) for key in keys))
        self.has_suppressed = self._any("SELECT 1 FROM suppressed LIMIT 1")

    def add_opted_out(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(key, status) pairs; a key's first status is kept (as ``dict.setdefault`` would)."""
        self._insert("INSERT OR IGNORE INTO opted_out (key, status) VALUES (?, ?)", pairs)
        self.has_opted_out = self._any("SELECT 1 FROM opted_out LIMIT 1")

    def suppressed(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` are suppressed."""
        if not self.has_suppressed:
            return set()
        return {key for (key,) in self._select("SELECT key FROM suppressed WHERE key IN ({})", keys)}

    def opted_out(self, keys: list[str]) -> dict[str, str]:
        """Which of ``keys`` are opted out, and how."""
        if not self.has_opted_out:
            return {}
        return {
            key: status for key, status in self._select("SELECT key, status FROM opted_out WHERE key IN ({})", keys)
        }

    def seen(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` were marked seen before."""
        return {key for (key,) in self._select("SELECT key FROM seen WHERE key IN ({})", keys)}

    def mark_seen(self, keys: Iterable[str]) -> None:
        keys = sorted(keys)  # in order: a sorted chunk walks the B-tree once instead of jumping about in it
        if not keys:
            return
        self._insert("INSERT OR IGNORE INTO seen (key) VALUES (?)", ((key,) for key in keys))

    def _insert(self, statement: str, rows: Iterable[tuple[str, ...]]) -> None:
        self.db.execute("BEGIN")
        try:
            self.db.executemany(statement, rows)
        finally:
            self.db.execute("COMMIT")

    def _any(self, query: str) -> bool:
        return self.db.execute(query).fetchone() is not None

    def _select(self, query: str, keys: list[str]) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        for start in range(0, len(keys), PARAMETERS):
            part = keys[start : start + PARAMETERS]
            found.extend(self.db.execute(query.format(",".join("?" * len(part))), part))
        return found
