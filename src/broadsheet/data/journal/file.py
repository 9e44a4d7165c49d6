"""The journal's file: created whole, recognised before use, migrated in place, failures explained.

A journal is ours when its SQLite header carries our ``application_id``; ``user_version`` is its schema
version. A journal written before these were set (schema 1) is recognised by its tables. Anything else —
an empty file, another program's database, a file that is not a database — is an error: starting afresh
over it would forget who was sent and mail them again.

Every SQLite failure becomes one line naming the file and the fix (read-only file, read-only folder, held
by another program, disk full), through ``explain``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
import uuid
from pathlib import Path

from broadsheet.core.errors import CampaignError

from ..db import Schema, connect, migrate, use_wal

APPLICATION_ID = 0x42534A31  # "BSJ1": this file is a broadsheet journal
SQLITE_HEADER = b"SQLite format 3\x00"
LOST_WARNING = "a new journal forgets who was sent, and the next send mails them again"

SCHEMA = """
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,                       -- the issue's identity: its front-matter id, else the folder name
    issue_id TEXT NOT NULL DEFAULT '',       -- the front-matter id when the issue has one
    slug TEXT NOT NULL,                      -- the folder name at the last send (shown, not an identity)
    transport TEXT NOT NULL,
    issue_dir TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',        -- the subject at the last send (for the recent-send check)
    list_fingerprint TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    UNIQUE (key, transport)
);
CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    campaign INTEGER NOT NULL REFERENCES campaigns(id),
    email TEXT NOT NULL COLLATE NOCASE,
    line INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '{}',
    generation INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    message_id TEXT NOT NULL DEFAULT '',
    next_attempt REAL NOT NULL DEFAULT 0,
    updated REAL NOT NULL DEFAULT 0,
    UNIQUE (campaign, email)
);
CREATE INDEX recipients_by_state ON recipients (campaign, state);
CREATE INDEX recipients_deferred ON recipients (campaign, next_attempt) WHERE state = 'deferred';
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX recipients_sent ON recipients (updated) WHERE state = 'sent';
CREATE INDEX recipients_by_message_id ON recipients (message_id) WHERE message_id <> '';
"""

# Schema 4 → 5: several ``send --worker`` processes share a campaign (journal/workers.py): each registers,
# leases rows (a lease per row while it is held) and renews them; the rate limit's buckets are kept here.
MIGRATE_4_TO_5 = """
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY,
    campaign INTEGER NOT NULL REFERENCES campaigns(id),
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL,
    last_batch REAL NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    stopped REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS workers_by_campaign ON workers (campaign, stopped);
