"""One migration runner for every database, SQLite or PostgreSQL: numbered steps, the schema's version
in ``PRAGMA user_version`` (SQLite) or in the ``schema_versions`` table under the schema's name (PostgreSQL,
where the journal and the store may share one database).

A database's :class:`Schema` lists its steps (``steps[n]`` brings version ``n`` to ``n + 1``), written for
SQLite (``dialect.postgres_ddl`` turns them into PostgreSQL's). The runner reads the version without a lock;
when it is behind, it takes the write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped
advisory lock, so two processes never migrate at once), reads it again (another process may have migrated
meanwhile), and runs the missing steps, the schema's ``stamp`` and the new version in one transaction: a
database is migrated whole or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from .dialect import postgres_ddl

Database: TypeAlias = Any  # a sqlite3.Connection, or a postgres.Connection that speaks as one
VERSIONS = "schema_versions"  # PostgreSQL: name -> version of each schema in the database
MIGRATION_LOCK = 0x62726F6164  # the advisory lock key every migration takes (b"broad")


@dataclass(frozen=True)
class Schema:
    """``steps``: SQL per version (statements ending ``;`` and a line break). ``version``: the database's
    version (reads ``user_version`` or ``schema_versions`` unless given; a schema recognises older markers or
    refuses a database here). ``stamp``: run at the end of every migration (meta rows, ``application_id``).
    ``name``: the schema's row in ``schema_versions`` (PostgreSQL)."""

    steps: tuple[str, ...]
    version: Callable[[Database], int] | None = None
    stamp: Callable[[Database], None] | None = None
    name: str = ""

    @property
    def current(self) -> int:
        return len(self.steps)

    def read_version(self, db: Database) -> int:
        if self.version is not None:
            return self.version(db)
        return postgres_version(db, self.name) if is_postgres(db) else user_version(db)


def is_postgres(db: Database) -> bool:
    return getattr(db, "engine", "sqlite") == "postgresql"


def user_version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def postgres_version(db: Database, name: str) -> int:
    """The version of schema ``name`` in a PostgreSQL database; 0 when it has none."""
    if db.execute(f"SELECT to_regclass('{VERSIONS}')").fetchone()[0] is None:
        return 0
    row = db.execute(f"SELECT version FROM {VERSIONS} WHERE name = ?", (name,)).fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def migrate(db: Database, schema: Schema, *, probe: bool = False) -> None:
    """Bring ``db`` to ``schema.current``. ``probe`` (SQLite): take the write lock even when nothing is to
    be done, so that a read-only file or folder shows now rather than at the first write."""
    if is_postgres(db):
        _migrate_postgres(db, schema)
        return
    if schema.read_version(db) == schema.current:
        if probe:
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"PRAGMA user_version={schema.current}")
            db.execute("COMMIT")
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        _run_steps(db, schema, lambda sql: sql)
        db.execute(f"PRAGMA user_version={schema.current}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate_postgres(db: Database, schema: Schema) -> None:
    assert schema.name, "a schema kept in PostgreSQL needs a name"
    if schema.read_version(db) == schema.current:
        return
    db.execute("BEGIN")
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))  # held until COMMIT or ROLLBACK
        db.execute(f"CREATE TABLE IF NOT EXISTS {VERSIONS} (name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        _run_steps(db, schema, postgres_ddl)
        db.execute(
            f"INSERT INTO {VERSIONS} (name, version) VALUES (?, ?)"  # noqa: S608 -- a constant table name
            " ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            (schema.name, schema.current),
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _run_steps(db: Database, schema: Schema, dialect: Callable[[str], str]) -> None:
    """Inside the migration's transaction: the missing steps, then the stamp."""
    for step in schema.steps[schema.read_version(db) :]:
        for statement in dialect(step).split(";\n"):  # not executescript: it would commit halfway
            if statement.strip():
                db.execute(statement)
    if schema.stamp is not None:
        schema.stamp(db)
