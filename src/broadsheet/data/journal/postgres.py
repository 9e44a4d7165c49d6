"""The journal in PostgreSQL (``[database] url``): the same jobs and SQL as the SQLite file, over the database
the store is in, so sends on several machines share it.

What the file does with SQLite is done here by the database: transactions are BEGIN … COMMIT, the send lock
and the workers' turns at preparing a campaign are advisory locks of the journal's own connection
(``lock.AdvisoryLock``), a list is staged by COPY into a temporary table. There is no file to keep in place,
no room to keep aside and no WAL to checkpoint. The schema is the SQLite one (``file.SCHEMA`` and the steps
after it) with PostgreSQL's types: addresses are ``citext`` (the same address in another case is one
recipient, as ``COLLATE NOCASE`` makes it), times double precision, and the journal's ``meta`` is
``journal_meta`` (the store has a ``meta`` of its own in the same database).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from broadsheet.core.audience.model import Selection
from broadsheet.core.errors import CampaignError

from ..bulk import read_ahead
from ..db import Schema, migrate, postgres
from ..db.connect import scratch_rows
from ..db.migrate import postgres_version
from .base import PATIENCE, WAIT, CampaignRecord
from .file import MIGRATE_4_TO_5, SCHEMA, SCHEMA_VERSION, JournalLocked
from .file import STEPS as SQLITE_STEPS
from .journal import Journal
from .lock import AdvisoryLock
from .workers import lease_statements

SCHEMA_NAME = "journal"  # its row in schema_versions
SEND_LOCK = 0x62736A73656E64  # b"bsjsend": held by a send (shared by ``send --worker`` processes)
PREPARE_LOCK = 0x62736A70726570  # b"bsjprep": workers set a campaign up one at a time
BUDGET_LOCK = 0x62736A62756467  # b"bsjbudg": one worker's lease reads and writes the shared budget at a time
STAGED = "staged_recipients"  # the temporary table a list is copied into
# the server's probes of a send's connection over TCP (ignored over a Unix socket): idle, between, how many
KEEPALIVES = (("tcp_keepalives_idle", 20), ("tcp_keepalives_interval", 10), ("tcp_keepalives_count", 3))
BUSY_STATES = ("55P03", "40P01", "40001")  # lock_timeout, deadlock, serialization: tried again (``JournalLocked``)


def _postgres(sql: str) -> str:
    """A journal schema step written for SQLite, with the journal's PostgreSQL types and names."""
    sql = sql.replace("email TEXT NOT NULL COLLATE NOCASE", "email CITEXT NOT NULL").replace(
        " REAL ", " DOUBLE PRECISION "
    )
    sql = sql.replace("CREATE TABLE meta", "CREATE TABLE journal_meta")
    # SQLite's index ends in the rowid, which is the id: a claim's ORDER BY id reads it in order. PostgreSQL's
    # must name it, or every claim sorts all of a campaign's queued rows to take the first few.
    sql = sql.replace(
        "recipients_by_state ON recipients (campaign, state)", "recipients_by_state ON recipients (campaign, state, id)"
    )
    return sql.replace("recipient INTEGER PRIMARY KEY REFERENCES", "recipient BIGINT PRIMARY KEY REFERENCES")


# A new database takes the whole schema of version FIRST at once (as a new SQLite file does), so the SQLite
# steps before it are empty here: a journal's version means the same on both engines. The SQLite steps after
# it (``file.STEPS``) are PostgreSQL's too.
FIRST = 5
STEPS = (
    "CREATE EXTENSION IF NOT EXISTS citext;\n" + _postgres(SCHEMA + MIGRATE_4_TO_5),
    *("" for _ in range(FIRST - 1)),
    *(_postgres(step) for step in SQLITE_STEPS[FIRST:]),
)


