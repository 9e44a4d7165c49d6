"""The subscriber list: a CSV streamed into valid, subscribed, deduplicated, unsuppressed Subscribers."""

from __future__ import annotations

import collections
import contextlib
import itertools
import operator
import re
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

from broadsheet.core.audience.addresses import AddressChecker, InvalidAddress
from broadsheet.core.audience.csvfile import CsvChunk, CsvFile, open_csv, selection_fingerprint
from broadsheet.core.audience.model import (
    JournalLoader,
    ListRow,
    RowProblem,
    Subscriber,
    SubscriberColumns,
    first_word,
)
from broadsheet.core.audience.spreadsheet import as_written
from broadsheet.core.errors import AudienceError

from .db.ledger import Ledger

STATUSES = ("subscribed", "unsubscribed", "bounced", "complained", "unconfirmed")
OPTED_OUT = ("unsubscribed", "bounced", "complained")  # on any row: that address never receives
KNOWN_COLUMNS = ("email", "name", "first_name", "status", "tags")
CHUNK = 500  # rows read, validated and checked against the ledger at once (few: they stay in the CPU's cache)
TAG_LISTS_KEPT = 10_000  # distinct tags cells whose split is remembered (most lists repeat a few)
_list_row = tuple.__new__  # ListRow without its Python-level __new__ (half the cost, a million times)
_subscriber = operator.itemgetter(1)  # a ListRow's
_email = operator.attrgetter("email")  # a Subscriber's


def check_segments(segments: Iterable[str], present: Iterable[str], *, where: str) -> None:
    """AudienceError naming the tags that exist (``present``) when a segment's tag (casefolded) is not one
    of them: a typo would send to no one."""
    present = set(present)
    known = {tag.casefold() for tag in present}
    missing = sorted(tag for tag in segments if tag not in known)
    if missing:
        existing = ", ".join(sorted(present, key=str.casefold)) or "none"
        raise AudienceError(
            f"no subscriber has the tag {', '.join(repr(t) for t in missing)}",
            where=where,
            fix=f"--segment one of: {existing}",
        )


