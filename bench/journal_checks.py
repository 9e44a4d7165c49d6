"""Benchmark: what the journal's safety checks cost at a million recipients.

Sets up two campaigns of ``--rows`` recipients each in a fresh journal: an earlier one, all sent, and a
new one with the same subject, all queued. Times ``Journal.recent_same_subject`` (the check `send` runs
before it asks), the migration of a schema-1 journal of that size (to schema 3, which adds the
``recipients_sent`` index), ``claim`` (which now also checks that the journal file is still in place),
and the daily cap's counts (``sent_between`` for yesterday's million and today's few, ``first_sent``).

    .venv/bin/python bench/journal_checks.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from broadsheet.core.audience import Subscriber
from broadsheet.usecases.campaign import Journal, Outcome, prepare_campaign


def people(rows: int):
    return (Subscriber(f"reader{i:07d}@example{i % 500}.com", "", "", (), {}, i + 2) for i in range(rows))


def timed(label: str, work):
    started = time.perf_counter()
    result = work()
    print(f"{label}: {time.perf_counter() - started:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(
        f"# {platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"SQLite {sqlite3.sqlite_version} · {time.strftime('%Y-%m-%d %H:%M')} · {args.rows:,} rows"
    )
    with tempfile.TemporaryDirectory(prefix="broadsheet-journal-") as tmp:
        root = Path(tmp)
        with Journal.for_project(root) as journal:
            earlier = timed(
                "set-up, earlier campaign",
                lambda: (
                    prepare_campaign(
                        journal,
                        slug="2026-11-24-news",
                        transport="smtp",
                        issue_dir="issues/a",
                        fingerprint="f",
                        subscribers=people(args.rows),
                        issue_id="a1",
                        subject="Weekly news",
                    ).record
                ),
            )
            journal.db.execute(
                "UPDATE recipients SET state = 'sent', attempts = 1, updated = ? WHERE campaign = ?",
                (time.time() - 86400, earlier.id),
            )
            current = timed(
                "set-up, new campaign",
                lambda: (
                    prepare_campaign(
                        journal,
                        slug="2026-12-01-news",
                        transport="smtp",
                        issue_dir="issues/b",
                        fingerprint="f",
                        subscribers=people(args.rows),
                        issue_id="b2",
                        subject="Weekly  NEWS",
                    ).record
                ),
            )
            found = timed("recent_same_subject", lambda: journal.recent_same_subject(current))
            assert found and found[0].recipients == args.rows, found
            claims = 2000
            started = time.perf_counter()
            for _ in range(claims):
                rows = journal.claim(current, 1, time.time())
                journal.record([Outcome(rows[0].id, "sent")])
            print(f"claim + record of one row: {(time.perf_counter() - started) / claims * 1e6:.0f} µs")
            now = time.time()
            today = now - now % 86400
            yesterday = timed(
                "sent_between, the day a million went", lambda: journal.sent_between(now - 90000, now - 80000)
            )
            assert yesterday == args.rows, yesterday
            sent_today = timed("sent_between, today", lambda: journal.sent_between(today, today + 86400))
            print(f"  (today: {sent_today:,} sent)")
            timed("first_sent", journal.first_sent)
        with sqlite3.connect(root / ".broadsheet" / "state.db") as db:  # back to schema 1, to time the migration
            db.executescript("""
                CREATE TABLE old (id INTEGER PRIMARY KEY, slug TEXT NOT NULL, transport TEXT NOT NULL,
                  issue_dir TEXT NOT NULL DEFAULT '', list_fingerprint TEXT NOT NULL,
                  generation INTEGER NOT NULL DEFAULT 1, created TEXT NOT NULL, UNIQUE (slug, transport));
                INSERT INTO old SELECT id, slug, transport, issue_dir, list_fingerprint, generation, created FROM campaigns;
                DROP TABLE campaigns; ALTER TABLE old RENAME TO campaigns; DROP TABLE meta;
                DROP INDEX recipients_sent;
                PRAGMA application_id = 0; PRAGMA user_version = 0;
            """)
        timed(
            f"open + migrate a schema-1 journal of {2 * args.rows:,} rows to schema 3",
            lambda: Journal.for_project(root).close(),
        )


if __name__ == "__main__":
    main()
