"""Opening a SQLite file: the one place that calls ``sqlite3.connect``.

Connections are in autocommit mode (``isolation_level=None``: every write says BEGIN itself) and may be
handed between threads (each owner serialises its use). Files shared by processes (the journal, the store)
run in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of the process, a power cut may lose
the last few.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def connect(
    path: Path | str, *, wait: float = 0.0, read_only: bool = False, must_exist: bool = False
) -> sqlite3.Connection:
    """A connection to ``path`` (created when absent, unless ``read_only`` or ``must_exist``) that waits
    ``wait`` seconds for another connection's lock. Opened by URI, so other files can be attached by URI."""
    mode = "ro" if read_only else "rw" if must_exist else "rwc"
    uri = f"{Path(path).resolve().as_uri()}?mode={mode}"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=wait)
    try:
        db.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
    except BaseException:
        db.close()
        raise
    return db


def use_wal(db: sqlite3.Connection, *, foreign_keys: bool = False, secure_delete: bool = False) -> None:
    """The standard PRAGMAs of a file shared by processes: WAL, ``synchronous=NORMAL``; foreign keys enforced
    and erased data overwritten where asked."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if foreign_keys:
        db.execute("PRAGMA foreign_keys=ON")
    if secure_delete:
        db.execute("PRAGMA secure_delete=ON")


def scratch(path: Path, *, cache_kib: int) -> sqlite3.Connection:
    """A private temporary file nobody else opens: no rollback journal, no syncing, a bounded page cache."""
    db = connect(path)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", f"cache_size={-cache_kib}"):
        db.execute(f"PRAGMA {pragma}")
    return db


def scratch_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    """(rowid, every column) of the table ``rows`` of a scratch file, in rowid order (read-only)."""
    db = connect(path, read_only=True)
    try:
        yield from db.execute("SELECT rowid, * FROM rows ORDER BY rowid")
    finally:
        db.close()


def attached_uri(path: Path, *, read_only: bool = True) -> str:
    """The URI to ``ATTACH`` ``path`` by (read-only unless asked; the connection must be opened by ``connect``)."""
    return f"{Path(path).resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