class CsvList:
    """Iterate to stream the subscribers who should receive the issue.

    Each pass refills ``problems`` (bad rows, with line numbers) and ``skipped`` (rows rightly left
    out: unsubscribed, bounced, complained, suppressed, not in segment, duplicate). An address marked
    unsubscribed, bounced or complained on any row never receives, wherever its other rows stand.

    ``load_into`` a journal leaves the repeats of an ASCII address to it (see there).
    """

    def __init__(
        self,
        path: Path,
        *,
        segments: Sequence[str] = (),
        suppressions: Path | None = None,
        check_deliverability: bool = False,
    ):
        self.path = Path(path)
        self.segments = frozenset(tag.casefold() for tag in segments)
        self.suppressions = Path(suppressions) if suppressions is not None else None
        self.addresses = AddressChecker(check_deliverability=check_deliverability)
        self.problems: list[RowProblem] = []
        self.skipped: collections.Counter[str] = collections.Counter()

    def fingerprint(self) -> str:
        """What decides who is on a campaign sent to this list (a changed one is loaded again)."""
        return selection_fingerprint(self.path, self.suppressions, self.segments)

    def __iter__(self) -> Iterator[Subscriber]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self, *, deduplicate: bool = True) -> Iterator[list[Subscriber]]:
        """The same subscribers as iterating, a few thousand at a time (for a consumer that works in chunks).
        Not ``deduplicate``: repeats of an ASCII address are handed on too (``load_into``)."""
        with self._pass_ledger() as ledger:
            for chunk in list_chunks(self.path, self.addresses):
                if handed_on := self._pass(chunk, ledger, deduplicate):
                    yield handed_on

    def load_into(
        self,
        loader: JournalLoader,
        *,
        kept: Callable[[Iterator[list[Subscriber]]], Iterator[list[Subscriber]]] | None = None,
    ) -> int:
        """The list (through ``kept``, a filter over its chunks) into a journal, whose UNIQUE (campaign,
        email) keeps the first row of an ASCII address (its COLLATE NOCASE folds ASCII letters only: other
        addresses are still deduplicated here): a look-up per row in the ledger's largest table saved.
        The repeats it dropped are counted in ``skipped["duplicate"]`` as a pass would. With no ``kept``,
        a chunk that needs nothing of the pass goes on as its columns."""
        offered = 0

        def counted(
            chunks: Iterable[list[Subscriber] | SubscriberColumns],
        ) -> Iterator[list[Subscriber] | SubscriberColumns]:
            nonlocal offered
            for chunk in chunks:
                offered += chunk.size if isinstance(chunk, SubscriberColumns) else len(chunk)
                yield chunk

        chunks = self._load_chunks() if kept is None else kept(self.chunks(deduplicate=False))
        loaded = loader.chunks(counted(chunks))
        if offered > loaded:
            self.skipped["duplicate"] += offered - loaded
        return loaded

    def _load_chunks(self) -> Iterator[list[Subscriber] | SubscriberColumns]:
        """``chunks(deduplicate=False)``, each plain chunk of ASCII addresses as its columns when nothing
        is suppressed, opted out or segmented (the pass would hand it on as it is)."""
        with self._pass_ledger() as ledger:
            as_read = not (ledger.has_suppressed or ledger.has_opted_out or self.segments)
            for chunk in list_column_chunks(self.path, self.addresses):
                if isinstance(chunk, ChunkColumns):
                    if as_read and not chunk.odd and "".join(chunk.subscribers.emails).isascii():
                        yield chunk.subscribers
                        continue
                    chunk = chunk.as_rows()
                if handed_on := self._pass(chunk, ledger, deduplicate=False):
                    yield handed_on

    @contextlib.contextmanager
    def _pass_ledger(self) -> Iterator[Ledger]:
        """A pass begins: counts start afresh, segments are checked, and a new ledger holds the suppressed
        and opted-out addresses (and, deduplicating, those handed on): on disk, flat memory."""
        self.problems = []
        self.skipped = collections.Counter()
        with Ledger() as ledger:
            facts = ListFacts(tags=set() if self.segments else None)
            with open_csv(self.path) as stream:
                ledger.add_opted_out(read_facts(CsvFile(self.path, stream), self.addresses, facts))
            if self.segments:
                self.check_segments(facts.tags or set())
            ledger.add_suppressed(suppression_keys(self.suppressions, self.addresses))
            yield ledger

    def _pass(self, chunk: list[ListRow | RowProblem], ledger: Ledger, deduplicate: bool) -> list[Subscriber]:
        """The chunk's rows in order: problems noted, the left-out counted, the rest handed on."""
        wanted = sort_out(chunk, self.problems, self.skipped)
        if not (deduplicate or ledger.has_suppressed or ledger.has_opted_out or self.segments):
            return self._repeats_left_to_the_consumer(wanted, ledger)
        keys = list({subscriber.email.lower() for subscriber in wanted})
        unique = keys if deduplicate else [key for key in keys if not key.isascii()]
        suppressed, opted_out, seen = ledger.suppressed(keys), ledger.opted_out(keys), ledger.seen(unique)
        handed_on: list[Subscriber] = []
        for subscriber in wanted:
            key = subscriber.email.lower()
            reason = self._left_out(subscriber, key, suppressed, opted_out, seen)
            if reason:
                self.skipped[reason] += 1
                continue
            if deduplicate or not key.isascii():
                seen.add(key)
            handed_on.append(subscriber)
        ledger.mark_seen({s.email.lower() for s in handed_on if deduplicate or not s.email.isascii()})
        return handed_on

    def _repeats_left_to_the_consumer(self, wanted: list[Subscriber], ledger: Ledger) -> list[Subscriber]:
        """The common case of a send's load: nothing suppressed, no segment, ASCII repeats left to the
        journal; only non-ASCII addresses (which its index does not fold) are deduplicated here."""
        if all(map(str.isascii, map(_email, wanted))):
            return wanted
        seen = ledger.seen(list({s.email.lower() for s in wanted if not s.email.isascii()}))
        handed_on: list[Subscriber] = []
        for subscriber in wanted:
            if not subscriber.email.isascii():
                key = subscriber.email.lower()
                if key in seen:
                    self.skipped["duplicate"] += 1
                    continue
                seen.add(key)
            handed_on.append(subscriber)
        ledger.mark_seen({s.email.lower() for s in handed_on if not s.email.isascii()})
        return handed_on

    def check_segments(self, present: set[str]) -> None:
        """``check_segments`` for this list (``present``: the tags on some row)."""
        check_segments(self.segments, present, where=f"{self.path} (tags column)")

    def _left_out(
        self,
        subscriber: Subscriber,
        key: str,
        suppressed: Container[str],
        opted_out: dict[str, str],
        seen: Container[str],
    ) -> str:
        if key in suppressed:
            return "suppressed"
        if key in opted_out:
            return opted_out[key]
        if self.segments and not any(tag.casefold() in self.segments for tag in subscriber.tags):
            return "not in segment"
        if key in seen:
            return "duplicate"
        return ""


