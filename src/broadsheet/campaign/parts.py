"""A long CSV list loaded into the journal by one process per core.

Reading and validating a row is Python work that one process does at one core's pace, whatever the
machine has. A list of at least ``audience.parts.SPLIT_BYTES`` whose pass can run in pieces (``SubscriberList.splittable``)
is cut into parts (``audience.parts``). This process begins the pass (segments checked; suppressed and
opted-out addresses in its ledger); each part is read by its own process through the same pass, with a
read-only view of that ledger, into its own staging file, which it then sorts by address; the journal
merges the sorted parts in with one ``INSERT … SELECT`` (``Journal.load_staged``), the first row of an
address (by line) kept. The reading and the sorting run on every core; only the merge runs on one. A part
that did not end between rows, or a reader that failed or was killed, sends the list back to the
one-process load."""

from __future__ import annotations

import contextlib
import functools
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..audience import RowProblem, SubscriberList
from ..audience.bulk import collector_paused, insert_many, staging_folder
from ..audience.ledger import Ledger
from ..audience.parts import Part, in_processes, part_facts, read_facts_of_part, read_part, split
from ..store.recipients import CheckedList
from ..store.store import Store
from .journal import CampaignRecord, Journal
from .recipients import journal_chunks

SORT_CACHE_KIB = 16_384  # each part's page cache while it sorts itself (also the sort's memory)


@dataclass
class PartOutcome:
    """What reading one part gave: rows staged, problems and left-out rows in line order."""

    staged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    left_out_by_store: int = 0


def load_in_parts(
    journal: Journal,
    record: CampaignRecord,
    fingerprint: str,
    recipients: SubscriberList | CheckedList,
    *,
    processes: int | None = None,
) -> int | None:
    """Load the list in parts (one process each, one per core by default) and return the count
    ``load_recipient_chunks`` would; None when it is not a list to split (then nothing was loaded). Sets
    the list's ``problems`` and ``skipped`` (and a CheckedList's ``left_out``) as a pass over it would."""
    checked = recipients if isinstance(recipients, CheckedList) else None
    subscribers = checked.subscribers if checked is not None else recipients
    assert isinstance(subscribers, SubscriberList)
    parts = split(subscribers.path, processes) if subscribers.splittable() else None
    if parts is None:
        return None
    folder = staging_folder(journal.path.parent)
    try:
        facts = None
        if subscribers.needs_facts():  # the opted-out rows and the tags, read in parts too, before the pass
            job = functools.partial(read_facts_of_part, folder=str(folder), tags=bool(subscribers.segments))
            answers = in_processes(job, parts)
            if answers is None:
                return None
            facts = part_facts(folder, answers)
        with subscribers.pass_ledger(facts) as ledger:  # segments checked, suppressed and opted out noted
            store = str(checked.root) if checked is not None else None
            task = PartTask(tuple(sorted(subscribers.segments)), str(ledger.path), store)
            outcomes = in_processes(functools.partial(stage_part, folder=str(folder), task=task), parts)
        if outcomes is None:
            return None
        for outcome in outcomes:  # in line order, as one pass would have noted them
            subscribers.problems.extend(outcome.problems)
            subscribers.skipped.update(outcome.skipped)
        if checked is not None:
            checked.left_out = sum(outcome.left_out_by_store for outcome in outcomes)
        loaded = journal.load_staged(record, fingerprint, [part_file(folder, number) for number in range(len(parts))])
        subscribers.count_duplicates(sum(outcome.staged for outcome in outcomes) - loaded)
        return loaded
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def part_file(folder: Path, number: int) -> Path:
    return folder / f"part-{number}.db"


@dataclass(frozen=True)
class PartTask:
    """What every part reader needs of the list besides its part: the segments, and the pass's ledger."""

    segments: tuple[str, ...]
    ledger: str  # path of the ledger file (read-only for the readers)
    store: str | None = None  # the project whose subscriber store checks the list (a CheckedList), if any


def stage_part(number: int, part: Part, *, folder: str, task: PartTask) -> PartOutcome:
    """In a child process: one part of the list through the pass (``SubscriberList.part_chunks``) into a new
    staging file, appended to ``rows``, then copied sorted into ``sorted`` (keyed by address and line: the
    journal merges the parts without a sort)."""
    outcome = PartOutcome()
    subscribers = SubscriberList(part.path, segments=task.segments, deduplicate=False)
    checked = CheckedList(subscribers, Path(task.store)) if task.store is not None else None
    db = sqlite3.connect(part_file(Path(folder), number), isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TABLE rows (email TEXT, line INTEGER, data TEXT)")
        with contextlib.ExitStack() as stack:
            ledger = stack.enter_context(Ledger.reader(Path(task.ledger)))
            chunks = subscribers.part_chunks(read_part(part, subscribers.addresses), ledger)
            if checked is not None:
                chunks = checked.checked(chunks, stack.enter_context(Store.for_project(checked.root)))
            stack.enter_context(collector_paused())
            for rows in journal_chunks(chunks):
                db.execute("BEGIN")
                insert_many(db, "INSERT INTO rows (email, line, data)", rows)
                db.execute("COMMIT")
                outcome.staged += len(rows)
        db.execute(f"PRAGMA cache_size={-SORT_CACHE_KIB}")
        db.execute(
            "CREATE TABLE sorted (email TEXT COLLATE NOCASE, line INTEGER, data TEXT, PRIMARY KEY (email, line))"
            " WITHOUT ROWID"
        )
        db.execute("INSERT INTO sorted SELECT email, line, data FROM rows ORDER BY email COLLATE NOCASE, line")
    finally:
        db.close()
    outcome.problems, outcome.skipped = subscribers.problems, dict(subscribers.skipped)
    outcome.left_out_by_store = checked.left_out if checked is not None else 0
    return outcome
