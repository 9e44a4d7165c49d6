"""What the audience room hands on: one subscriber, or why a row was left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One valid, subscribed recipient.

    ``email`` is normalised (local part as given, domain lower-cased and IDNA ASCII); ``fields`` holds
    every CSV column but status and tags, plus email, name and first_name, for the templates.
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