def sort_out(
    chunk: list[ListRow | RowProblem], problems: list[RowProblem], skipped: collections.Counter[str]
) -> list[Subscriber]:
    """The chunk's subscribers in order; its problems and the rows of other statuses noted down."""
    if set(map(type, chunk)) == {ListRow}:  # no problem: one step for the chunk when every row is wanted
        subscribers: list[Subscriber | None] = list(map(_subscriber, cast(list[ListRow], chunk)))
        if all(subscribers):  # (a Subscriber is true; ``None in`` would call its __eq__ for each)
            return cast(list[Subscriber], subscribers)
    wanted: list[Subscriber] = []
    for item in chunk:
        if item.__class__ is RowProblem:
            problems.append(item)
        elif item[1] is None:  # type: ignore[index]
            skipped[item[0]] += 1  # type: ignore[index]
        else:
            wanted.append(item[1])  # type: ignore[index]
    return wanted


def list_chunks(
    path: Path, addresses: AddressChecker, *, wanted: Container[str] = ("subscribed",)
) -> Iterator[list[ListRow | RowProblem]]:
    """Every non-empty row of the CSV at ``path``, a few thousand at a time, read once: a ListRow, or a
    RowProblem for a bad one. Rows whose status is not ``wanted`` are not validated further (their ListRow
    has no subscriber)."""
    for chunk in list_column_chunks(path, addresses, wanted=wanted):
        yield chunk.as_rows() if isinstance(chunk, ChunkColumns) else chunk


def list_column_chunks(
    path: Path, addresses: AddressChecker, *, wanted: Container[str] = ("subscribed",)
) -> Iterator[ChunkColumns | list[ListRow | RowProblem]]:
    """``list_chunks``, with each plain chunk as ChunkColumns: for a reader that works a column at a time."""
    with open_csv(path) as stream:
        csv_file = CsvFile(path, stream)
        read_columns = RowReader(Columns(csv_file), addresses, wanted).read_columns
        for chunk in csv_file.chunks(CHUNK):
            read = read_columns(chunk)
            if isinstance(read, ChunkColumns):
                yield read
            else:
                yield [row for row in read if row is not None] if None in read else read  # type: ignore[misc]


class ChunkColumns(NamedTuple):
    """The rows of a plain chunk of a list, a column each (``RowReader.read_columns``): their statuses and
    subscribers. ``odd``: by position, what ``RowReader.read`` made of each row the columns do not hold
    (a problem, a row of a status not wanted, a blank row: None); their ``emails`` are None."""

    statuses: list[str]
    subscribers: SubscriberColumns
    odd: dict[int, ListRow | RowProblem | None]

    def as_rows(self) -> list[ListRow | RowProblem]:
        """The chunk's non-blank rows as ``RowReader.read`` gives them, in order."""
        read = self.read()
        if any(row is None for row in self.odd.values()):
            return [row for row in read if row is not None]
        return read  # type: ignore[return-value]

    def read(self) -> list[ListRow | RowProblem | None]:
        """What ``RowReader.read`` gives for each of the chunk's rows, in order (None for a blank one)."""
        read: list[ListRow | RowProblem | None] = list(
            map(_list_row, itertools.repeat(ListRow), zip(self.statuses, self.subscribers.subscribers(), strict=True))
        )
        for at, row in self.odd.items():
            read[at] = row
        return read


