"""What the audience room hands on: one subscriber, or why a row was left out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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


@runtime_checkable
class ChunkedList(Protocol):
    """A list that hands its subscribers on a chunk at a time and can leave the repeats of an ASCII address
    to a consumer that keeps the first itself (the journal) and tells their count back."""

    deduplicate: bool

    def chunks(self) -> Iterator[list[Subscriber]]: ...

    def count_duplicates(self, count: int) -> None: ...