class PostgresJournal(Journal):
    """The journal in the PostgreSQL database at ``url``; ``path`` is where the project keeps what a lost
    journal cannot take with it (sent-marks, outcomes saved aside), as beside the SQLite file. The options are
    ``Journal``'s; ``wait`` is how long a statement waits for another's row lock."""

    BY_SENT_TIME = ""
    LEASES = lease_statements(" FOR UPDATE SKIP LOCKED")

    def __init__(
        self,
        url: str,
        path: Path,
        *,
        wait: float = WAIT,
        patience: float = PATIENCE,
        create: bool = True,
        lock: bool = False,
        read_only: bool = False,
        shared: bool = False,
    ):
        self.url = url
        self.path = path
        self.wait, self.patience = wait, patience
        self._checkpointer = None
        self._identity, self._mode = None, 0o600
        self._blocked = None
        self._marked = set()
        try:
            self.db = postgres.private(url)  # type: ignore[assignment]  # speaks as a sqlite3.Connection
        except postgres.errors() as exc:
            raise self._explain(exc) from None
        try:
            self.db.execute(f"SET lock_timeout = {int(wait * 1000)}")
            for name, seconds in KEEPALIVES:  # a machine that vanished lets go of its locks within a minute
                self.db.execute(f"SET {name} = {seconds}")
            self._project_lock = AdvisoryLock(self.db, SEND_LOCK, where=self.where)  # type: ignore[assignment]
            if lock:
                self._project_lock.acquire(shared=shared)
            if postgres_version(self.db, SCHEMA_NAME) == 0 and (read_only or not create):
                raise CampaignError("nothing has been sent from this project yet", where=self.where)
            migrate(self.db, Schema(STEPS, version=self._version, stamp=_stamp, name=SCHEMA_NAME))
            row = self.db.execute("SELECT value FROM journal_meta WHERE name = 'uid'").fetchone()
            self.uid = row[0] if row else ""
        except postgres.errors() as exc:
            self.db.close()
            raise self._explain(exc) from None
        except BaseException:
            self.db.close()
            raise

    @property
    def where(self) -> str:
        return self.url

    def close(self) -> None:
        self.db.close()  # its session's advisory locks end with it

    def preparing(self) -> AdvisoryLock:  # type: ignore[override]
        return AdvisoryLock(self.db, PREPARE_LOCK, where=self.where, wait=True)

    def checkpoints_aside(self) -> Any:
        return lambda: None  # the server keeps its own write-ahead log

    def keep_room(self) -> None:
        """Nothing to keep aside: the server's disk is the server's."""

    def check_in_place(self) -> None:
        """Nothing to check: there is no file to remove under a running send."""

    def budget_lock(self) -> None:
        self.db.execute("SELECT pg_advisory_xact_lock(?)", (BUDGET_LOCK,))  # released by COMMIT or ROLLBACK

    def _transaction(self) -> _Transaction:  # type: ignore[override]
        return _Transaction(self)

    def _errors(self) -> tuple[type[Exception], ...]:
        return (*postgres.errors(), UnicodeDecodeError)

    def _explain(self, exc: BaseException) -> CampaignError:
        return explain(exc, self.where)

    def whole_number(self, expression: str) -> str:
        return f"trunc({expression})::bigint"  # CAST rounds in PostgreSQL

    def _changes(self, statement: str, parameters: Mapping[str, object]) -> int:
        return int(self.db.execute(statement, parameters).rowcount)

    @contextlib.contextmanager
    def _load_pragmas(self) -> Iterator[None]:
        yield

    def load_recipient_chunks(
        self, campaign: CampaignRecord, fingerprint: str, chunks: Iterable[list[tuple[str, int, str]]]
    ) -> int:
        """``Journal.load_recipient_chunks``: the list is copied into a temporary table while it is read (no lock
        is held meanwhile), then moved in, an address's first row only, in address order."""
        try:
            self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {STAGED} (n BIGINT, email TEXT, line BIGINT, data TEXT)")
            self.db.execute(f"TRUNCATE {STAGED}")
            number = 0
            with postgres.copy(self.db, f"COPY {STAGED} (n, email, line, data) FROM STDIN") as copy:
                for chunk in read_ahead(chunks):
                    for email, line, data in chunk:
                        copy.write_row((number, email, line, data))
                        number += 1
        except postgres.errors() as exc:
            raise self._explain(exc) from None
        try:
            return self._move_in(
                campaign, fingerprint,
                "SELECT :campaign, email, line, data, :generation FROM"
                f" (SELECT DISTINCT ON (lower(email)) email, line, data, n FROM {STAGED} ORDER BY lower(email), n)"
                ' AS first WHERE true ORDER BY lower(email) COLLATE "C", n',
            )  # fmt: skip
        finally:
            with contextlib.suppress(*postgres.errors()):
                self.db.execute(f"TRUNCATE {STAGED}")

    def load_selected(self, campaign: CampaignRecord, fingerprint: str, selection: Selection) -> int:
        """``Journal.load_selected`` for a selection of scratch SQLite files (a sequence step's due members from a
        store in PostgreSQL): each file's ``rows`` is copied into a temporary table, the query naming it (and the
        journal's ``main``, and SQLite's ``rowid``) as PostgreSQL does."""
        query = selection.query.replace("main.", "").replace(".rowid", ".n")
        try:
            for name, path in selection.files.items():
                table = f"{name}_rows"
                self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (n BIGINT, email TEXT, data TEXT)")
                self.db.execute(f"TRUNCATE {table}")
                with postgres.copy(self.db, f"COPY {table} (n, email, data) FROM STDIN") as copy:
                    for row in scratch_rows(path):
                        copy.write_row(row)
                query = query.replace(f"{name}.rows", table)
        except postgres.errors() as exc:
            raise self._explain(exc) from None
        select = f"SELECT :campaign, email, line, data, :generation FROM ({query}) AS selected WHERE true"
        return self._move_in(campaign, fingerprint, select, selection.parameters)

    def _version(self, db: Any) -> int:
        version = postgres_version(db, SCHEMA_NAME)
        if version > SCHEMA_VERSION:
            raise CampaignError(
                f"the send journal was written by a newer broadsheet (schema {version})", where=self.where,
                fix="upgrade broadsheet (pip install -U broadsheet)",
            )  # fmt: skip
        return version


