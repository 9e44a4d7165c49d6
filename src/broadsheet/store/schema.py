"""The store's tables, kept portable to PostgreSQL: INTEGER/TEXT columns, ISO 8601 UTC timestamps as TEXT,
JSON as TEXT, a lower-cased ``email_key`` with a UNIQUE constraint (no COLLATE NOCASE), upserts written as
``INSERT … ON CONFLICT``. A PostgreSQL backend would write ``BIGINT GENERATED ALWAYS AS IDENTITY`` where
SQLite writes ``INTEGER PRIMARY KEY``, and nothing else differs.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

STATUSES = ("unconfirmed", "subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSING = ("unsubscribed", "bounced", "complained")  # never mailed again

# The event a status change records.
STATUS_EVENTS = {
    "unconfirmed": "signed_up",
    "subscribed": "subscribed",
    "unsubscribed": "unsubscribed",
    "bounced": "bounced_hard",
    "complained": "complained",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
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
CREATE INDEX IF NOT EXISTS subscribers_by_status ON subscribers (status, id);
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
"""
