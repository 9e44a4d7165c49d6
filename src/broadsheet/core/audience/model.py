"""What the audience package hands on: one subscriber, or why a row was left out."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable


@dataclass(slots=True)  # not frozen: a frozen dataclass is built four times slower, and lists hold millions
class Subscriber:
    """One valid, subscribed recipient (treat as a value: nothing changes one after it is made).

    ``email`` is normalised (local part as given, domain lower-cased and IDNA ASCII); ``fields`` holds
    the other columns (all but email, name, first_name, status and tags). What the templates see is
    ``compose.fields.personal_fields``: the fields with email, name and first_name.
    """

    email: str
    name: str = ""
    first_name: str = ""
    tags: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0


class SubscriberColumns(NamedTuple):
    """Subscribers of a long list's chunk a column each (a Subscriber's attributes; ``fields``: a dict of
    ``titles`` and a row's values of ``extras``, a column each): handed on with no object per row."""

    emails: list[str]
    names: list[str]
    first_names: list[str]
    tags: list[tuple[str, ...]]
    titles: list[str]
    extras: list[tuple[str, ...]]
    lines: Sequence[int]

    @property
    def size(self) -> int:  # (``len`` of a NamedTuple is its count of attributes)
        return len(self.lines)

    def subscribers(self) -> list[Subscriber]:
        """The same as Subscribers, in order."""
        if self.extras:
            fields = list(map(dict, map(zip, itertools.repeat(self.titles), zip(*self.extras, strict=True))))
        else:
            fields = [{} for _ in self.lines]
        return list(map(Subscriber, self.emails, self.names, self.first_names, self.tags, fields, self.lines))


def first_word(name: str) -> str:
    """A name's first word: the first name when none is given (split at any whitespace, as Python does)."""
    return (name.split(None, 1) or ("",))[0]


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A bad row, skipped: where it is and what is wrong with it."""

    line: int
    email: str
    reason: str


class ListRow(NamedTuple):  # a tuple: an import makes a million of them
    """One readable row of a list: its status and, when that status was wanted, the validated subscriber."""

    status: str
    subscriber: Subscriber | None


@dataclass(frozen=True)
class Selection:
    """Recipient rows one package selects in SQL for another to load without Python per row: ``query`` gives
    (email, line, data) in the order to load them, from ``files`` attached read-only under their names;
    ``parameters`` are its named values, ``functions`` the one-argument SQL functions it calls."""

    query: str
    files: Mapping[str, Path]
    parameters: Mapping[str, object] = field(default_factory=dict)
    functions: Mapping[str, Callable[[str], str]] = field(default_factory=dict)


class JournalLoader(Protocol):
    """A campaign's journal, ready to take its recipients one of two ways (``campaign`` makes one)."""

    def chunks(self, chunks: Iterable[list[Subscriber] | SubscriberColumns]) -> int:
        """Subscribers a chunk at a time (a list, or its columns); the first row of an address is kept (ASCII letters folded).
        Returns the count kept."""
        ...

    def selected(self, selection: Selection) -> int:
        """Rows another package selects in SQL, loaded with no Python per row; returns their count."""
        ...


@runtime_checkable
class LoadableList(Protocol):
    """A list that loads itself into a campaign's journal the cheapest way it knows (``load_into``),
    counting what it left out as a pass over it would."""

    def load_into(self, loader: JournalLoader) -> int: ...
