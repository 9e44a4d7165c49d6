"""What the audience room hands on: one subscriber, or why a row was left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


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