def has_journal(url: str) -> bool:
    """The database at ``url`` holds a send journal (nothing is created)."""
    try:
        db = postgres.private(url)
        try:
            return postgres_version(db, SCHEMA_NAME) > 0
        finally:
            db.close()
    except postgres.errors() as exc:
        raise explain(exc, url) from None


def explain(exc: BaseException, where: str) -> CampaignError:
    """One line for a failure of the journal's database, naming it (never a password: the URL has none)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    state = str(getattr(exc, "sqlstate", None) or "")
    if state in BUSY_STATES:
        return JournalLocked(
            f"the send journal is busy: {first}", where=where,
            fix="run the same command again; another process holds its rows for too long",
        )  # fmt: skip
    if not state or state.startswith(("08", "57")):  # no answer, the connection lost, the server shutting down
        return CampaignError(
            f"cannot reach the send journal's database: {first}", where=where,
            fix="check that the server runs, the URL and the password (BROADSHEET_DATABASE_PASSWORD), then run "
            "the same command again to resume",
        )  # fmt: skip
    return CampaignError(
        f"the send journal's database refused: {first}", where=where,
        fix="check that the database user may create tables there (and the citext extension), then run the "
        "same command again",
    )  # fmt: skip


def _stamp(db: Any) -> None:
    db.execute(
        "INSERT INTO journal_meta (name, value) VALUES ('uid', ?) ON CONFLICT (name) DO NOTHING", (uuid.uuid4().hex,)
    )


class _Transaction:
    """BEGIN … COMMIT, or ROLLBACK on error; the database's failures become one-line CampaignErrors."""

    def __init__(self, journal: PostgresJournal):
        self.journal = journal
        self.db = journal.db

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN")
        except postgres.errors() as exc:
            raise self.journal._explain(exc) from None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        failures = postgres.errors()
        try:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except failures as failure:
            with contextlib.suppress(*failures):
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
            raise self.journal._explain(exc if isinstance(exc, failures) else failure) from None
        if isinstance(exc, failures):
            raise self.journal._explain(exc) from None
