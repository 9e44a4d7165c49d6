"""A subscriber row as an import parks it in its staging file: the store's key, the fields as JSON, and the
number of its tag list (each distinct tag list is staged once, in TAGSET_COLUMNS rows).

Made in the reading thread for every row of a list: kept lean.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring as _quote

from broadsheet.core.audience import ListRow, RowProblem, first_word

from ..subscriber_list import ChunkColumns

# a staged row; email: NULL when it is the key (lower-cased already: less to sort); tagset: NULL for no tags
STAGED = ("key", "email", "name", "fields", "status", "tagset", "line")
TAGSET_COLUMNS = ("tagset", "tag_key", "tag")
FIRST_NAME = '"first_name":'
TAGSETS_KEPT = 4_096  # distinct tag lists remembered while reading (lists repeat a few tag sets)

StagedRow = tuple[str, str | None, str, str, str, int | None, int]  # STAGED


class TagSets:
    """A number for each distinct tag list: a row stages the number, and the list's (number, tag key, tag)
    rows are staged once, so the move joins a small table instead of parsing tags on every row.

    ``number`` is called by the reading thread; ``taken`` by the writing one (the deque hands rows over
    between threads safely). A tag list seen before the memory was cleared gets a new number."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, ...], int] = {}
        self._new: collections.deque[tuple[int, str, str]] = collections.deque()
        self._last = 0

    def number(self, tags: tuple[str, ...]) -> int:
        found = self.numbers.get(tags)
        if found is None:
            if len(self.numbers) >= TAGSETS_KEPT:  # a list of a million tag lists: memory stays flat
                self.numbers.clear()
            self._last += 1
            found = self.numbers[tags] = self._last
            keys: set[str] = set()
            for tag in tags:  # the first spelling of a tag key wins
                key = tag.casefold()
                if key not in keys:
                    keys.add(key)
                    self._new.append((found, key, tag))
        return found

    def taken(self) -> list[tuple[int, str, str]]:
        """The TAGSET_COLUMNS rows of the numbers given out since the last call."""
        rows = []
        while self._new:
            rows.append(self._new.popleft())
        return rows


def staged_chunks(
    chunks: Iterable[ChunkColumns | list[ListRow | RowProblem]],
    on_problem: Callable[[RowProblem], None],
    tagsets: TagSets,
) -> Iterator[list[StagedRow]]:
    """The valid rows of each chunk as STAGED tuples, in order (run by the reading thread: keep it lean)."""
    stage = _Stager(on_problem, tagsets)
    for chunk in chunks:
        yield stage.columns(chunk) if isinstance(chunk, ChunkColumns) else stage.rows(chunk)


class _Stager:
    """Rows of a list into STAGED tuples: a chunk read a column at a time, a column at a time."""

    def __init__(self, on_problem: Callable[[RowProblem], None], tagsets: TagSets):
        self.on_problem, self.tagsets = on_problem, tagsets
        self.title_json: dict[str, str] = {}  # '"title":' of each column title

    def rows(self, chunk: Iterable[ListRow | RowProblem | None]) -> list[StagedRow]:
        staged: list[StagedRow] = []
        for item in chunk:
            if item is None:  # a blank row
                continue
            if isinstance(item, RowProblem):
                self.on_problem(item)
                continue
            status, subscriber = item
            assert subscriber is not None  # every status is wanted
            email, name, first_name = subscriber.email, subscriber.name, subscriber.first_name
            fields = [self.head(title) + _quote(value) for title, value in subscriber.fields.items() if value]
            if first_name and first_name != first_word(name):  # unless the name's first word, the first name too
                fields.append(FIRST_NAME + _quote(first_name))
            key = email.lower()
            tags = subscriber.tags
            tagset = self.tagsets.number(tags) if tags else None
            staged.append((key, None if key == email else email, name, "{" + ",".join(fields) + "}", status,
                           tagset, subscriber.line))  # fmt: skip
        return staged

    def columns(self, chunk: ChunkColumns) -> list[StagedRow]:
        """``rows`` of a chunk's rows, with no Python per row but the first names' check."""
        columns = chunk.subscribers
        if len(set(columns.titles)) < len(columns.titles):  # a title twice: its fields dict keeps one value
            return self.rows(chunk.as_rows())
        emails = [email or "" for email in columns.emails] if chunk.odd else columns.emails
        keys = list(map(str.lower, emails))
        addresses = (
            [None] * len(keys) if keys == emails else [None if k == e else e for k, e in zip(keys, emails, strict=True)]
        )
        parts = [
            list(map(self.head(title).__add__, map(_quote, values)))
            if all(values)
            else [self.head(title) + _quote(value) if value else "" for value in values]
            for title, values in zip(columns.titles, columns.extras, strict=True)
        ]
        names, first_names = columns.names, columns.first_names
        first = [
            FIRST_NAME + _quote(given) if given and given != (name.split(None, 1) or ("",))[0] else ""
            for given, name in zip(first_names, names, strict=True)
        ]
        if any(first):
            parts.append(first)
        fields = (
            list(map("{{{}}}".format, map(",".join, map(filter, itertools.repeat(None), zip(*parts, strict=True)))))
            if parts
            else ["{}"] * len(keys)
        )
        number = self.tagsets.number
        tagsets = {tags: number(tags) if tags else None for tags in dict.fromkeys(columns.tags)}
        staged: list[StagedRow | None] = list(
            zip(
                keys,
                addresses,
                names,
                fields,
                chunk.statuses,
                map(tagsets.__getitem__, columns.tags),
                columns.lines,
                strict=True,
            )
        )
        for at, row in chunk.odd.items():  # in order: their problems are reported as they come
            staged[at] = next(iter(self.rows([row])), None)
        return [row for row in staged if row is not None] if chunk.odd else staged  # type: ignore[return-value]

    def head(self, title: str) -> str:
        """'"title":'"""
        return self.title_json.get(title) or self.title_json.setdefault(title, _quote(title) + ":")