def read_suppressions(path: Path | None, addresses: AddressChecker) -> set[str]:
    """Lower-cased addresses from a suppression file, in memory (a small file; see ``suppression_keys``)."""
    return set(suppression_keys(path, addresses))


@dataclass
class ListFacts:
    """What a pass must know of the whole list before it begins, besides its opted-out rows: the tags on
    its rows (None: not asked, no segment)."""

    tags: set[str] | None = None


def read_facts(csv_file: CsvFile, addresses: AddressChecker, facts: ListFacts) -> Iterator[tuple[str, str]]:
    """One read of ``csv_file``: the (address lower-cased, status) of each row that says unsubscribed,
    bounced or complained, while ``facts.tags`` (when asked) gathers every tag of a readable row."""
    columns = Columns(csv_file)
    has_status, tags = columns.index["status"] is not None, facts.tags
    if not has_status and tags is None:
        return
    for row in csv_file.rows():
        if tags is not None and not row.problem:
            tags.update(columns.tags(row.values))
        if has_status:
            status = columns.get(row.values, "status").strip().lower()
            if status in OPTED_OUT:
                yield address_key(columns.get(row.values, "email"), addresses), status


def suppression_keys(path: Path | None, addresses: AddressChecker) -> Iterator[str]:
    """Lower-cased addresses from a suppression file, streamed; a missing file (or None) suppresses nobody."""
    if path is None or not path.exists():
        return
    with open_csv(path) as stream:
        csv_file = CsvFile(path, stream)
        columns = Columns(csv_file)
        for row in csv_file.rows():
            yield address_key(columns.get(row.values, "email"), addresses)


def address_key(address: str, addresses: AddressChecker) -> str:
    """How an address is compared: normalised when valid, lower-cased."""
    try:
        return addresses.normalise(address).lower()
    except InvalidAddress:
        return address.strip().lower()