CREATE TABLE IF NOT EXISTS leases (
    recipient INTEGER PRIMARY KEY REFERENCES recipients(id),
    worker INTEGER NOT NULL REFERENCES workers(id),
    lease_until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_worker ON leases (worker);
CREATE TABLE IF NOT EXISTS buckets (
    campaign INTEGER NOT NULL REFERENCES campaigns(id),
    name TEXT NOT NULL,
    tokens REAL NOT NULL,
    stamp REAL NOT NULL,
    PRIMARY KEY (campaign, name)
);
"""

# Schema 3 → 4: bounces and complaints find their campaign by the message id (events/matching.py).
MIGRATE_3_TO_4 = """
CREATE INDEX IF NOT EXISTS recipients_by_message_id ON recipients (message_id) WHERE message_id <> '';
"""

# Schema 2 → 3: what went out each day is counted for the daily limit (campaign/caps.py) from this index.
MIGRATE_2_TO_3 = """
CREATE INDEX IF NOT EXISTS recipients_sent ON recipients (updated) WHERE state = 'sent';
"""

# Schema 1 → 2: campaigns are keyed by the identity instead of its folder name. SQLite cannot
# change a UNIQUE constraint in place, so the table is rebuilt (recipients keep their campaign ids).
MIGRATE_1_TO_2 = """
CREATE TABLE campaigns_v2 (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    issue_id TEXT NOT NULL DEFAULT '',
    slug TEXT NOT NULL,
    transport TEXT NOT NULL,
    issue_dir TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    list_fingerprint TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    UNIQUE (key, transport)
);
INSERT INTO campaigns_v2 (id, key, slug, transport, issue_dir, list_fingerprint, generation, created)
    SELECT id, slug, slug, transport, issue_dir, list_fingerprint, generation, created FROM campaigns;
DROP TABLE campaigns;
ALTER TABLE campaigns_v2 RENAME TO campaigns;
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Step n brings schema n to n + 1 (db/migrate.py); schema 0 is no journal (a new one is made whole).
STEPS = ("", MIGRATE_1_TO_2, MIGRATE_2_TO_3, MIGRATE_3_TO_4, MIGRATE_4_TO_5)
SCHEMA_VERSION = len(STEPS)
SCHEMA_1_TABLES = {"campaigns", "recipients"}


def open_journal(path: Path, *, wait: float, create: bool = True, read_only: bool = False) -> sqlite3.Connection:
    """A connection to the journal at ``path``: created whole when absent (if ``create``), checked,
    migrated to the current schema, in WAL mode. CampaignError when it cannot be used. ``read_only``
    (status): never created, and not probed for writing."""
    if not path.exists():
        if not create or read_only:
            raise CampaignError("nothing has been sent from this project yet", where=str(path))
        _create(path)
    elif path.is_file():
        _check_header(path)
    else:
        raise CampaignError(
            f"the send journal is {_kind(path)}, not a file", where=str(path),
            fix=f"move it aside and put the journal back from a backup ({LOST_WARNING})",
        )  # fmt: skip
    try:
        db = connect(path, wait=wait)  # by URI: the store is attached read-only by one (a send from the store)
    except sqlite3.Error as exc:
        raise explain(exc, path) from None
    try:
        migrate(db, Schema(STEPS, version=lambda db: _version(db, path), stamp=_stamp), probe=not read_only)
        use_wal(db)
    except sqlite3.Error as exc:
        db.close()
        raise explain(exc, path) from None
    except CampaignError:
        db.close()
        raise
    return db


def journal_uid(db: sqlite3.Connection, path: Path) -> str:
    """This journal's own random id (kept in ``meta``): outcomes saved aside name the journal they belong to."""
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'uid'").fetchone()
    except sqlite3.Error as exc:
        raise explain(exc, path) from None
    return row[0] if row else ""


def explain(exc: BaseException, path: Path) -> CampaignError:
    """One line for a SQLite or OS failure on the journal, naming the file and what to do."""
    name = getattr(exc, "sqlite_errorname", "")
    folder = path.parent
    if isinstance(exc, UnicodeDecodeError) or "Could not decode to UTF-8" in str(exc):  # the text is not shown
        return CampaignError(
            "the send journal is damaged: it holds text that is not UTF-8", where=str(path),
            fix=f"restore it from a backup; move it aside only if no send ever ran from this project ({LOST_WARNING})",
        )  # fmt: skip
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in str(exc):
        return JournalLocked(
            "the send journal is locked by another program", where=str(path),
            fix="close the program holding it open for writing (a sqlite3 shell, a database browser), "
            "then run the same command again",
        )  # fmt: skip
    if name == "SQLITE_READONLY_DIRECTORY" or (
        name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) and not _can_create_in(folder)
    ):
        return CampaignError(
            "the send journal's folder is read-only", where=str(folder),
            fix=f"make {folder} writable: SQLite keeps {path.name}-wal and {path.name}-shm beside the journal",
        )  # fmt: skip
    if name.startswith("SQLITE_READONLY") or (name.startswith("SQLITE_CANTOPEN") and not _can_write(path)):
        return CampaignError(
            "the send journal is read-only",
            where=str(path),
            fix="make the file writable (chmod u+w), or run broadsheet as the user who owns it",
        )
    if name.startswith("SQLITE_FULL") or getattr(exc, "errno", None) == 28:
        return JournalFull(
            "the disk holding the send journal is full",
            where=str(path),
            fix="free some space, then run the same command again to resume",
        )
    if name.startswith("SQLITE_NOTADB") or name.startswith("SQLITE_CORRUPT"):
        return CampaignError(
            "the send journal is not a journal broadsheet wrote (not a database, or damaged)", where=str(path),
            fix=f"restore it from a backup; move it aside only if no send ever ran from this project ({LOST_WARNING})",
        )  # fmt: skip
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return CampaignError(
        f"cannot use the send journal: {detail}",
        where=str(path),
        fix="check that the file and its folder exist and are writable",
    )


