"""How a use case tells what happens and asks before it acts: the CLI prints and prompts, tests record."""

from __future__ import annotations

from typing import Protocol

from broadsheet.core.errors import BroadsheetError


class Progress(Protocol):
    """The running campaign's counts now and then (the runner calls it), closed when the run ends."""

    def __call__(self, counts: dict[str, int], rate: float) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    def info(self, line: str) -> None:
        """A line of the result (the CLI's standard output)."""

    def warn(self, line: str) -> None:
        """A note beside the result: a bad row, a lint error, what goes despite a check (standard error)."""

    def problem(self, error: BroadsheetError) -> None:
        """An error that stops one item but not the run (``send --due`` goes on with the next issue)."""

    def progress(self) -> Progress:
        """Where a send's live counts go while it runs."""

    def confirm(self, question: str) -> bool:
        """Ask before a send; False: not confirmed. May raise a BroadsheetError when nobody can answer."""
