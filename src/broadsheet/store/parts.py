"""A long CSV read for an import by one process per core.

Reading and validating a row is Python work that one process does at one core's pace. A list of at least
``audience.parts.SPLIT_BYTES`` is cut into parts (``audience.parts``); each part is read by a process of its own into its
own staging file, in the staged form the import moves (``staged.staged_chunks``), and sorted there by
(address, line) into a ``WITHOUT ROWID`` table; the import then merges the sorted parts with one
``INSERT … SELECT … UNION ALL … ORDER BY`` that SQLite runs as a merge (no sort). The reading and the
sorting run on every core. A part that did not end between rows, or a reader that failed or was killed,
sends the list back to the one-process read (``audience.parts.in_processes``).
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..audience import RowProblem
from ..audience.addresses import AddressChecker
from ..audience.bulk import collector_paused, insert_many
from ..audience.parts import Part, in_processes, read_part, split
from .schema import STATUSES
from .staged import STAGED, staged_chunks

SORT_CACHE_KIB = 16_384  # each part's page cache while it sorts itself (also the sort's memory)
SORTED = "sorted"  # each part file's table of staged rows in (key, line) order


@dataclass
class PartOutcome:
    """What reading one part gave: rows staged and problems in line order."""

    rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)


def stage_in_parts(path: Path, folder: Path, *, processes: int | None = None) -> list[tuple[Path, PartOutcome]] | None:
    """The list's parts read and sorted by one process each (one per core by default) into part files in
    ``folder``, with what each gave; None when the list is not one to split or has to be read again by
    one process (a part cut inside a row, a reader that failed)."""
    parts = split(path, processes)
    if parts is None:
        return None
    outcomes = in_processes(functools.partial(stage_part, folder=folder), parts)
    if outcomes is None:
        return None
    return [(_part_file(folder, number), outcome) for number, outcome in enumerate(outcomes)]


def _part_file(folder: Path, number: int) -> Path:
    return folder / f"part-{number}.db"


def stage_part(number: int, part: Part, *, folder: Path) -> PartOutcome:
    """In a child process: one part into a new file, appended to ``rows`` as read, then copied sorted into
    SORTED, keyed by (key, line) so that the parts merge without a sort."""
    outcome = PartOutcome()
    columns = ", ".join(STAGED)
    db = sqlite3.connect(_part_file(folder, number), isolation_level=None)
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
    finally:
        db.close()
    return outcome
