"""``broadsheet db copy``: the SQLite journal's every row into the journal in PostgreSQL, resumably (as the
store's, ``db.copy``). The target takes the source's uid, so the sent-marks beside the project's journal
still name the journal that sent: a send after the switch resumes every campaign, mailing no one again."""

from __future__ import annotations

from collections.abc import Callable

from broadsheet.core.errors import CampaignError

from ..db.copy import CopyReport, Side, Table, copy_tables, nothing_held
from .journal import Journal
from .postgres import PostgresJournal

# parents before children (the foreign keys); rows gone from SQLite go first: a recipient dropped from a
# list and added again has a new id for the same (campaign, email)
TABLES = (
    Table(
        "campaigns",
        ("id",),
        (
            "id",
            "key",
            "issue_id",
            "slug",
            "transport",
            "issue_dir",
            "subject",
            "list_fingerprint",
            "generation",
            "created",
        ),
        identity=True,
    ),
    Table(
        "workers",
        ("id",),
        ("id", "campaign", "host", "pid", "started", "heartbeat", "last_batch", "batches", "stopped"),
        identity=True,
    ),
    Table(
        "recipients",
        ("id",),
        (
            "id",
            "campaign",
            "email",
            "line",
            "data",
            "generation",
            "state",
            "attempts",
            "detail",
            "message_id",
            "next_attempt",
            "updated",
        ),
        identity=True,
    ),
    Table("leases", ("recipient",), ("recipient", "worker", "lease_until")),
    Table("buckets", ("campaign", "name"), ("campaign", "name", "tokens", "stamp")),
    Table("meta", ("name",), ("name", "value"), into="journal_meta"),
)


def journal_side(journal: Journal) -> Side:
    """A journal as one side of a copy: a transaction at a time (the send locks keep sends out meanwhile)."""
    return Side(journal.db, nothing_held, journal._transaction)


def copy_journal(
    source: Journal, target: PostgresJournal, progress: Callable[[str, int], None] = lambda table, rows: None
) -> CopyReport:
    """Make ``target`` hold what ``source`` holds; refused when ``target`` holds another journal's campaigns."""
    if target.uid != source.uid and target.db.execute("SELECT 1 FROM campaigns LIMIT 1").fetchone():
        raise CampaignError(
            "the PostgreSQL database holds another send journal's campaigns already", where=target.where,
            fix="copy into an empty database, or into the one this journal was copied to before",
        )  # fmt: skip
    report = copy_tables(journal_side(source), journal_side(target), TABLES, progress, removing_first=True)
    target.uid = source.uid
    return report
