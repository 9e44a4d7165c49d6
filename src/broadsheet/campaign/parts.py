"""A long CSV list loaded into the journal by one process per core.

Reading and validating a row is Python work that one process does at one core's pace, whatever the
machine has. For a list of at least ``SPLIT_BYTES`` that needs nothing of the whole list at once
(``SubscriberList.splittable``), the file is cut into parts (``audience.parts``); each part is read by
its own process into its own staging file, which it then sorts by address; the journal merges the sorted
parts in with one ``INSERT … SELECT`` (``Journal.load_staged``), the first row of an address (by line)
kept. The reading and the sorting run on every core; only the merge runs on one. A part that
did not end between rows, or a reader that failed or was killed, sends the list back to the one-process load.
"""

from __future__ import annotations

import collections
import multiprocessing
import shutil
import signal
import sqlite3
import tempfile
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path

from ..audience import RowProblem, SubscriberList
from ..audience.addresses import AddressChecker
from ..audience.bulk import collector_paused, insert_many
from ..audience.parts import CutInsideRow, Part, cores, cut, read_part
from ..audience.subscriber_list import sort_out
from ..errors import AudienceError
from .journal import CampaignRecord, Journal
from .recipients import journal_chunks

SPLIT_BYTES = 32 << 20  # lists this big or bigger are read in parts (smaller ones: starting processes costs more)
MAX_PARTS = 8  # SQLite attaches at most 10 files to one connection
SORT_CACHE_KIB = 16_384  # each part's page cache while it sorts itself (also the sort's memory)


@dataclass
class PartOutcome:
    """What reading one part gave: rows staged, problems and left-out rows in line order, or why not."""

    staged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    cut_inside_row: bool = False
    error: tuple[str, str | None, str | None] | None = None  # an AudienceError's message, where, fix
    failed: str = ""  # any other failure (the list is then read by one process, which reports it)


def load_in_parts(
    journal: Journal,
    record: CampaignRecord,
    fingerprint: str,
    subscribers: SubscriberList,
    *,
    processes: int | None = None,
) -> int | None:
    """Load the list in parts (one process each, one per core by default) and return the count
    ``load_recipient_chunks`` would; None when it is not a list to split (then nothing was loaded). Sets
    the list's ``problems`` and ``skipped`` as a pass over it would."""
    if subscribers.path.stat().st_size < SPLIT_BYTES or not subscribers.splittable():
        return None
    parts = cut(subscribers.path, min(processes or cores(), MAX_PARTS))
    if len(parts) < 2:
        return None
    folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=journal.path.parent))
    try:
        files = [str(folder / f"part-{number}.db") for number in range(len(parts))]
        outcomes = _stage_all(parts, files)
        if outcomes is None or any(outcome.cut_inside_row or outcome.failed for outcome in outcomes):
            return None
        for outcome in outcomes:
            if outcome.error is not None:
                message, where, fix = outcome.error
                raise AudienceError(message, where=where, fix=fix)
        subscribers.problems = [problem for outcome in outcomes for problem in outcome.problems]
        subscribers.skipped = collections.Counter()
        for outcome in outcomes:
            subscribers.skipped.update(outcome.skipped)
        loaded = journal.load_staged(record, fingerprint, [Path(file) for file in files])
        subscribers.count_duplicates(sum(outcome.staged for outcome in outcomes) - loaded)
        return loaded
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stage_part(part: Part, file: str) -> PartOutcome:
    """In a child process: one part of the list into a new staging file, appended to ``rows``, then copied
    sorted into ``sorted`` (keyed by address and line: the journal merges the parts without a sort)."""
    outcome = PartOutcome()
    skipped: collections.Counter[str] = collections.Counter()
    db = sqlite3.connect(file, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TABLE rows (email TEXT, line INTEGER, data TEXT)")
        subscribers = (sort_out(chunk, outcome.problems, skipped) for chunk in read_part(part, AddressChecker()))
        with collector_paused():
            for rows in journal_chunks(subscribers):
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
    except CutInsideRow:
        return PartOutcome(cut_inside_row=True)
    except AudienceError as exc:
        return PartOutcome(error=(exc.message, exc.where, exc.fix))
    finally:
        db.close()
    outcome.skipped = dict(skipped)
    return outcome


def _stage_all(parts: list[Part], files: list[str]) -> list[PartOutcome] | None:
    """Each part staged by a process of its own; None when one ended without an answer (killed). Ctrl-C
    reaches this process only (the readers ignore it): the readers are stopped and it goes on up."""
    context = _start_method()
    answers: list[Connection] = []
    processes: list[BaseProcess] = []
    try:
        for number, (part, file) in enumerate(zip(parts, files, strict=True)):
            answer, sender = context.Pipe(duplex=False)
            process = context.Process(target=_read_part, args=(part, file, sender), name=f"broadsheet-part-{number}")
            process.daemon = True
            process.start()
            sender.close()
            answers.append(answer)
            processes.append(process)
        outcomes: list[PartOutcome] = []
        for answer in answers:
            try:
                outcomes.append(answer.recv())
            except EOFError:
                return None
        return outcomes
    finally:
        for reader in processes:
            if reader.is_alive():
                reader.terminate()
            reader.join()
        for answer in answers:
            answer.close()


def _read_part(part: Part, file: str, answer: Connection) -> None:
    """A part reader's whole life: its outcome sent back, never a traceback on its stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sender's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the sender stops a reader with SIGTERM: it just ends
    try:
        outcome = stage_part(part, file)
    except Exception as exc:  # e.g. a full disk: the sender reads the list itself and reports it
        outcome = PartOutcome(failed=f"{type(exc).__name__}: {exc}")
    answer.send(outcome)
    answer.close()


def _start_method() -> ForkContext | SpawnContext:
    """fork when this process runs one thread (cheap: nothing to import again), else spawn (forking a
    process with threads can copy a lock another thread holds)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")
