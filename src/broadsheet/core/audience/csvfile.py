"""Reading a subscriber CSV as a stream: UTF-8 (BOM or not), delimiter sniffed, file:line errors."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar

from ..errors import AudienceError
from .spreadsheet import as_written

DELIMITERS = (",", ";", "\t")
BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20  # bytes read from the list at once
CHUNK = 5_000  # rows a ``chunks()`` list holds

T = TypeVar("T")


class CsvRow(NamedTuple):  # a tuple: lists of a million rows make one each
    line: int  # where the row starts in the file
    values: list[str]
    end: int = 0  # where it ends (later than ``line`` when a quoted value holds line breaks)
    problem: str = ""  # why the CSV reader could not read this row (then ``values`` is empty)


class CsvChunk(NamedTuple):
    """Consecutive rows of a CSV, blank ones too, a column each: their start lines, values, end lines and
    problems (as in CsvRow). ``plain``: every row is one line and readable (``lines`` is ``ends``, no
    problem), as in most chunks of a long list."""

    lines: Sequence[int]
    rows: list[list[str]]
    ends: Sequence[int]
    problems: Sequence[str]
    plain: bool

    def each(self) -> Iterator[tuple[int, list[str], int, str]]:
        """(line, values, end, problem) of each row."""
        return zip(self.lines, self.rows, self.ends, self.problems, strict=True)


class CsvFile:
    """A CSV read lazily: ``header`` (names stripped), ``delimiter``, then ``rows()`` or ``chunks()`` once.

    The bytes are decoded by one ``TextIOWrapper`` that ends lines at LF only (as the CSV reader needs; a
    lone CR stays inside its line), so lines are pulled in C, not through a Python generator."""

    def __init__(self, path: Path, stream: BinaryIO):
        self.path = path
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="\n")  # BOM or not
        first = self._read(self._text.readline)
        if not first.strip():
            raise AudienceError(
                "the list has no header row",
                where=f"{path}:1",
                fix="put the column names (one of them 'email') on line 1",
            )
        self.delimiter = sniff_delimiter(first)
        reader = csv.reader(itertools.chain((first,), self._text), delimiter=self.delimiter)
        try:
            # a title an export wrote spreadsheet-safe ('@handle) reads as it was
            self.header = [as_written(name.strip()) for name in self._read(lambda: next(reader))]
        except csv.Error as exc:
            raise AudienceError(
                _unreadable(exc), where=f"{path}:1", fix="save the list as CSV UTF-8 (line ends LF or CRLF)"
            ) from None
        self._lines = reader.line_num  # lines read so far (the reader reads no further than its row)

    def rows(self) -> Iterator[CsvRow]:
        """The non-empty rows; one the reader cannot parse comes with ``problem`` (the reader goes on after it)."""
        for chunk in self.chunks():
            for line, values, end, problem in chunk.each():
                if problem or not _blank(values):
                    yield CsvRow(line, values, end, problem)

    def chunks(self, size: int = CHUNK) -> Iterator[CsvChunk]:
        """Every row, blank ones too, in chunks of about ``size``: the hot loop of a long list.

        ``size`` lines are taken at once; when they hold no quote each line is one row, parsed by one
        reader call for them all. Otherwise they are read a row at a time (a quoted value may go on past
        them: the reader then takes the lines it needs)."""
        while True:
            block = self._read(lambda: list(itertools.islice(self._text, size)))
            if not block:
                return
            start = self._lines + 1
            if '"' not in "".join(block):
                try:
                    rows = list(csv.reader(block, delimiter=self.delimiter))
                except csv.Error:  # (a lone CR inside a value) read a row at a time below, to say which
                    rows = []
                if len(rows) == len(block):
                    self._lines += len(block)  # no quote: one row a line
                    lines = range(start, start + len(block))
                    yield CsvChunk(lines, rows, lines, [""] * len(rows), plain=True)
                    continue
            yield self._rows_of(block)

    def _rows_of(self, block: list[str]) -> CsvChunk:
        """The rows that begin in ``block`` (lines from the file), read one at a time to know each one's lines."""
        reader = csv.reader(itertools.chain(block, self._text), delimiter=self.delimiter)
        offset = self._lines
        lines: list[int] = []
        rows: list[list[str]] = []
        ends: list[int] = []
        problems: list[str] = []
        while reader.line_num < len(block):
            lines.append(offset + reader.line_num + 1)
            try:
                values, problem = self._read(lambda: next(reader)), ""
            except StopIteration:  # (the lines of ``block`` are there to read: not expected)
                lines.pop()
                break
            except csv.Error as exc:
                values, problem = [], _unreadable(exc)
            rows.append(values)
            ends.append(offset + reader.line_num)
            problems.append(problem)
        self._lines = offset + reader.line_num
        return CsvChunk(lines, rows, ends, problems, plain=False)

    def column(self, name: str) -> int | None:
        """Index of a column by case-insensitive name."""
        lowered = [title.lower() for title in self.header]
        return lowered.index(name) if name in lowered else None

    def _read(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except UnicodeDecodeError:
            raise _not_utf8(self.path) from None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most: ``,`` ``;`` or tab (``,`` when there is none)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def open_csv(path: Path) -> BinaryIO:
    """The list's bytes; AudienceError for one that is missing, unreadable or not a regular file (a FIFO
    would wait for a writer and a device such as /dev/zero never end: opened without waiting, refused)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise AudienceError("the list does not exist", where=str(path), fix="check the path to the CSV") from None
    except OSError as exc:
        raise AudienceError(f"cannot read the list: {exc.strerror}", where=str(path)) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise AudienceError("the list is not a regular file", where=str(path), fix="give the path of a CSV file")
    return os.fdopen(descriptor, "rb", buffering=READ_BUFFER)  # few reads: each one hands the GIL over


def list_fingerprint(path: Path) -> str:
    """sha256 of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open_csv(path) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def selection_fingerprint(list_path: Path, suppressions: Path | None, segments: Iterable[str]) -> str:
    """What decides who is on a campaign sent from a CSV: the list's bytes, the suppressions' bytes, the segments."""
    parts = [list_fingerprint(list_path)]
    parts.append(list_fingerprint(suppressions) if suppressions is not None and suppressions.exists() else "-")
    parts.append(",".join(sorted(tag.casefold() for tag in segments)))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _not_utf8(path: Path) -> AudienceError:
    """The error for a list that is not UTF-8, naming the first line that is not (found by reading again:
    the decoder reads ahead, so where it failed is not where the reader was)."""
    number = 1
    with open_csv(path) as stream:
        for number, raw in enumerate(stream, 1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                break
    return AudienceError("the list is not UTF-8", where=f"{path}:{number}", fix="save the CSV as UTF-8")


def _blank(values: list[str]) -> bool:
    """An empty row, or one of empty values (",,,")."""
    text = "".join(values)
    return not text or text.isspace()


def _unreadable(exc: csv.Error) -> str:
    if "new-line character" in str(exc):
        return "a line break (a lone CR) inside a value that is not quoted"
    return f"unreadable CSV: {exc}"
