"""A long list cut into parts that separate processes read at once (one per core).

The cut is at a line end near each share of the file. Whether a row runs across it (a quoted value with
line breaks) cannot be seen from the bytes, so every part but the last is read with one extra line, a
sentinel, after its own lines: the CSV reader hands the sentinel back as a row of its own only when the
part ended between rows. When it did not, ``read_part`` raises ``CutInsideRow`` and the caller reads the
list in one piece instead. Each part numbers its lines as the whole file does.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Container, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .addresses import AddressChecker
from .csvfile import CsvFile, open_csv
from .model import ListRow, RowProblem
from .subscriber_list import CHUNK, Columns, RowReader

SENTINEL = "broadsheet: end of part 5f0c2a\n"  # a line no row reads as, alone, unless the part ended between rows
SCAN_BLOCK = 1 << 20


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
    with open(part.path, "rb") as raw:
        raw.seek(part.start)
        stream = io.BufferedReader(_Range(raw, part.end), SCAN_BLOCK)
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        lines = text if part.end is None else itertools.chain(text, (SENTINEL,))
        csv_file = CsvFile.part(part.path, lines, part.header, part.delimiter, part.first_line)
        read = RowReader(Columns(csv_file), addresses, wanted).read
        ended_between_rows = part.end is None
        for chunk in csv_file.chunks(CHUNK):
            if not ended_between_rows and chunk and chunk[-1][1] == [SENTINEL.rstrip("\n")]:
                chunk.pop()  # the sentinel is the last line: only the last chunk can end with it
                ended_between_rows = True
            rows = [read(*row) for row in chunk]
            yield [row for row in rows if row is not None]
        if not ended_between_rows:
            raise CutInsideRow(f"{part.path}: a row runs across byte {part.end}")


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


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
