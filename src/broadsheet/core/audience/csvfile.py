"""Reading a subscriber CSV as a stream: UTF-8 (BOM or not), delimiter sniffed, file:line errors."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import stat
from collections.abc import Callable, Iterable, Iterator
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


class CsvFile:
    """A CSV read lazily: ``header`` (names stripped), ``delimiter``, then ``rows()`` or ``chunks()`` once.

    The bytes are decoded by one ``TextIOWrapper`` that ends lines at LF only (as the CSV reader needs; a
    lone CR stays inside its line), so the reader pulls lines in C, not through a Python generator."""

    _offset = 0  # lines before the first one this reader reads (a part of the file: see ``part``)

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
        self._reader = csv.reader(itertools.chain((first,), self._text), delimiter=self.delimiter)
        try:
            # a title an export wrote spreadsheet-safe ('@handle) reads as it was
            self.header = [as_written(name.strip()) for name in self._read(lambda: next(self._reader))]
        except csv.Error as exc:
            raise AudienceError(
                _unreadable(exc), where=f"{path}:1", fix="save the list as CSV UTF-8 (line ends LF or CRLF)"
            ) from None

    @property
    def lines_read(self) -> int:
        """Lines of the file read so far (the header's, after it is read)."""
        return self._offset + self._reader.line_num

    def rows(self) -> Iterator[CsvRow]:
        """The non-empty rows; one the reader cannot parse comes with ``problem`` (the reader goes on after it)."""
        for chunk in self.chunks():
            for line, values, end, problem in chunk:
                if problem or not _blank(values):
                    yield CsvRow(line, values, end, problem)

    def chunks(self, size: int = CHUNK) -> Iterator[list[tuple[int, list[str], int, str]]]:
        """Every row, blank ones too, as (line, values, end line, problem) in lists of about ``size``: the
        hot loop of a long list, one plain tuple a row."""
        reader, offset = self._reader, self._offset
        while True:
            chunk: list[tuple[int, list[str], int, str]] = []
            append = chunk.append
            start = offset + reader.line_num + 1
            try:
                for values in reader:
                    end = offset + reader.line_num
                    append((start, values, end, ""))
                    start = end + 1
                    if len(chunk) >= size:
                        break
                else:
                    if chunk:
                        yield chunk
                    return
            except csv.Error as exc:
                append((start, [], offset + reader.line_num, _unreadable(exc)))
            except UnicodeDecodeError:
                raise _not_utf8(self.path) from None
            yield chunk

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
