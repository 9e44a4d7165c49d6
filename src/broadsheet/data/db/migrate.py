"""One migration runner for every database: numbered steps, the schema version in ``PRAGMA user_version``.

A database's :class:`Schema` lists its steps (``steps[n]`` brings version ``n`` to ``n + 1``). The runner
reads the version without a lock; when it is behind, it takes the write lock, reads it again (another
process may have migrated meanwhile), and runs the missing steps, the schema's ``stamp`` and the new
version in one transaction: a file is migrated whole or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Schema:
    """``steps``: SQL per version (statements ending ``;`` and a line break). ``version``: the file's version
    (reads ``user_version`` unless given; a schema recognises older markers or refuses a file here).
    ``stamp``: run at the end of every migration (meta rows, ``application_id``)."""

    steps: tuple[str, ...]
    version: Callable[[sqlite3.Connection], int] | None = None
    stamp: Callable[[sqlite3.Connection], None] | None = None

    @property
    def current(self) -> int:
        return len(self.steps)

    def read_version(self, db: sqlite3.Connection) -> int:
        return self.version(db) if self.version is not None else user_version(db)


def user_version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(db: sqlite3.Connection, schema: Schema, *, probe: bool = False) -> None:
    """Bring ``db`` to ``schema.current``. ``probe``: take the write lock even when nothing is to be done,
    so that a read-only file or folder shows now rather than at the first write."""
    if schema.read_version(db) == schema.current:
        if probe:
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"PRAGMA user_version={schema.current}")
            db.execute("COMMIT")
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in schema.steps[schema.read_version(db) :]:
            for statement in step.split(";\n"):  # not executescript: it would commit halfway
                if statement.strip():
                    db.execute(statement)
        if schema.stamp is not None:
            schema.stamp(db)
        db.execute(f"PRAGMA user_version={schema.current}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