class RowReader:
    """One row of values into a ListRow, a RowProblem, or None for a blank row: the validation every list
    goes through (send, dry run, check, import), written for a million rows (what most rows need is
    checked first; a tag list or a domain seen before is not worked out again)."""

    def __init__(self, columns: Columns, addresses: AddressChecker, wanted: Container[str]):
        self.columns = columns
        self.addresses = addresses
        self.normalise = addresses.normalise
        self.wanted = wanted
        self.header_width = len(columns.header)
        self._tags: dict[str, tuple[str, ...]] = {}
        # the hot path's look-ups, bound once
        self._known, self._extra_titles, self._extra_values = (
            columns.known_values,
            columns.extra_titles,
            columns.extra_values,
        )

    def read(self, line: int, values: list[str], end: int, problem: str) -> ListRow | RowProblem | None:
        if problem:
            return RowProblem(line, "", problem)
        text = "".join(values)
        if not text or text.isspace():
            return None
        if "'" in text:  # a cell written by spreadsheet_safe (an export) reads as it was
            values = [as_written(value) for value in values]
        columns = self.columns
        given = len(values)
        if given <= self.header_width:  # one "" past the header: where an absent column is read
            if given < self.header_width:
                values.extend([""] * (self.header_width - given))
            values.append("")
        raw_email, raw_status, raw_name, raw_first_name, raw_tags = self._known(values)
        raw_email = raw_email.strip()
        if end > line and columns.swallows_rows(values, self._is_address):
            reason = f"a quote on this row is not closed: lines {line}-{end} were read as one row"
            return _problem(line, raw_email, reason + " (close or remove the quote)")
        if given > self.header_width and columns.overflows(values):
            quote = f"quote values that contain '{columns.delimiter}'"
            return _problem(line, raw_email, f"{given} values for {self.header_width} columns ({quote})")
        if not raw_email:
            return _problem(line, "", "missing email")
        status = "subscribed"
        if raw_status:
            status = raw_status.strip().lower() or status
            if status not in STATUSES:
                return _problem(line, raw_email, f"unknown status '{status}' (allowed: {', '.join(STATUSES)})")
        if status not in self.wanted:
            return _list_row(ListRow, (status, None))
        try:
            email = self.normalise(raw_email)
        except InvalidAddress as exc:
            return _problem(line, raw_email, f"invalid address: {exc}")
        name = raw_name.strip()
        first_name = raw_first_name.strip() or first_word(name)
        if "\r" in text or "\n" in text or "\0" in text:
            reason = _bad_name(name) or _bad_name(first_name)
            if reason:
                return _problem(line, raw_email, reason)
        fields = dict(zip(self._extra_titles, self._extra_values(values), strict=False))  # the getter gives two more
        tags = (self._tags.get(raw_tags) or self._split_tags(raw_tags)) if raw_tags else ()
        return _list_row(ListRow, (status, Subscriber(email, name, first_name, tags, fields, line)))

    def read_chunk(self, chunk: CsvChunk) -> list[ListRow | RowProblem | None]:
        """``read`` of each row of ``chunk`` (by ``read_columns``: the same rows, several times faster)."""
        read = self.read_columns(chunk)
        return read.read() if isinstance(read, ChunkColumns) else read

    def read_columns(self, chunk: CsvChunk) -> ChunkColumns | list[ListRow | RowProblem | None]:
        """``read`` of each row of ``chunk``, column by column. A plain chunk (rows of one line each, as wide
        as the header, with no NUL or cell an export marked ') is read a column at a time into ChunkColumns;
        any of its rows that is not plainly valid and wanted goes through ``read`` (its ``odd``), and so
        does every row of any other chunk (a list of what ``read`` gives)."""
        lines, rows = chunk.lines, chunk.rows
        if not rows:
            return []
        text = "\n".join(itertools.chain.from_iterable(rows))  # no value holds a line break: each is one line
        if (
            not chunk.plain
            or min(map(len, rows)) != self.header_width
            or max(map(len, rows)) != self.header_width
            or "\r" in text
            or "\0" in text
            or "\n'" in text
            or text.startswith("'")
        ):
            return [self.read(*row) for row in chunk.each()]
        columns = list(zip(*rows, strict=True))
        absent = ("",) * len(rows)
        index = self.columns.index

        def column(name: str) -> tuple[str, ...]:
            at = index[name]
            return absent if at is None else columns[at]

        raw_statuses = column("status")
        status_of = {raw: (raw.strip().lower() or "subscribed") if raw else "subscribed" for raw in set(raw_statuses)}
        statuses = list(map(status_of.__getitem__, raw_statuses))
        emails = self.addresses.normalise_plain(list(map(str.strip, column("email"))))
        names = list(map(str.strip, column("name")))
        first_names = list(map(str.strip, column("first_name")))
        if not all(first_names):  # the name's first word where none is given
            first_names = [first or first_word(name) for first, name in zip(first_names, names, strict=True)]
        raw_tags = column("tags")
        tags_of = {raw: (self._tags.get(raw) or self._split_tags(raw)) if raw else () for raw in set(raw_tags)}
        odd: dict[int, ListRow | RowProblem | None] = {}
        wanted = self.wanted
        if None in emails or not all(status in wanted for status in status_of.values()):
            for at, (email, status) in enumerate(zip(emails, statuses, strict=True)):
                if email is None or status not in wanted:  # a problem, a row of another status, a blank row
                    odd[at] = self.read(lines[at], rows[at], lines[at], "")
        tags = list(map(tags_of.__getitem__, raw_tags))
        extras = [columns[at] for at, _ in self.columns.extra]
        subscribers = SubscriberColumns(emails, names, first_names, tags, self._extra_titles, extras, lines)  # type: ignore[arg-type]
        return ChunkColumns(statuses, subscribers, odd)

    def _is_address(self, text: str) -> bool:
        try:
            self.normalise(text)
        except InvalidAddress:
            return False
        return True

    def _split_tags(self, text: str) -> tuple[str, ...]:
        if len(self._tags) >= TAG_LISTS_KEPT:
            self._tags.clear()
        tags = self._tags[text] = self.columns.split_tags(text)
        return tags


