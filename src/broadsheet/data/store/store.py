"""The subscriber store: SQLite at ``.broadsheet/audience.db`` beside broadsheet.toml (WAL, busy_timeout), or
a PostgreSQL database (``[database] url``).

One connection per ``Store``; use one instance per thread (a lock makes a shared one safe, but serial).
Any number of threads and processes (send, serve, the CLI) share the store. Every write is one transaction,
committed before the method returns, and writers take turns: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
transaction-scoped advisory lock (so every rule below holds as it does on SQLite). ``synchronous=NORMAL`` in
WAL mode: a committed event survives a crash of the process; a power cut may lose the last few (as for the
journal). The queries are written once, for both engines (``db.dialect``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring as _quote
from pathlib import Path
from typing import Any, NamedTuple, cast

from broadsheet.core.audience.addresses import AddressChecker, InvalidAddress, mailbox_of
from broadsheet.core.config import Config
from broadsheet.core.errors import StoreError

from ..db import Schema, connect, migrate, postgres, use_wal
from ..db.migrate import postgres_version
from .mailboxes import MailboxLimit, count_mail, has_room
from .schema import (
    SCHEMA_VERSION,
    STATUS_EVENTS,
    STATUSES,
    STEPS,
    STRENGTH,
    SUPPRESSING,
    TIME_FORMAT,
    settled,
    weaker_sql,
)

BUSY_MS = 10_000
RETRY_SECONDS = 0.001  # between two tries to begin a write while another process writes
PAGE = 1000  # rows per page when streaming subscribers
IN_CHUNK = 500  # addresses per ``IN (...)`` look-up (SQLite allows 999 parameters by default)
REVIVING = ("unconfirmed", "unsubscribed")  # statuses a sign-up may (re)confirm
SCHEMA_NAME = "store"  # the store's row in a PostgreSQL database's schema_versions
WRITE_LOCK = 0x73746F7265  # PostgreSQL: the advisory lock every write of the store takes (b"store")


@dataclass(frozen=True, slots=True)
class StoredSubscriber:
    id: int
    email: str  # normalised as audience normalises (domain lower-case, IDNA)
    name: str
    fields: dict[str, str]  # extra CSV columns / form fields (JSON in the db)
    tags: tuple[str, ...]
    status: str  # one of STATUSES
    created: str  # ISO 8601 UTC, e.g. 2026-12-01T14:00:00Z
    updated: str


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    subscriber: int | None  # None once forgotten
    at: str  # ISO 8601 UTC
    kind: str  # added, imported, updated, signed_up, confirmed, subscribed, unsubscribed, bounced_hard, ...
    source: str  # import, form, confirm, one-click, unsubscribe-page, cli, send, webhook:<provider>, ...
    campaign: str  # the campaign that caused it, or ""
    detail: str
    dedupe_key: str | None  # unique when set: recording the same key twice changes nothing


@dataclass(frozen=True, slots=True)
class WaitingSignUp:
    """A sign-up serve answered, kept in the store's intake until it is applied and mailed."""

    id: int
    email: str
    name: str
    source: str


@dataclass(frozen=True, slots=True)
class StatusChange:
    """What ``set_status`` changed: the status before (None: the store did not have the address) and after."""

    before: str | None
    after: str

    @property
    def newly_suppressed(self) -> bool:
        """The address could be mailed (or was not in the store) and no longer can."""
        return self.after in SUPPRESSING and self.before not in SUPPRESSING


class Suppression(NamedTuple):
    """One ``Store.suppress`` call, for ``Store.suppress_all``."""

    email: str
    status: str
    source: str
    campaign: str = ""


SUBSCRIBER_COLUMNS = "id, email, name, fields, status, created, updated"
EVENT_COLUMNS = ", ".join(f.name for f in fields(Event))


# the conditional UPDATE of every suppression (built once: a one-click runs it)
STRENGTHEN = (
    "UPDATE subscribers SET status = :status, updated = :now WHERE email_key = :key"
    f" AND {weaker_sql('status', ':status')} RETURNING id"
)


