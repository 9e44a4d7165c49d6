"""The use cases' Reporter on the terminal: lines to stdout, notes and problems to stderr, a prompt to ask."""

from __future__ import annotations

import sys

from broadsheet.core.errors import BroadsheetError, CampaignError
from broadsheet.usecases.campaign.progress import progress_for
from broadsheet.usecases.report import Progress


class TerminalReporter:
    """Asks on the terminal; without one to ask on (cron, a pipe) the answer is an error saying to add --yes."""

    def info(self, line: str) -> None:
        print(line)

    def warn(self, line: str) -> None:
        print(line, file=sys.stderr)

    def problem(self, error: BroadsheetError) -> None:
        print(f"broadsheet: error: {error}", file=sys.stderr)  # as cli.main says a fatal one

    def progress(self) -> Progress:
        return progress_for(sys.stdout)

    def confirm(self, question: str) -> bool:
        if not sys.stdin.isatty():
            raise CampaignError("no terminal to confirm the send on", fix="add --yes to send without asking")
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
