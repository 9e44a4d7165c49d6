"""A long list cut into parts that separate processes read at once (one per core): ``cut``, ``read_part``
and ``in_processes`` (the journal's load and the store's import use them).

The cut is at a line end near each share of the file. Whether a row runs across it (a quoted value with
line breaks) cannot be seen from the bytes, so every part but the last is read with one extra line, a
sentinel, after its own lines: the CSV reader hands the sentinel back as a row of its own only when the
part ended between rows. When it did not, ``read_part`` raises ``CutInsideRow`` and the caller reads the
list in one piece instead. Each part numbers its lines as the whole file does.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import multiprocessing
import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import BinaryIO, Generic, NamedTuple, TypeVar

from ..errors import AudienceError
from .addresses import AddressChecker
from .csvfile import CsvFile, open_csv
from .model import ListRow, RowProblem
from .subscriber_list import CHUNK, Columns, ListFacts, RowReader, read_facts

SENTINEL = "broadsheet: end of part 5f0c2a\n"  # a line no row reads as, alone, unless the part ended between rows
SCAN_BLOCK = 1 << 20
# Lists this big or bigger (about 100,000 rows) are read in parts: below it, starting processes costs more.
SPLIT_BYTES = 8 << 20
MAX_PARTS = 8  # SQLite attaches at most 10 files to one connection (the parts, the database, a staging file)

R = TypeVar("R")


class CutInsideRow(Exception):
    """A part did not end between two rows (a quoted value runs across the cut): read the list whole."""


@dataclass(frozen=True)
class Part:
    """Bytes ``start`` to ``end`` (None: to the end of the file) of the list, lines from ``first_line``."""

    path: Path
    header: list[str]
    delimiter: str
    start: int
    end: int | None
    first_line: int


def split(path: Path, processes: int | None = None) -> list[Part] | None:
    """The list cut for one reader per core (or ``processes``), when it is long enough to be worth
    starting them; None otherwise (or when it is not a file: the one-process read says what is wrong)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size < SPLIT_BYTES:
        return None
    parts = cut(path, min(processes or cores(), MAX_PARTS))
    return parts if len(parts) > 1 else None


