"""Opening PostgreSQL: the one place that calls psycopg. A pool of connections per database URL and process
(psycopg_pool), each lent to one owner (a ``Store``) until it gives it back.

Connections are in autocommit mode, as ``connect`` makes SQLite's: every write says BEGIN itself. A
``Connection`` speaks as a ``sqlite3.Connection`` does to the code that uses it (``execute`` with ``?`` or
``:name`` placeholders, ``executemany``, cursors with ``fetchone``/``fetchall``/``rowcount``), so a query is
written once for both engines (``dialect.postgres_query``). The password comes from
``BROADSHEET_DATABASE_PASSWORD`` or libpq's own password or service file, never from the URL.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from broadsheet.core.config import secret

from .dialect import postgres_query

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

SCHEMES = ("postgresql://", "postgres://")
LOCK_TIMEOUT_MS = 10_000  # how long a write waits for another's lock before it fails (as SQLite's busy_timeout)
POOL_SIZE = 32  # connections a process opens to one database at most (a Store holds one while open)
WAIT_SECONDS = 10.0  # how long an owner waits for a connection of the pool (all lent, or the server gone)
Parameters = Sequence[Any] | Mapping[str, Any]


def is_postgres(location: object) -> bool:
    """``location`` (a path or a URL) names a PostgreSQL database."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def errors() -> tuple[type[Exception], ...]:
    """The exceptions a PostgreSQL connection raises: psycopg's, once it is imported (nothing here imports it
    before a PostgreSQL store is opened, so a SQLite project never loads it)."""
    psycopg = sys.modules.get("psycopg")
    return (psycopg.Error,) if psycopg is not None else ()


class Connection:
    """A pooled psycopg connection with the calls the store makes of a ``sqlite3.Connection``."""

    engine = "postgresql"

    def __init__(self, pool: ConnectionPool | None, raw: psycopg.Connection[Any]):
        self._pool = pool  # None: a connection of its own (``private``), closed with it
        self.raw = raw

    def execute(self, sql: str, parameters: Parameters = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(postgres_query(sql), parameters or None)

    def executemany(self, sql: str, rows: Iterable[Parameters]) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        cursor.executemany(postgres_query(sql), rows)
        return cursor

    @property
    def in_transaction(self) -> bool:
        """A transaction is open (as ``sqlite3.Connection.in_transaction``; a failed one counts)."""
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def close(self) -> None:
        """Give the connection back to its pool (rolled back first if a transaction was left open); one of
        its own is closed (its session's advisory locks go with it)."""
        if self.raw is not None:
            raw, self.raw = self.raw, None  # type: ignore[assignment]
            if self._pool is None:
                raw.close()
            else:
                self._pool.putconn(raw)


def copy(db: Any, statement: str) -> AbstractContextManager[psycopg.Copy]:
    """``COPY … FROM STDIN`` on a store's connection (``write_row`` each row; the block ends the copy)."""
    assert isinstance(db, Connection)
    return db.raw.cursor().copy(statement)


def connect(url: str) -> Connection:
    """A connection to the database at ``url`` from this process's pool for it."""
    pool = _pool(url)
    return Connection(pool, pool.getconn(timeout=WAIT_SECONDS))


def private(url: str) -> Connection:
    """A connection of its own, outside the pool, configured as the pool's are: for a session whose advisory
    locks must end with it (the send journal's), never lent to another owner."""
    raw = direct(url)
    try:
        _configure(raw)
    except BaseException:
        raw.close()
        raise
    return Connection(None, raw)


def direct(url: str) -> psycopg.Connection[Any]:
    """A connection of its own, outside the pool (autocommit): the first look at a database, and tests."""
    import psycopg

    return psycopg.connect(url, autocommit=True, password=_password().get("password"), connect_timeout=10)


_POOLS: dict[str, ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(url: str) -> ConnectionPool:
    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is None:
            from psycopg_pool import ConnectionPool

            direct(url).close()  # a server that is down or a wrong password says so now, not after the pool's wait

            pool = ConnectionPool(
                url, min_size=0, max_size=POOL_SIZE, open=True, check=ConnectionPool.check_connection,
                configure=_configure, kwargs={"autocommit": True, **_password()}, name="broadsheet",
            )  # fmt: skip
            _POOLS[url] = pool
        return pool


def _configure(raw: psycopg.Connection[Any]) -> None:
    """Each new connection of a pool: a write waits LOCK_TIMEOUT_MS for another's lock, then fails."""
    raw.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


def _password() -> dict[str, str]:
    password = secret("database", required=False)
    return {"password": password} if password else {}


def close_pools() -> None:
    """Close every pool of this process (their connections end)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)


def stream(db: Any, sql: str, parameters: Parameters, size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``sql`` (SQLite's placeholders) ``size`` at a time, from a server-side cursor in one
    read-only transaction: memory stays flat however many rows there are. Leaving early ends the cursor."""
    assert isinstance(db, Connection)
    with db.raw.transaction():
        db.raw.execute("SET TRANSACTION READ ONLY")
        with db.raw.cursor(name="broadsheet_stream") as cursor:
            yield from _pages(cursor, postgres_query(sql), parameters, size)


def _pages(cursor: psycopg.ServerCursor[Any], sql: str, parameters: Parameters, size: int) -> Iterator[list[Any]]:
    cursor.itersize = size
    cursor.execute(sql, parameters or None)
    while page := cursor.fetchmany(size):
        yield page
