"""A subscriber row as an import parks it in its staging file: the store's key, the fields as JSON, and the
number of its tag list (each distinct tag list is staged once, in TAGSET_COLUMNS rows).

Made in the reading thread for every row of a list: kept lean.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from json.encoder import encode_basestring as _quote

from broadsheet.core.audience import ListRow, RowProblem

# a staged row; email: NULL when it is the key (lower-cased already: less to sort); tagset: NULL for no tags
STAGED = ("key", "email", "name", "fields", "status", "tagset", "line")
TAGSET_COLUMNS = ("tagset", "tag_key", "tag")
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
    chunks: Iterable[list[ListRow | RowProblem]], on_problem: Callable[[RowProblem], None], tagsets: TagSets
) -> Iterator[list[StagedRow]]:
    """The valid rows of each chunk as STAGED tuples (run by the reading thread: keep it lean)."""
    known, tagset = tagsets.numbers, tagsets.number  # (the common case inline: a tag list seen before)
    title_json: dict[str, str] = {}  # '"title":' of each column title
    for chunk in chunks:
        staged: list[StagedRow] = []
        for item in chunk:
            if item.__class__ is RowProblem:
                on_problem(item)
                continue
            status, subscriber = item  # type: ignore[misc]
            assert subscriber is not None  # every status is wanted
            email, name, tags = subscriber.email, subscriber.name, subscriber.tags
            fields = []  # the non-empty other columns, and first_name when not the name's first word
            for title, value in subscriber.fields.items():
                if value:
                    head = title_json.get(title) or title_json.setdefault(title, _quote(title) + ":")
                    fields.append(head + _quote(value))
            first_name = subscriber.first_name
            if first_name and first_name != (name.split(None, 1) or ("",))[0]:  # first_word(name), inline
                fields.append('"first_name":' + _quote(first_name))
            key = email.lower()
            staged.append(
                (
                    key,
                    None if key == email else email,
                    name,
                    "{" + ",".join(fields) + "}",
                    status,
                    (known.get(tags) or tagset(tags)) if tags else None,
                    subscriber.line,
                )
            )
        yield staged