def cut(path: Path, parts: int) -> list[Part]:
    """The list's rows after its header in ``parts`` parts of about the same size (fewer for a short list)."""
    with open_csv(path) as stream:
        csv_file = CsvFile(path, stream)
        header, delimiter, header_lines = csv_file.header, csv_file.delimiter, csv_file.lines_read
    size = path.stat().st_size
    with open(path, "rb") as raw:
        start, line = _after_lines(raw, header_lines), header_lines + 1
        cuts: list[Part] = []
        for number in range(1, parts):
            end = _line_end_after(raw, max(start, size * number // parts))
            if end is None or end >= size:
                break
            cuts.append(Part(path, header, delimiter, start, end, line))
            line += _count_lines(raw, start, end)
            start = end
        cuts.append(Part(path, header, delimiter, start, None, line))
    return cuts


def read_part(
    part: Part, addresses: AddressChecker, *, wanted: Container[str] = ("subscribed",)
) -> Iterator[list[ListRow | RowProblem]]:
    """``list_chunks`` for one part. CutInsideRow, after the part's last chunk, when it did not end between
    two rows: what it handed on is then wrong, and must be thrown away."""
    with _part_csv(part) as csv_file:
        read = RowReader(Columns(csv_file), addresses, wanted).read
        for chunk in csv_file.chunks(CHUNK):
            rows = [read(*row) for row in chunk]
            yield [row for row in rows if row is not None]


def read_facts_of_part(number: int, part: Part, *, folder: str, tags: bool) -> set[str] | None:
    """In a part reader: ``subscriber_list.read_facts`` for one part. Its opted-out pairs go, in line order,
    into ``folder``'s ``facts-<number>.db`` (a list of millions stays out of memory: ``part_facts`` reads
    them back); the tags on its rows (when ``tags``) come back. CutInsideRow when the part did not end
    between rows (its facts would be wrong: the list is read whole)."""
    facts = ListFacts(tags=set() if tags else None)
    db = sqlite3.connect(Path(folder) / f"facts-{number}.db", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("CREATE TABLE opted_out (key TEXT, status TEXT)")
        with _part_csv(part) as csv_file:
            pairs = read_facts(csv_file, AddressChecker(), facts)
            db.execute("BEGIN")
            db.executemany("INSERT INTO opted_out (key, status) VALUES (?, ?)", pairs)
            db.execute("COMMIT")
    finally:
        db.close()
    return facts.tags


def part_facts(folder: Path, answers: list[set[str] | None]) -> ListFacts:
    """The whole list's facts from its parts' (``read_facts_of_part``): the opted-out pairs streamed from
    their files in part order (so in line order), the tags of every part together."""
    tags: set[str] | None = set()
    for answer in answers:
        tags = None if answer is None or tags is None else tags | answer
    return ListFacts(_pairs_of(folder, len(answers)), tags)


def _pairs_of(folder: Path, parts: int) -> Iterator[tuple[str, str]]:
    for number in range(parts):
        db = sqlite3.connect(folder / f"facts-{number}.db")
        try:
            yield from db.execute("SELECT key, status FROM opted_out ORDER BY rowid")
        finally:
            db.close()


@contextlib.contextmanager
def _part_csv(part: Part) -> Iterator[CsvFile]:
    """A CsvFile over the part's lines (and the sentinel after them, for every part but the last)."""
    with open(part.path, "rb") as raw:
        raw.seek(part.start)
        stream = io.BufferedReader(_Range(raw, part.end), SCAN_BLOCK)
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        lines = text if part.end is None else itertools.chain(text, (SENTINEL,))
        csv_file = _PartCsv.part(part.path, lines, part.header, part.delimiter, part.first_line)
        assert isinstance(csv_file, _PartCsv)
        csv_file.part_end = part.end
        yield csv_file


class _PartCsv(CsvFile):
    """A part's CsvFile: its rows without the sentinel after them, and CutInsideRow after the last when the
    sentinel did not come back as a row of its own (every way of reading a part goes through ``chunks``)."""

    part_end: int | None = None

    def chunks(self, size: int = CHUNK) -> Iterator[list[tuple[int, list[str], int, str]]]:
        last: list[tuple[int, list[str], int, str]] | None = None
        for chunk in super().chunks(size):  # one chunk behind: the sentinel can only end the last
            if last is not None:
                yield last
            last = chunk
        ended_between_rows = self.part_end is None
        if last is not None and not ended_between_rows and last[-1][1] == [SENTINEL.rstrip("\n")]:
            last.pop()
            ended_between_rows = True
        if last:
            yield last
        if not ended_between_rows:
            raise CutInsideRow(f"{self.path}: a row runs across byte {self.part_end}")


class _Range(io.RawIOBase):
    """A file read from where it stands up to byte ``end`` (None: to its end)."""

    def __init__(self, raw: BinaryIO, end: int | None):
        self.raw, self.end = raw, end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = len(buffer)
        if self.end is not None:
            wanted = min(wanted, self.end - self.raw.tell())
        if wanted <= 0:
            return 0
        data = self.raw.read(wanted)
        buffer[: len(data)] = data
        return len(data)


def _after_lines(raw: BinaryIO, lines: int) -> int:
    """The byte after the first ``lines`` line ends."""
    raw.seek(0)
    seen = 0
    while block := raw.read(SCAN_BLOCK):
        found = block.count(b"\n")
        if seen + found >= lines:
            index = -1
            for _ in range(lines - seen):
                index = block.index(b"\n", index + 1)
            return raw.tell() - len(block) + index + 1
        seen += found
    return raw.tell()


def _line_end_after(raw: BinaryIO, position: int) -> int | None:
    """The byte after the first line end at or after ``position`` (None: there is none)."""
    raw.seek(position)
    while block := raw.read(SCAN_BLOCK):
        index = block.find(b"\n")
        if index >= 0:
            return raw.tell() - len(block) + index + 1
    return None


def _count_lines(raw: BinaryIO, start: int, end: int) -> int:
    raw.seek(start)
    count, left = 0, end - start
    while left > 0 and (block := raw.read(min(SCAN_BLOCK, left))):
        count += block.count(b"\n")
        left -= len(block)
    return count


def in_processes(job: Callable[[int, Part], R], parts: list[Part]) -> list[R] | None:
    """``job(number, part)`` for every part, each in a process of its own; their answers in part order.

    None when the list must be read by one process instead: a part did not end between rows
    (``CutInsideRow``), or a reader failed (a full disk: the one-process read will say so) or was killed.
    An AudienceError in a reader (a line that is not UTF-8) is raised here. ``job`` must pickle (a
    module-level function, or a ``functools.partial`` of one). Ctrl-C, SIGHUP and SIGTERM are this
    process's to handle: the readers ignore Ctrl-C and SIGHUP and end at once on SIGTERM, which is how
    they are stopped."""
    context = _start_method()
    answers: list[Connection] = []
    processes: list[BaseProcess] = []
    try:
        for number, part in enumerate(parts):
            answer, sender = context.Pipe(duplex=False)
            reader = _Reader(job, number, part, sender)
            process = context.Process(target=reader.run, name=f"broadsheet-part-{number}")
            process.daemon = True
            process.start()
            sender.close()
            answers.append(answer)
            processes.append(process)
        results: list[R] = []
        for answer in answers:
            try:
                result = answer.recv()
            except EOFError:  # killed
                return None
            if isinstance(result, _Refused):
                raise AudienceError(result.message, where=result.where, fix=result.fix)
            if isinstance(result, _ReadWhole):
                return None
            results.append(result)
        return results
    finally:
        for started in processes:
            if started.is_alive():
                started.terminate()
            started.join()
        for answer in answers:
            answer.close()


class _ReadWhole(NamedTuple):
    """A reader's answer when the list must be read by one process: why."""

    reason: str


class _Refused(NamedTuple):
    """A reader's answer for an AudienceError (an exception with keyword arguments does not pickle whole)."""

    message: str
    where: str | None
    fix: str | None


@dataclass
class _Reader(Generic[R]):
    """One part reader's whole life in its process: its answer sent back, never a traceback on stderr."""

    job: Callable[[int, Part], R]
    number: int
    part: Part
    answer: Connection

    def run(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        if hasattr(signal, "SIGHUP"):  # and so is a closed terminal (none on Windows)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent stops a reader with SIGTERM: it just ends
        result: R | _ReadWhole | _Refused
        try:
            result = self.job(self.number, self.part)
        except CutInsideRow as exc:
            result = _ReadWhole(str(exc))
        except AudienceError as exc:
            result = _Refused(exc.message, exc.where, exc.fix)
        except Exception as exc:  # e.g. a full disk
            result = _ReadWhole(f"{type(exc).__name__}: {exc}")
        try:
            self.answer.send(result)
        except OSError:  # the parent is gone (killed): nobody to answer
            pass
        self.answer.close()


def _start_method() -> ForkContext | SpawnContext:
    """fork when this process runs one thread (cheap: nothing to import again), else spawn (forking a
    process with threads can copy a lock another thread holds)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