def _bad_name(text: str) -> str:
    if "\r" in text or "\n" in text:
        return "line break in the name"
    if "\0" in text:
        return "NUL character in the name"
    return ""


def _problem(line: int, email: str, reason: str) -> RowProblem:
    email = email.replace("\r", "\\r").replace("\n", "\\n")  # one line per problem when printed
    return RowProblem(line, email, reason)


class Columns:
    """Where the known columns are in one CSV, and how to read them from a row."""

    def __init__(self, csv_file: CsvFile):
        self.header = csv_file.header
        self.delimiter = csv_file.delimiter
        self.index = {name: csv_file.column(name) for name in KNOWN_COLUMNS}
        if self.index["email"] is None:
            raise AudienceError(
                "the list has no 'email' column",
                where=f"{csv_file.path}:1",
                fix=f"name the address column 'email' in the header row (found: {', '.join(self.header) or 'nothing'})",
            )
        titles = [title.lower() for title in self.header]
        for name in KNOWN_COLUMNS:
            if titles.count(name) > 1:  # which one would be meant? (the first would be read, the other kept as a field)
                raise AudienceError(
                    f"the header names the column '{name}' {titles.count(name)} times",
                    where=f"{csv_file.path}:1",
                    fix=f"keep one '{name}' column, or rename the others",
                )
        known = {i for i in self.index.values() if i is not None}
        self.extra = [(i, title) for i, title in enumerate(self.header) if i not in known and title]
        # the hot path: rows padded to one value past the header, an absent column read from that last ""
        self.width = len(self.header) + 1
        absent = len(self.header)
        self.known_values = operator.itemgetter(
            *(
                absent if self.index[n] is None else self.index[n]
                for n in ("email", "status", "name", "first_name", "tags")
            )
        )
        self.extra_titles = [title for _, title in self.extra]
        self.extra_values = operator.itemgetter(*(i for i, _ in self.extra), absent, absent)  # always a tuple
        # tags are ';'-separated; in a ';'-delimited file a quoted "a;b" works, and so does a,b
        self.tag_separators = re.compile("[;,]" if self.delimiter == ";" else ";")

    def overflows(self, values: list[str]) -> bool:
        """More non-empty values than columns (trailing empty ones, as spreadsheets write, are fine)."""
        return len(values) > len(self.header) and any(value.strip() for value in values[len(self.header) :])

    def swallows_rows(self, values: list[str], is_address: Callable[[str], bool]) -> bool:
        """A value whose later lines look like rows of their own (a value for each column, an address in the
        email column): an unclosed quote. A quoted value may hold line breaks, delimiters and '@' alone."""
        at, width = self.index["email"], len(self.header)
        assert at is not None
        for value in values:
            for line in value.splitlines()[1:]:
                cells = line.split(self.delimiter)
                if len(cells) >= width and is_address(as_written(cells[at].strip())):
                    return True
        return False

    def get(self, values: list[str], name: str) -> str:
        index = self.index[name]
        return as_written(values[index]) if index is not None and index < len(values) else ""

    def tags(self, values: list[str]) -> tuple[str, ...]:
        text = self.get(values, "tags")
        return self.split_tags(text) if text else ()

    def split_tags(self, text: str) -> tuple[str, ...]:
        return tuple(filter(None, map(str.strip, self.tag_separators.split(text))))
