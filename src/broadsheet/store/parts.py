"""A long CSV read for an import by one process per core.

Reading and validating a row is Python work that one process does at one core's pace. A list of at least
SPLIT_BYTES is cut into parts (``audience.parts``); each part is read by a process of its own into its
own staging file, in the staged form the import moves (``staged.staged_chunks``), and sorted there by
(address, line) into a ``WITHOUT ROWID`` table; the import then merges the sorted parts with one
``INSERT … SELECT … UNION ALL … ORDER BY`` that SQLite runs as a merge (no sort). The reading and the
sorting run on every core. A part that did not end between rows, or a reader that failed or was killed,
sends the list back to the one-process read. (The process handling is the journal's
``campaign.parts``, which this room cannot import.)
"""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path

from ..audience import RowProblem
from ..audience.addresses import AddressChecker
from ..audience.bulk import collector_paused, insert_many
from ..audience.parts import CutInsideRow, Part, cores, cut, read_part
from ..errors import AudienceError
from .schema import STATUSES
from .staged import STAGED, staged_chunks

SPLIT_BYTES = 32 << 20  # lists this big or bigger are read in parts (smaller ones: starting processes costs more)
MAX_PARTS = 8  # SQLite attaches at most 10 files to one connection (the store and its staging file too)
SORT_CACHE_KIB = 16_384  # each part's page cache while it sorts itself (also the sort's memory)
SORTED = "sorted"  # each part file's table of staged rows in (key, line) order


@dataclass
class PartOutcome:
    """What reading one part gave: rows staged and problems in line order, or why not."""

    rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    cut_inside_row: bool = False
    error: tuple[str, str | None, str | None] | None = None  # an AudienceError's message, where, fix
    failed: str = ""  # any other failure (the list is then read by one process, which reports it)


def stage_in_parts(path: Path, folder: Path, *, processes: int | None = None) -> list[tuple[Path, PartOutcome]] | None:
    """The list's parts read and sorted by one process each (one per core by default) into part files in
    ``folder``, with what each gave; None when the list is not one to split or has to be read again by
    one process (a part cut inside a row, a reader that failed)."""
    try:
        if path.stat().st_size < SPLIT_BYTES:
            return None
    except OSError:  # the one-process read says what is wrong with the path
        return None
    parts = cut(path, min(processes or cores(), MAX_PARTS))
    if len(parts) < 2:
        return None
    files = [folder / f"part-{number}.db" for number in range(len(parts))]
    outcomes = _stage_all(parts, files)
    if outcomes is None or any(outcome.cut_inside_row or outcome.failed for outcome in outcomes):
        return None
    for outcome in outcomes:
        if outcome.error is not None:
            message, where, fix = outcome.error
            raise AudienceError(message, where=where, fix=fix)
    return list(zip(files, outcomes, strict=True))


def stage_part(part: Part, file: Path) -> PartOutcome:
    """In a child process: one part into a new file, appended to ``rows`` as read, then copied sorted into
    SORTED, keyed by (key, line) so that the parts merge without a sort."""
    outcome = PartOutcome()
    columns = ", ".join(STAGED)
    db = sqlite3.connect(file, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
            db.execute(f"PRAGMA {pragma}")
        db.execute(f"CREATE TABLE rows ({columns})")
        chunks = read_part(part, AddressChecker(), wanted=STATUSES)
        with collector_paused():
            for rows in staged_chunks(chunks, outcome.problems.append):
                db.execute("BEGIN")
                insert_many(db, f"INSERT INTO rows ({columns})", rows)
                db.execute("COMMIT")
                outcome.rows += len(rows)
        db.execute(f"PRAGMA cache_size={-SORT_CACHE_KIB}")
        db.execute(f"CREATE TABLE {SORTED} ({columns}, PRIMARY KEY (key, line)) WITHOUT ROWID")
        db.execute(f"INSERT INTO {SORTED} ({columns}) SELECT {columns} FROM rows ORDER BY key, line")
    except CutInsideRow:
        return PartOutcome(cut_inside_row=True)
    except AudienceError as exc:
        return PartOutcome(error=(exc.message, exc.where, exc.fix))
    finally:
        db.close()
    return outcome


def _stage_all(parts: list[Part], files: list[Path]) -> list[PartOutcome] | None:
    """Each part staged by a process of its own; None when one ended without an answer (killed). Ctrl-C
    reaches this process only (the readers ignore it): the readers are stopped and it goes on up."""
    context = _start_method()
    answers: list[Connection] = []
    processes: list[BaseProcess] = []
    try:
        for number, (part, file) in enumerate(zip(parts, files, strict=True)):
            answer, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_read_part, args=(part, file, sender), name=f"broadsheet-import-part-{number}"
            )
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


def _read_part(part: Part, file: Path, answer: Connection) -> None:
    """A part reader's whole life: its outcome sent back, never a traceback on its stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the importer's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the importer stops a reader with SIGTERM: it just ends
    try:
        outcome = stage_part(part, file)
    except Exception as exc:  # e.g. a full disk: the importer reads the list itself and reports it
        outcome = PartOutcome(failed=f"{type(exc).__name__}: {exc}")
    answer.send(outcome)
    answer.close()


def _start_method() -> ForkContext | SpawnContext:
    """fork when this process runs one thread (cheap: nothing to import again), else spawn (forking a
    process with threads can copy a lock another thread holds)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")
