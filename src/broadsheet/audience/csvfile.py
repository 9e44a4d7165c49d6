"""Reading a subscriber CSV as a stream: UTF-8 (BOM or not), delimiter sniffed, file:line errors."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ..errors import AudienceError

DELIMITERS = (",", ";", "\t")
BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20  # bytes read from the list at once


class CsvRow(NamedTuple):  # a tuple: lists of a million rows make one each
    line: int  # where the row starts in the file
    values: list[str]
    end: int = 0  # where it ends (later than ``line`` when a quoted value holds line breaks)
    problem: str = ""  # why the CSV reader could not read this row (then ``values`` is empty)


class CsvFile:
    """A CSV read lazily: ``header`` (names stripped), ``delimiter``, then ``rows()`` once."""

    def __init__(self, path: Path, stream: BinaryIO):
        self.path = path
        self._lines = _decoded_lines(path, stream)
        first = next(self._lines, "")
        if not first.strip():
            raise AudienceError(
                "the list has no header row",
                where=f"{path}:1",
                fix="put the column names (one of them 'email') on line 1",
            )
        self.delimiter = sniff_delimiter(first)
        self._reader = csv.reader(_chain(first, self._lines), delimiter=self.delimiter)
        try:
            self.header = [name.strip() for name in next(self._reader)]
        except csv.Error as exc:
            raise AudienceError(
                _unreadable(exc), where=f"{path}:1", fix="save the list as CSV UTF-8 (line ends LF or CRLF)"
            ) from None

    def rows(self) -> Iterator[CsvRow]:
        """The non-empty rows; one the reader cannot parse comes with ``problem`` (the reader goes on after it)."""
        reader = self._reader
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield CsvRow(start, [], reader.line_num, _unreadable(exc))
                continue
            if "".join(values).strip():  # not an empty row (cheaper than any() over the values)
                yield CsvRow(start, values, reader.line_num)

    def column(self, name: str) -> int | None:
        """Index of a column by case-insensitive name."""
        lowered = [title.lower() for title in self.header]
        return lowered.index(name) if name in lowered else None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most: ``,`` ``;`` or tab (``,`` when there is none)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def open_csv(path: Path) -> BinaryIO:
    try:
        return path.open("rb", buffering=READ_BUFFER)  # few reads: each one hands the GIL over
    except FileNotFoundError:
        raise AudienceError("the list does not exist", where=str(path), fix="check the path to the CSV") from None
    except OSError as exc:
        raise AudienceError(f"cannot read the list: {exc.strerror}", where=str(path)) from None


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
    parts.append(list_fingerprint(suppressions) if suppressions is not None and suppressions.is_file() else "-")
    parts.append(",".join(sorted(tag.casefold() for tag in segments)))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _decoded_lines(path: Path, stream: BinaryIO) -> Iterator[str]:
    for number, raw in enumerate(stream, 1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise AudienceError(
                "the list is not UTF-8", where=f"{path}:{number}", fix="save the CSV as UTF-8"
            ) from None


def _unreadable(exc: csv.Error) -> str:
    if "new-line character" in str(exc):
        return "a line break (a lone CR) inside a value that is not quoted"
    return f"unreadable CSV: {exc}"


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