class JournalLocked(CampaignError):
    """Another program holds the journal's write lock (after waiting for it)."""


class JournalFull(CampaignError):
    """The disk holding the journal is full."""


# -- creating and recognising ----------------------------------------------------------------------


def _create(path: Path) -> None:
    """Build a new journal beside ``path`` and link it into place: the file exists whole or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(handle)
    except OSError as exc:
        failed = Path(exc.filename) if exc.filename else path.parent
        # the folder that refused: the journal's (not the temporary file's name), or the one to create it in
        where = path.parent if failed.parent == path.parent else failed.parent if failed == path.parent else failed
        raise CampaignError(
            f"cannot create the send journal: {exc.strerror}",
            where=str(where),
            fix=f"make {where} a folder you can write to",
        ) from None
    try:
        db = connect(temporary)
        try:
            db.executescript(SCHEMA + MIGRATE_4_TO_5)  # the steps after schema 4 add to it
            _stamp(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        finally:
            db.close()
        try:
            os.link(temporary, path)  # never over a journal another process made meanwhile
        except FileExistsError:
            pass
    except sqlite3.Error as exc:
        raise explain(exc, path) from None
    except OSError as exc:
        raise explain(exc, path) from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _check_header(path: Path) -> None:
    """An empty file or one that is no SQLite database is refused before SQLite opens it (SQLite would
    take an empty file for a new database, and pair any file with a -wal left beside it)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise explain(exc, path) from None
    if not header:
        raise CampaignError(
            "the send journal is empty (0 bytes): it is not a journal broadsheet wrote", where=str(path),
            fix=f"restore it from a backup; delete it only if no send ever ran from this project ({LOST_WARNING})",
        )  # fmt: skip
    if header != SQLITE_HEADER:
        raise CampaignError(
            "the send journal is not a journal broadsheet wrote (not an SQLite database)", where=str(path),
            fix=f"put the journal back, or move this file aside if it is not one ({LOST_WARNING})",
        )  # fmt: skip


def _stamp(db: sqlite3.Connection) -> None:
    db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('uid', ?)", (uuid.uuid4().hex,))
    db.execute(f"PRAGMA application_id={APPLICATION_ID}")


def _version(db: sqlite3.Connection, path: Path) -> int:
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if application_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise CampaignError(
                f"the send journal was written by a newer broadsheet (schema {version})",
                where=str(path),
                fix="upgrade broadsheet (pip install -U broadsheet)",
            )
        return version
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if application_id == 0 and version == 0 and tables >= SCHEMA_1_TABLES:
        columns = {row[1] for row in db.execute("PRAGMA table_info(campaigns)")}
        if {"slug", "transport", "list_fingerprint"} <= columns:
            return 1
    raise CampaignError(
        "the send journal is not a journal broadsheet wrote (another program's database)",
        where=str(path),
        fix=f"put the journal back, or move this file aside if it is not one ({LOST_WARNING})",
    )


def _kind(path: Path) -> str:
    """What ``path`` is when it is not a regular file, in words."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "not readable"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def _can_write(path: Path) -> bool:
    """Whether this process can open ``path`` for writing (tried, not guessed: os.access lies for root)."""
    try:
        with open(path, "ab"):
            return True
    except OSError:
        return False


def _can_create_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False
