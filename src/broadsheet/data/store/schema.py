"""The store's tables, one schema for both engines: INTEGER/TEXT columns, ISO 8601 UTC timestamps as TEXT,
JSON as TEXT, a lower-cased ``email_key`` with a UNIQUE constraint (no COLLATE NOCASE), upserts written as
``INSERT … ON CONFLICT``. On PostgreSQL the runner writes an identity column where SQLite writes ``INTEGER
PRIMARY KEY`` (``db.dialect.postgres_ddl``), and nothing else differs.
"""

from __future__ import annotations

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # every time the store writes: ISO 8601 UTC, to the second
STATUSES = ("unconfirmed", "subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSING = ("unsubscribed", "bounced", "complained")  # never mailed again
# How firmly a status keeps an address from being mailed: suppression only ever gets stronger
# (complained > bounced > unsubscribed), and only an explicit resubscribe lowers it.
STRENGTH = {"unconfirmed": 0, "subscribed": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}


def settled(old: str, new: str, *, resubscribe: bool = False) -> str:
    """The status an address of status ``old`` has after ``new`` is asked: ``new``, unless it is weaker
    and this is no explicit resubscribe (a one-click or a bounce never lifts a complaint)."""
    return new if resubscribe or STRENGTH[new] >= STRENGTH[old] else old


def weaker_sql(column: str, than: str) -> str:
    """SQL that is true when the status in ``column`` is weaker than the status in ``than`` (SQL too)."""
    return f"{_strength_sql(column)} < {_strength_sql(than)}"


def _strength_sql(column: str) -> str:
    cases = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STRENGTH.items() if rank)
    return f"(CASE {column} {cases} ELSE 0 END)"


# The event a status change records.
STATUS_EVENTS = {
    "unconfirmed": "signed_up",
    "subscribed": "subscribed",
    "unsubscribed": "unsubscribed",
    "bounced": "bounced_hard",
    "complained": "complained",
}

# Step n brings a store of version n to n + 1 (db/migrate.py). Every statement is idempotent: a store
# missing its meta rows is brought up again from step 0.
STEPS = (
    # 0 → 1: the subscribers, their tags and events, the forgotten addresses
    """CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    fields TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    nonce TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    subscriber INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    PRIMARY KEY (subscriber, tag_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    subscriber INTEGER REFERENCES subscribers (id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    campaign TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    dedupe_key TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_dedupe_key ON events (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_subscriber ON events (subscriber, kind, at);
CREATE TABLE IF NOT EXISTS forgotten (
    email_hash TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
""",
    # 1 → 2: the intake
    """-- sign-ups serve answered, until its mailing thread applies (sign_up) and mails them (mailing: since when)
CREATE TABLE IF NOT EXISTS intake (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    at TEXT NOT NULL,
    mailing TEXT NOT NULL DEFAULT ''
);
""",
    # 2 → 3: the version moves from meta's schema_version row to PRAGMA user_version, as the journal's
    """
DELETE FROM meta WHERE key = 'schema_version';
""",
    # 3 → 4: counted clicks (data/store/clicks.py); subscriber only with [tracking] per_subscriber
    """CREATE TABLE IF NOT EXISTS clicks (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    link INTEGER NOT NULL,
    url TEXT NOT NULL,
    at TEXT NOT NULL,
    scanner INTEGER NOT NULL DEFAULT 0,
    subscriber INTEGER REFERENCES subscribers (id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS clicks_by_campaign ON clicks (campaign, link);
""",
    # 4 → 5: who entered which sequence, and when they left it (sequences/)
    """CREATE TABLE IF NOT EXISTS sequence_members (
    subscriber INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    sequence TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    stopped_at TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sequence, subscriber)
) WITHOUT ROWID;
""",
    # 5 → 6: the topics ([topics] tags) a subscriber left on the unsubscribe page; a send to that segment skips them
    """CREATE TABLE IF NOT EXISTS topic_choices (
    subscriber INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    topic_key TEXT NOT NULL,
    left_at TEXT NOT NULL,
    PRIMARY KEY (subscriber, topic_key)
) WITHOUT ROWID;
""",
    # 6 → 7: the confirmation mails of the last hour, by mailbox (a keyed hash): serve's per-mailbox limit,
    # one for every replica sharing the store (data/store/mailboxes.py)
    """CREATE TABLE IF NOT EXISTS confirmation_mails (
    id INTEGER PRIMARY KEY,
    mailbox TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS confirmation_mails_by_mailbox ON confirmation_mails (mailbox, at);
CREATE INDEX IF NOT EXISTS confirmation_mails_by_time ON confirmation_mails (at);
""",
)
SCHEMA_VERSION = len(STEPS)