INSERT_SUBSCRIBER = (
    "INSERT INTO subscribers (email, email_key, name, fields, status, nonce, created, updated)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def store_path(root: Path) -> Path:
    return Path(root) / ".broadsheet" / "audience.db"


def store_location(config: Config) -> Path | str:
    """Where the configured store is: ``[database] url``, else the project's SQLite file (what ``Store`` opens)."""
    return config.database.url or store_path(config.root)


def store_is_set_up(config: Config) -> bool:
    """The configured store is there: always in PostgreSQL, else when its file exists (a damaged file is
    then an error when opened, never taken for no store; ``Store.exists_for_config`` says False for it)."""
    return bool(config.database.url) or store_path(config.root).is_file()


_now: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """Now as the store writes times: ISO 8601 UTC to the second (formatted once a second, since every
    write of a one-click names the time)."""
    global _now
    second = int(time.time())
    if _now[0] != second:
        _now = (second, time.strftime(TIME_FORMAT, time.gmtime(second)))
    return _now[1]


class Store:
    """The subscriber store (see the module docstring). Also a context manager."""

    def __init__(self, location: Path | str):
        """``location``: the SQLite file's path, or a ``postgresql://`` URL (``[database] url``)."""
        self.engine = "postgresql" if postgres.is_postgres(location) else "sqlite"
        self.url = str(location) if self.engine == "postgresql" else ""
        self.path = Path(location) if not self.url else Path()  # the SQLite file (unused on PostgreSQL)
        self.where = self.url or str(self.path)  # what errors name
        self._lock = threading.RLock()  # this instance's connection
        self._writers = _writers_of(self.url or self.path)  # every writer of this store in this process
        self._addresses = AddressChecker()
        self._group = False  # inside ``grouped``: writes join its transaction
        self._busy_handler = True  # SQLite's busy handler waits for other writers (``only_writes_wait``)
        try:
            if self.url:  # it speaks as a sqlite3.Connection to every query of the store (db/postgres.py)
                self.db = cast(sqlite3.Connection, postgres.connect(self.url))
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = connect(self.path, wait=BUSY_MS / 1000)
                use_wal(self.db, foreign_keys=True, secure_delete=True)  # erased data is overwritten, not left free
            self._hash_key = self._set_up()
        except _open_failures() as exc:
            if self.url and hasattr(self, "db"):
                self.db.close()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot open the subscriber store: {first}",
                where=self.where,
                fix="check the database URL, that the server runs and the password (BROADSHEET_DATABASE_PASSWORD)"
                if self.url
                else "check that the folder is writable and the file is a broadsheet store",
            ) from None

    @classmethod
    def for_project(cls, root: Path) -> Store:
        """The project's SQLite store (``for_config`` follows ``[database] url``)."""
        return cls(store_path(root))

    @classmethod
    def for_config(cls, config: Config) -> Store:
        """The configured store: PostgreSQL when ``[database] url`` is set, else the project's SQLite file."""
        return cls(store_location(config))

    @classmethod
    def exists_for(cls, root: Path) -> bool:
        """A store file exists in the project and has its subscribers table (nothing is created)."""
        path = store_path(root)
        if not path.is_file():
            return False
        try:
            db = connect(path, wait=BUSY_MS / 1000, must_exist=True)
            try:
                found = db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'subscribers'"
                ).fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            return False
        return found is not None

    @classmethod
    def exists_for_config(cls, config: Config) -> bool:
        """The configured store is there: always in PostgreSQL (opening it creates its tables), else ``exists_for``."""
        return bool(config.database.url) or cls.exists_for(config.root)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------------

    def get(self, email: str) -> StoredSubscriber | None:
        """The subscriber with this address (case-insensitive), or None."""
        with self._lock:
            row = self.db.execute(
                f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE email_key = ?", (self.key(email),)
            ).fetchone()
            return self._with_tags([row])[0] if row else None

    def subscribers(self, *, status: str | None = None, tag: str | None = None) -> Iterator[StoredSubscriber]:
        """Every subscriber in id order, optionally of one status and/or with one tag; streamed a page at a time."""
        if status is not None:
            check_status(status)
        conditions, parameters = ["id > ?"], []
        if status is not None:
            conditions.append("status = ?")
            parameters.append(status)
        if tag is not None:  # in id order, each subscriber's tag looked up by the tags' primary key
            conditions.append("EXISTS (SELECT 1 FROM tags WHERE subscriber = id AND tag_key = ?)")
            parameters.append(tag.strip().casefold())
        query = (
            f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE {' AND '.join(conditions)} ORDER BY id LIMIT {PAGE}"
        )
        last = 0
        while True:
            with self._lock:
                rows = self.db.execute(query, (last, *parameters)).fetchall()
                page = self._with_tags(rows)
            yield from page
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def count(self, status: str | None = None) -> int:
        with self._lock:
            if status is None:
                return self._count("SELECT count(*) FROM subscribers")
            query = "SELECT count(*) FROM subscribers WHERE status = ?"
            return self._count(query, (check_status(status),))

    def events(self, email: str) -> list[Event]:
        """The subscriber's events, oldest first ([] for an unknown or forgotten address)."""
        with self._lock:
            rows = self.db.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE subscriber ="
                " (SELECT id FROM subscribers WHERE email_key = ?) ORDER BY id",
                (self.key(email),),
            ).fetchall()
        return [Event(*row) for row in rows]

    def count_events(self, email: str, kind: str, since: str) -> int:
        """How many events of ``kind`` the subscriber has at or after ``since`` (ISO 8601 UTC)."""
        with self._lock:
            return self._count(
                "SELECT count(*) FROM events WHERE kind = ? AND at >= ? AND subscriber ="
                " (SELECT id FROM subscribers WHERE email_key = ?)",
                (kind, since, self.key(email)),
            )

    def campaign_counts(self, campaign: str) -> dict[str, int]:
        """kind -> how many subscribers have an event of that kind caused by ``campaign`` (each person once)."""
        with self._lock:
            return dict(
                self.db.execute(
                    "SELECT kind, count(DISTINCT subscriber) FROM events WHERE campaign = ? GROUP BY kind", (campaign,)
                ).fetchall()
            )

    def count_unchanged(self, status: str, before: str) -> int:
        """How many subscribers of ``status`` have not changed since ``before`` (ISO 8601 UTC)."""
        with self._lock:
            return self._count(
                "SELECT count(*) FROM subscribers WHERE status = ? AND updated < ?", (check_status(status), before)
            )

    def suppressed(self, emails: Iterable[str]) -> set[str]:
        """The given addresses (as given) that must never be mailed: suppressing status, or forgotten."""
        by_key: dict[str, list[str]] = {}
        for email in emails:
            by_key.setdefault(self.key(email), []).append(email)
        keys = list(by_key)
        marks = ",".join("?" * len(SUPPRESSING))
        hashes = {self.forgotten_hash(key): key for key in keys}
        with self._lock:
            found = {key for (key,) in self.select_in(
                f"SELECT email_key FROM subscribers WHERE email_key IN ({{}}) AND status IN ({marks})", keys, SUPPRESSING
            )}  # fmt: skip
            found.update(hashes[digest] for (digest,) in self.select_in(
                "SELECT email_hash FROM forgotten WHERE email_hash IN ({})", list(hashes)
            ))  # fmt: skip
        return {email for key in found for email in by_key[key]}

    def is_forgotten(self, email: str) -> bool:
        with self._lock:
            return self._forgotten(self.key(email))

    def revision(self) -> int:
        """A number that grows with every change to who is subscribed (for a campaign's fingerprint)."""
        with self._lock:
            return int(self._meta("revision") or 0)

    def note(self, name: str) -> str | None:
        """A value kept in the store's meta table under ``note:<name>`` (``set_note``), or None."""
        with self._lock:
            return self._meta(f"note:{name}")

    def set_note(self, name: str, value: str) -> None:
        """Keep ``value`` under ``note:<name>`` (what a send imported last, for one)."""
        with self._write():
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"note:{name}", value),
            )

    def field_names(self) -> list[str]:
        """Every extra field name any subscriber has, in first-seen order."""
        names: dict[str, None] = {}
        last = 0
        while True:
            with self._lock:
                rows = self.db.execute(
                    f"SELECT id, fields FROM subscribers WHERE id > ? AND fields <> '{{}}' ORDER BY id LIMIT {PAGE}",
                    (last,),
                ).fetchall()
            for _, text in rows:
                names.update(dict.fromkeys(json.loads(text)))
            if len(rows) < PAGE:
                return list(names)
            last = rows[-1][0]

    # -- writing --------------------------------------------------------------------------------

    def add(
        self,
        email: str,
        *,
        name: str = "",
        fields: dict[str, str] | None = None,
        tags: Iterable[str] = (),
        status: str = "subscribed",
        source: str = "cli",
        detail: str = "",
        resubscribe: bool = False,
    ) -> StoredSubscriber:
        """A new subscriber (StoreError when present, or forgotten unless ``resubscribe``)."""
        email = self.valid_address(email)
        check_status(status)
        name, fields, tags = check_name(name), check_fields(fields or {}), check_tags(tags)
        key = email.lower()
        with self._write():
            if self._forgotten(key):
                if not resubscribe:
                    raise StoreError(
                        f"{email} was forgotten at the person's request and stays suppressed",
                        where=self.where,
                        fix="add it again only if they asked to subscribe again (subscribers add --resubscribe)",
                    )
                self.db.execute("DELETE FROM forgotten WHERE email_hash = ?", (self.forgotten_hash(key),))
            if self.db.execute("SELECT 1 FROM subscribers WHERE email_key = ?", (key,)).fetchone():
                raise StoreError(f"{email} is already in the store", where=self.where,
                                 fix="see it with: broadsheet subscribers show " + email)  # fmt: skip
            subscriber = self._insert(email, name=name, fields=fields, status=status)
            self._add_tags(subscriber, tags)
            self._event(subscriber, "added", source=source, detail=detail)
        found = self.get(email)
        assert found is not None
        return found

    def set_status(
        self, email: str, status: str, *, source: str, campaign: str = "", detail: str = "",
        dedupe_key: str | None = None, resubscribe: bool = False,
    ) -> StatusChange | None:  # fmt: skip
        """Record the status's event and set it; what changed, or None.

        Suppression only gets stronger (``schema.settled``): a status weaker than the present one is
        recorded as an event but not set, unless ``resubscribe`` (the person asked). An unknown address
        records nothing, except for a suppressing status: then a suppressed row is created so the address
        is never mailed. A dedupe_key seen before changes nothing.
        """
        check_status(status)
        email = self._address(email)
        key = email.lower()  # self.key(email), without normalising the address a second time
        with self._write():
            if dedupe_key is not None and self._seen(dedupe_key):
                return None
            row = self.db.execute("SELECT id, status FROM subscribers WHERE email_key = ?", (key,)).fetchone()
            if row is None:
                if status not in SUPPRESSING or self._forgotten(key):
                    return None
                subscriber, old = self._insert(email, status=status), None
            else:
                subscriber, old = row
            self._event(subscriber, STATUS_EVENTS[status], source=source, campaign=campaign, detail=detail,
                        dedupe_key=dedupe_key)  # fmt: skip
            if old is None:
                return StatusChange(None, status)
            new = settled(old, status, resubscribe=resubscribe)
            if new == old:
                return None
            nonce = ", nonce = ''" if new == "subscribed" else ""
            self.db.execute(f"UPDATE subscribers SET status = ?, updated = ?{nonce} WHERE id = ?",
                            (new, utc_now(), subscriber))  # fmt: skip
            self._touch()
            return StatusChange(old, new)

    def suppress(self, email: str, status: str, *, source: str, campaign: str = "") -> bool:
        """Set the suppressing ``status`` and record its event (caused by ``campaign``), only when the
        present one is weaker (one conditional UPDATE: a repeat, or a duplicate at the same moment, records
        nothing); an address the store lacks is added with it, unless forgotten. True when something changed."""
        if status not in SUPPRESSING:
            raise StoreError(f"'{status}' does not suppress", fix=f"use one of: {', '.join(SUPPRESSING)}")
        email = self._address(email)
        key = email.lower()
        with self._write():
            if self._strengthen(key, status, source=source, campaign=campaign):
                return True
            if (
                self._forgotten(key)
                or self.db.execute("SELECT 1 FROM subscribers WHERE email_key = ?", (key,)).fetchone()
            ):
                return False
            self._event(self._insert(email, status=status), STATUS_EVENTS[status], source=source, campaign=campaign)
            return True

    def suppress_all(self, suppressions: Sequence[Suppression]) -> list[bool]:
        """``suppress`` for each of ``suppressions`` in one write and a few statements (serve's group writer
        records many one-clicks at once): the same rows, events and results as calling it for each in turn."""
        if bad := {one.status for one in suppressions} - set(SUPPRESSING):
            raise StoreError(f"'{sorted(bad)[0]}' does not suppress", fix=f"use one of: {', '.join(SUPPRESSING)}")
        emails = [self._address(one.email) for one in suppressions]
        given: dict[str, list[int]] = {}  # address key -> its suppressions, in order
        for n, email in enumerate(emails):
            given.setdefault(email.lower(), []).append(n)
        first = {key: ns[0] for key, ns in given.items()}
        events: list[tuple[int, int]] = []  # (subscriber, suppression) of each change
        now = utc_now()

        def strengthen(id_: int, status: str, ns: list[int]) -> str:
            """The address's status after ``ns`` in turn: a later, stronger one changes it again."""
            for n in ns:
                if STRENGTH[status] < STRENGTH[suppressions[n].status]:
                    status = suppressions[n].status
                    events.append((id_, n))
            return status

        with self._write():
            query = "SELECT id, email_key, status FROM subscribers WHERE email_key IN ({})"
            present = {key: (id_, status) for id_, key, status in self.select_in(query, list(first))}
            stronger: dict[str, list[int]] = {}  # status -> the subscribers it strengthens
            for key, (id_, status) in present.items():
                new = strengthen(id_, status, given[key])
                if new != status:
                    stronger.setdefault(new, []).append(id_)
            for status, ids in stronger.items():  # by id, not ``email_key IN … RETURNING`` (far slower in SQLite)
                for start in range(0, len(ids), IN_CHUNK):
                    chunk = ids[start : start + IN_CHUNK]
                    self.db.execute(
                        f"UPDATE subscribers SET status = ?, updated = ? WHERE id IN ({','.join('?' * len(chunk))})",
                        (status, now, *chunk),
                    )
            rest = [key for key in first if key not in present]
            hashes = {self.forgotten_hash(key): key for key in rest}
            query = "SELECT email_hash FROM forgotten WHERE email_hash IN ({})"
            forgotten = {hashes[digest] for (digest,) in self.select_in(query, list(hashes))}
            inserted = 0
            for key in rest:  # addresses the store lacks: added suppressed (``_insert`` counts the change)
                if key not in forgotten:
                    inserted += 1
                    n, *later = given[key]
                    status = suppressions[n].status
                    id_ = self._insert(emails[n], status=status)
                    events.append((id_, n))
                    if (last := strengthen(id_, status, later)) != status:
                        self.db.execute("UPDATE subscribers SET status = ? WHERE id = ?", (last, id_))
            rows = []
            for id_, n in sorted(events, key=lambda event: event[1]):
                one = suppressions[n]
                rows.append((id_, now, STATUS_EVENTS[one.status], one.source, one.campaign))
            for start in range(0, len(rows), IN_CHUNK // 5):  # one statement for many rows: fewer round trips
                part = rows[start : start + IN_CHUNK // 5]
                self.db.execute(
                    "INSERT INTO events (subscriber, at, kind, source, campaign) VALUES "
                    + ",".join(["(?, ?, ?, ?, ?)"] * len(part)),
                    [value for row in part for value in row],
                )
            if updated := len(events) - inserted:
                self.db.execute(
                    "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + ? AS TEXT) WHERE key = 'revision'",
                    (updated,),
                )
        changed = [False] * len(suppressions)
        for _, n in events:
            changed[n] = True
        return changed

    def record_event(
        self, email: str, kind: str, *, source: str, campaign: str = "", detail: str = "",
        dedupe_key: str | None = None, at: str | None = None,
    ) -> bool:  # fmt: skip
        """Append an event without changing the status. False (nothing recorded) for an address the store
        does not know (or forgot) and for a dedupe_key seen before."""
        if not kind:
            raise StoreError("an event needs a kind")
        with self._write():
            if dedupe_key is not None and self._seen(dedupe_key):
                return False
            row = self.db.execute("SELECT id FROM subscribers WHERE email_key = ?", (self.key(email),)).fetchone()
            if row is None:
                return False
            self._event(row[0], kind, source=source, campaign=campaign, detail=detail, dedupe_key=dedupe_key, at=at)
            return True

    def left_topics(self, email: str) -> dict[str, str]:
        """topic key -> when the subscriber left that topic (ISO 8601 UTC); {} for an unknown address."""
        with self._lock:
            return dict(
                self.db.execute(
                    "SELECT topic_key, left_at FROM topic_choices WHERE subscriber ="
                    " (SELECT id FROM subscribers WHERE email_key = ?) ORDER BY topic_key",
                    (self.key(email),),
                ).fetchall()
            )

    def choose_topic(self, email: str, topic: str, *, leave: bool, source: str, campaign: str = "") -> bool:
        """Leave (or rejoin) the topic ``topic`` (a tag), with its event ``left_topic`` / ``joined_topic``
        (detail: the topic). False, nothing recorded, for an unknown address or when nothing changes."""
        key = topic.strip().casefold()
        with self._write():
            row = self.db.execute("SELECT id FROM subscribers WHERE email_key = ?", (self.key(email),)).fetchone()
            if row is None:
                return False
            if leave:
                changed = self.db.execute(
                    "INSERT INTO topic_choices (subscriber, topic_key, left_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (subscriber, topic_key) DO NOTHING",
                    (row[0], key, utc_now()),
                ).rowcount
            else:
                changed = self.db.execute(
                    "DELETE FROM topic_choices WHERE subscriber = ? AND topic_key = ?", (row[0], key)
                ).rowcount
            if not changed:
                return False
            self._touch()
            self._event(row[0], "left_topic" if leave else "joined_topic", source=source, campaign=campaign,
                        detail=topic.strip())  # fmt: skip
            return True

    def forget(self, email: str, *, source: str = "cli") -> bool:
        """Erase the address, name, fields, tags, events' detail and waiting sign-ups; keep a keyed hash so
        it stays suppressed.

        True when something was erased or the hash is new; False when the address was forgotten already.
        """
        key = self.key(email)
        with self._write():
            row = self.db.execute("SELECT id FROM subscribers WHERE email_key = ?", (key,)).fetchone()
            new_hash = self.db.execute(
                "INSERT INTO forgotten (email_hash, at) VALUES (?, ?) ON CONFLICT (email_hash) DO NOTHING",
                (self.forgotten_hash(key), utc_now()),
            ).rowcount
            waiting = [
                (id_,) for id_, queued in self.db.execute("SELECT id, email FROM intake") if self.key(queued) == key
            ]
            self.db.executemany("DELETE FROM intake WHERE id = ?", waiting)
            if row is not None:
                self.db.execute("UPDATE events SET subscriber = NULL, detail = '' WHERE subscriber = ?", row)
                self.db.execute("DELETE FROM tags WHERE subscriber = ?", row)
                self.db.execute("DELETE FROM subscribers WHERE id = ?", row)
            if row is None and not new_hash:
                return False
            self._touch()
            self._event(None, "forgotten", source=source)
        self._checkpoint()  # the old pages in the WAL still hold the data: write them back over it
        return True

    # -- double opt-in --------------------------------------------------------------------------

    def sign_up(self, email: str, *, name: str = "", fields: dict[str, str] | None = None,
                source: str = "form") -> str | None:  # fmt: skip
        """A fresh confirmation nonce when a confirmation should be mailed (new, unconfirmed or
        unsubscribed address), else None. A new address is recorded as unconfirmed. Only the latest
        nonce works. Name and fields are kept for a new address only: a form cannot rename anyone."""
        email = self.valid_address(email)
        name, fields = check_name(name), check_fields(fields or {})
        with self._write():
            return self._sign_up(email, name, fields, source)

    def _sign_up(self, email: str, name: str, fields: dict[str, str], source: str) -> str | None:
        """``sign_up`` inside a write, for a valid address, name and fields."""
        key = email.lower()
        if self._forgotten(key):
            return None
        nonce = secrets.token_urlsafe(18)
        row = self.db.execute("SELECT id, status FROM subscribers WHERE email_key = ?", (key,)).fetchone()
        if row is None:
            subscriber = self._insert(email, name=name, fields=fields, status="unconfirmed", nonce=_digest(nonce))
        elif row[1] in REVIVING:
            subscriber = row[0]
            self.db.execute("UPDATE subscribers SET nonce = ? WHERE id = ?", (_digest(nonce), subscriber))
        else:
            return None
        self._event(subscriber, "signed_up", source=source)
        return nonce

    # -- sign-ups serve has answered: the intake ------------------------------------------------

    def take_sign_up(self, email: str, *, name: str, source: str, limit: int) -> bool:
        """Keep a sign-up in the intake until ``sign_up_waiting`` applies it: one INSERT, the same whatever
        the address (nothing about it is looked up, so how long it takes tells nothing). False when
        ``limit`` sign-ups wait already."""
        with self._write():
            cursor = self.db.execute(
                "INSERT INTO intake (email, name, source, at) SELECT ?, ?, ?, ? WHERE (SELECT count(*) FROM intake) < ?",
                (email, name, source, utc_now(), limit),
            )
            return cursor.rowcount == 1

    def waiting_sign_ups(self, count: int) -> list[WaitingSignUp]:
        """The oldest ``count`` sign-ups of the intake whose mailing has not begun."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, email, name, source FROM intake WHERE mailing = '' ORDER BY id LIMIT ?", (count,)
            ).fetchall()
        return [WaitingSignUp(*row) for row in rows]

    def sign_up_waiting(self, waiting: WaitingSignUp, *, per_mailbox: MailboxLimit | None = None) -> str | None:
        """``sign_up`` for a sign-up of the intake, marked in the same transaction as being mailed (so it is
        applied once, by one process); the nonce to mail, or None when there is nothing to mail (the row is
        gone, or the address needs no mail), the address's mailbox had its ``per_mailbox`` mails already
        (from any process sharing the store: the same sign-up taken by several serve replicas, or one inbox
        flooded through them all), or another process has it. An invalid one is dropped (StoreError)."""
        try:
            email, name = self.valid_address(waiting.email), check_name(waiting.name)
        except StoreError:
            self.drop_sign_up(waiting.id)
            raise
        with self._write():
            marked = self.db.execute(
                "UPDATE intake SET mailing = ? WHERE id = ? AND mailing = ''", (utc_now(), waiting.id)
            ).rowcount
            if not marked:
                return None
            now, mailbox = time.time(), self.forgotten_hash("mailbox:" + mailbox_of(email))
            room = per_mailbox is None or has_room(self.db, mailbox, per_mailbox, now)
            nonce = self._sign_up(email, name, {}, waiting.source) if room else None
            if nonce is None:  # a refused one keeps the nonce already mailed
                self.db.execute("DELETE FROM intake WHERE id = ?", (waiting.id,))
            elif per_mailbox is not None:
                count_mail(self.db, mailbox, now)
            return nonce

    def drop_sign_up(self, id: int) -> None:
        """The intake's sign-up ``id`` is done with (mailed, or its message failed)."""
        with self._write():
            self.db.execute("DELETE FROM intake WHERE id = ?", (id,))

    def drop_unfinished_mailings(self, seconds: float) -> int:
        """Drop the intake's sign-ups whose mailing began over ``seconds`` ago and never ended (their process
        stopped): whether their message left is unknown, so it is never sent again. How many."""
        before = (datetime.now(UTC) - timedelta(seconds=seconds)).strftime(TIME_FORMAT)
        query = "FROM intake WHERE mailing <> '' AND mailing < ?"
        with self._lock:
            if not self._count(f"SELECT count(*) {query}", (before,)):  # no write lock taken for nothing
                return 0
            with self._write():
                return self.db.execute(f"DELETE {query}", (before,)).rowcount

    def confirm(self, email: str, nonce: str) -> bool:
        """Subscribe an unconfirmed or unsubscribed address whose latest nonce this is (works once)."""
        with self._write():
            row = self.db.execute(
                "SELECT id, status, nonce FROM subscribers WHERE email_key = ?", (self.key(email),)
            ).fetchone()
            if row is None or row[1] not in REVIVING or not row[2]:
                return False
            if not hmac.compare_digest(row[2], _digest(nonce)):
                return False
            self.db.execute(
                "UPDATE subscribers SET status = 'subscribed', nonce = '', updated = ? WHERE id = ?",
                (utc_now(), row[0]),
            )
            self._touch()
            self._event(row[0], "confirmed", source="confirm")
            return True

    # -- addresses ------------------------------------------------------------------------------

    def key(self, email: str) -> str:
        """The address as the store looks it up: normalised when valid, lower-cased."""
        return self._address(email).lower()

    def valid_address(self, email: str) -> str:
        """The normalised address, or StoreError saying why it is not one."""
        try:
            return self._addresses.normalise(email)
        except InvalidAddress as exc:
            shown = email.strip().replace("\r", "\\r").replace("\n", "\\n")
            raise StoreError(f"invalid address {shown!r}: {exc}", fix="check the address") from None

    def forgotten_hash(self, key: str) -> str:
        """The keyed hash (BLAKE2b with the store's random key) kept for a forgotten address."""
        return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), key=self._hash_key, digest_size=32).hexdigest()

    def _address(self, email: str) -> str:
        try:
            return self._addresses.normalise(email)
        except InvalidAddress:
            return email.strip()

    # -- inside ---------------------------------------------------------------------------------

    def only_writes_wait(self) -> None:
        """From now on this connection never waits in SQLite's busy handler, only (as always) to begin a
        write: for a connection that reads only inside its writes (the group writer's), one statement less
        on each side of each transaction."""
        with self._lock:
            if not self.url:  # PostgreSQL's connection waits only for locks anyway (lock_timeout)
                self.db.execute("PRAGMA busy_timeout=0")
            self._busy_handler = False

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """One write transaction holding the writes of many calls (``GroupWriter``): inside it each write
        method joins it instead of committing; committed on leaving, rolled back on an exception (a failed
        COMMIT included: sqlite3.Error)."""
        with self._write():
            self._group = True
            try:
                yield
            finally:
                self._group = False

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside ``grouped``: the writes of the block, undone alone when it raises (the rest of the group
        stays). When SQLite has rolled back the whole transaction meanwhile (a full disk, an I/O error),
        the block's exception goes on to fail the group."""
        self.db.execute("SAVEPOINT job")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK TO job")
                self.db.execute("RELEASE job")
            raise
        self.db.execute("RELEASE job")

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, committed on leaving, rolled back on an exception (inside ``grouped``:
        part of the group's transaction).

        Writers of this process queue on one lock per file (threads of a server take turns at once instead
        of sleeping in SQLite's busy handler, whose back-off grows to 100 ms); writers of other processes
        are waited for by BEGIN IMMEDIATE up to busy_timeout. Either wait longer than that: StoreError."""
        if self._group:
            yield
            return
        writers = self._writers
        with self._lock:
            if not writers.acquire(timeout=BUSY_MS / 1000):
                raise StoreError("the subscriber store is busy: another thread of this process holds it",
                                 where=self.where, fix="try again")  # fmt: skip
            try:
                self._begin_postgres() if self.url else self._begin_immediate()
                try:
                    yield
                    self.db.execute("COMMIT")
                except BaseException:
                    if self.db.in_transaction:  # SQLite may have rolled it back itself (a full disk, I/O)
                        self.db.execute("ROLLBACK")
                    raise
            finally:
                writers.release()

    def _begin_immediate(self) -> None:
        """BEGIN IMMEDIATE, tried again every millisecond while another process writes, up to BUSY_MS.

        SQLite's own busy handler sleeps longer and longer between tries (100 ms after a third of a second),
        so it would miss the short pauses a long import leaves between its transactions: a one-click
        unsubscribe would wait for the whole import."""
        if self._busy_handler:
            self.db.execute("PRAGMA busy_timeout=0")
        try:
            deadline = time.monotonic() + BUSY_MS / 1000
            while True:
                try:
                    self.db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                        raise StoreError(f"the subscriber store is busy: {exc}", where=self.where,
                                         fix="try again; another process holds the store for too long") from None  # fmt: skip
                time.sleep(RETRY_SECONDS)
        finally:
            if self._busy_handler:
                self.db.execute(f"PRAGMA busy_timeout={BUSY_MS}")

    def _begin_postgres(self) -> None:
        """BEGIN, then the store's advisory lock (released by COMMIT or ROLLBACK): PostgreSQL's writers take
        turns as SQLite's do, waiting up to the connection's lock_timeout for another process's."""
        self.db.execute("BEGIN")
        try:
            self.db.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        except postgres.errors() as exc:
            self.db.execute("ROLLBACK")
            raise StoreError(f"the subscriber store is busy: {exc}", where=self.where,
                             fix="try again; another process holds the store for too long") from None  # fmt: skip

    def _set_up(self) -> bytes:
        """The hash key, after bringing the file to this schema version (db/migrate.py; safe when two
        processes race: one waits for the other's transaction). An opened store of this version takes no
        write lock."""
        with self._lock:
            migrate(self.db, Schema(STEPS, version=self._version, stamp=_stamp, name=SCHEMA_NAME))
            return bytes.fromhex(self._meta("hash_key") or "")

    def _version(self, db: Any) -> int:
        """The store's schema version: ``user_version`` (PostgreSQL: ``schema_versions``), else (a SQLite
        store of version 1 or 2) meta's ``schema_version``; 0 for a new one or one without its meta rows.
        StoreError for a newer one."""
        if self.url:
            version = postgres_version(db, SCHEMA_NAME)
            if version and self._meta("hash_key") is None:
                return 0
            return self._not_newer(version)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        try:
            if not version and (row := db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()):
                version = int(row[0])
            if self._meta("hash_key") is None:
                return 0
        except sqlite3.OperationalError:  # no meta table: a new file
            return 0
        return self._not_newer(version)

    def _not_newer(self, version: int) -> int:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the subscriber store has schema version {version}; this broadsheet knows {SCHEMA_VERSION}",
                where=self.where,
                fix="upgrade broadsheet",
            )
        return version

    def _meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return row[0] if row else None

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and empty it (best effort: a reader may hold old pages a while).
        PostgreSQL: nothing (its own vacuum reclaims the erased rows)."""
        if self.url:
            return
        with self._lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _touch(self) -> None:
        """Inside a write: who is subscribed, or what they are subscribed with, changed."""
        self.db.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'revision'")

    def _forgotten(self, key: str) -> bool:
        found = self.db.execute("SELECT 1 FROM forgotten WHERE email_hash = ?", (self.forgotten_hash(key),)).fetchone()
        return found is not None

    def _seen(self, dedupe_key: str) -> bool:
        return self.db.execute("SELECT 1 FROM events WHERE dedupe_key = ?", (dedupe_key,)).fetchone() is not None

    def _strengthen(self, key: str, status: str, *, source: str, detail: str = "", campaign: str = "") -> bool:
        """Inside a write: the subscriber ``key`` to the suppressing ``status``, with its event, only when
        their status is weaker (the UPDATE's own condition, so a repeat changes and records nothing)."""
        row = self.db.execute(
            STRENGTHEN,
            {"status": status, "now": utc_now(), "key": key},
        ).fetchone()
        if row is None:
            return False
        self._touch()
        self._event(row[0], STATUS_EVENTS[status], source=source, detail=detail, campaign=campaign)
        return True

    def _insert(self, email: str, *, name: str = "", fields: dict[str, str] | None = None, status: str,
                nonce: str = "") -> int:  # fmt: skip
        now = utc_now()
        values = (email, email.lower(), name, dump_fields(fields or {}), status, nonce, now, now)
        if self.url:  # psycopg has no lastrowid; SQLite's RETURNING costs more than its lastrowid
            (subscriber,) = self.db.execute(f"{INSERT_SUBSCRIBER} RETURNING id", values).fetchone()
        else:
            subscriber = self.db.execute(INSERT_SUBSCRIBER, values).lastrowid
        self._touch()
        return int(subscriber)

    def _add_tags(self, subscriber: int, tags: Iterable[str]) -> None:
        self.db.executemany(
            "INSERT INTO tags (subscriber, tag, tag_key) VALUES (?, ?, ?) ON CONFLICT (subscriber, tag_key) DO NOTHING",
            [(subscriber, tag.strip(), tag.strip().casefold()) for tag in tags if tag.strip()],
        )

    def _event(self, subscriber: int | None, kind: str, *, source: str, campaign: str = "", detail: str = "",
               dedupe_key: str | None = None, at: str | None = None) -> None:  # fmt: skip
        self.db.execute(
            "INSERT INTO events (subscriber, at, kind, source, campaign, detail, dedupe_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (subscriber, at or utc_now(), kind, source, campaign, detail, dedupe_key),
        )

    def _count(self, query: str, parameters: tuple[str, ...] = ()) -> int:
        """The number a ``SELECT count(*)`` query answers. Hold the lock."""
        (count,) = self.db.execute(query, parameters).fetchone()
        return int(count)

    def select_in(
        self, query: str, values: Sequence[str | int], extra: Iterable[str | int] = ()
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``query`` (its ``IN ({})`` filled with ``values``, then ``extra`` parameters), asked
        IN_CHUNK values at a time. Hold the lock while reading them."""
        for start in range(0, len(values), IN_CHUNK):
            part = values[start : start + IN_CHUNK]
            yield from self.db.execute(query.format(",".join("?" * len(part))), (*part, *extra))

    def _with_tags(self, rows: list[tuple[Any, ...]]) -> list[StoredSubscriber]:
        """Subscribers from rows of SUBSCRIBER_COLUMNS, with their tags (one query per page)."""
        if not rows:
            return []
        tags: dict[int, list[str]] = {}
        query = "SELECT subscriber, tag FROM tags WHERE subscriber IN ({}) ORDER BY subscriber, tag_key"
        for subscriber, tag in self.select_in(query, [row[0] for row in rows]):
            tags.setdefault(subscriber, []).append(tag)
        return [
            StoredSubscriber(
                id, email, name, json.loads(fields_json), tuple(tags.get(id, ())), status, created, updated
            )
            for id, email, name, fields_json, status, created, updated in rows
        ]


_WRITERS: dict[Path | str, threading.Lock] = {}
_WRITERS_LOCK = threading.Lock()


def _writers_of(location: Path | str) -> threading.Lock:
    """The lock the writers of this process take for one store (its file, or its database's URL)."""
    key = location.resolve() if isinstance(location, Path) else location
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(key, threading.Lock())


def _open_failures() -> tuple[type[Exception], ...]:
    """What opening a store may raise (evaluated when raised: psycopg's only once it is loaded)."""
    return (sqlite3.Error, OSError, *postgres.errors())


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise StoreError(f"unknown status '{status}'", fix=f"use one of: {', '.join(STATUSES)}")
    return status


def check_name(name: str) -> str:
    name = name.strip()
    if any(character in name for character in "\r\n\0"):
        raise StoreError("a line break or NUL character in the name", fix="give the name on one line")
    return name


def check_tags(tags: Iterable[str]) -> list[str]:
    """Tags as a CSV can hold them again: no ';' (the separator), no line break or NUL."""
    tags = [tag.strip() for tag in tags if tag.strip()]
    for tag in tags:
        if any(character in tag for character in ";\r\n\0"):
            raise StoreError(f"tag {tag!r} has a ';', a line break or a NUL character", fix="give each tag on its own")
    return tags


def check_fields(fields: dict[str, str]) -> dict[str, str]:
    for title, value in fields.items():
        if not isinstance(title, str) or not isinstance(value, str) or "\0" in title or "\0" in value:
            raise StoreError(f"field {title!r} must be text without NUL characters")
    return fields


def dump_fields(fields: dict[str, str]) -> str:
    """``json.dumps(fields, ensure_ascii=False, separators=(",", ":"))`` for text values, about twice as fast
    (an import calls it for every row): each string quoted by json's own C quoting."""
    return "{" + ",".join([f"{_quote(title)}:{_quote(value)}" for title, value in fields.items()]) + "}"


def _digest(nonce: str) -> str:
    """What the store keeps of a confirmation nonce: its SHA-256 (a stolen db holds no usable nonce)."""
    return hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).hexdigest()


def _stamp(db: Any) -> None:
    """The meta rows a new store starts with (kept when present)."""
    for name, value in (("hash_key", secrets.token_hex(32)), ("revision", "0")):
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (name, value))
