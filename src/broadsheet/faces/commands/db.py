"""broadsheet db ACTION: the subscriber store's database.

migrate           bring the configured store ([database] url, else .broadsheet/audience.db) to this version
copy --to URL     copy the project's SQLite store and send journal into PostgreSQL (again: catch up; resumable)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from broadsheet.core.config import database_url_problem
from broadsheet.core.errors import ConfigError, StoreError

from . import Subparsers, project_config

if TYPE_CHECKING:
    from broadsheet.data.db.copy import CopyReport


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "db", help="migrate the subscriber store's database; copy it from SQLite to PostgreSQL",
        description="The subscriber store's database: SQLite in .broadsheet/audience.db, or PostgreSQL when "
        "[database] url is set (the password from BROADSHEET_DATABASE_PASSWORD or libpq's files).",
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser(
        "migrate", help="bring the configured store to this broadsheet's schema",
        description="Creates the store's tables, or migrates them to this broadsheet's schema version, in one "
        "transaction (on PostgreSQL under an advisory lock: two processes never migrate at once). Every command "
        "does this when it opens the store; run it to do it ahead of a deploy.",
    )  # fmt: skip
    copy = actions.add_parser(
        "copy", help="copy the project's SQLite store and send journal into PostgreSQL",
        description="Copies every row of .broadsheet/audience.db and .broadsheet/state.db (the send journal) into "
        "the PostgreSQL database at --to, a batch "
        "per transaction; a row copied before is brought up to date, one gone from SQLite (a forgotten address) "
        "is removed. Interrupted, run it again: it goes on. Stop serve and sends for a last run, then set "
        "[database] url.",
    )  # fmt: skip
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host:port/dbname (no password)")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    from broadsheet.data.store import Store, store_path
    from broadsheet.data.store.schema import SCHEMA_VERSION

    if args.action == "migrate":
        with Store.for_config(config) as store:
            print(f"the subscriber store ({store.where}) is at schema version {SCHEMA_VERSION}")
        if config.database.url:
            from broadsheet.data.journal.engines import open_journal_for
            from broadsheet.data.journal.file import SCHEMA_VERSION as JOURNAL_VERSION

            with open_journal_for(config) as journal:
                print(f"the send journal ({journal.where}) is at schema version {JOURNAL_VERSION}")
        return 0
    problem = database_url_problem(args.to)
    if problem is not None or not args.to.strip():
        raise ConfigError(f"--to {problem or 'is empty'}", fix="give --to postgresql://user@host:5432/dbname")
    url = args.to.strip()
    from broadsheet.data.journal.journal import journal_path

    has_journal = journal_path(config.root).is_file()
    if not Store.exists_for(config.root) and not has_journal:
        raise StoreError("there is no SQLite store or send journal to copy", where=str(store_path(config.root)))
    if Store.exists_for(config.root):
        from broadsheet.data.store.copy import copy_store

        with Store.for_project(config.root) as source, Store(url) as target:
            _said(copy_store(source, target, progress=_progress("")), "")
    if has_journal:
        from broadsheet.data.journal.copy import copy_journal
        from broadsheet.data.journal.journal import Journal
        from broadsheet.data.journal.postgres import PostgresJournal

        # both send locks held: no send writes to either journal meanwhile
        path = journal_path(config.root)
        with Journal(path, lock=True) as source:
            journal = PostgresJournal(url, path, lock=True)
            try:
                _said(copy_journal(source, journal, progress=_progress("journal ")), "journal ")
            finally:
                journal.close()
    if url != config.database.url:
        print(f'next: set [database] url = "{url}" in broadsheet.toml')
    return 0


def _progress(prefix: str) -> Callable[[str, int], None]:
    return lambda table, rows: print(f"  {prefix}{table}: {rows:,}", file=sys.stderr)


def _said(report: CopyReport, prefix: str) -> None:
    for table, copied in report.copied.items():
        removed = report.removed.get(table, 0)
        gone = f", {removed:,} gone from SQLite removed" if removed else ""
        print(f"{prefix}{table}: {copied:,} row(s) copied{gone}")
