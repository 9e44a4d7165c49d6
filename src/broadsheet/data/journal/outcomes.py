"""The journal's outcomes: what happened to claimed rows, written through another program's lock, or saved
aside in ``<journal>.pending`` and written by the next send."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import astuple
from pathlib import Path

from broadsheet.core.errors import CampaignError

from .base import JournalBase, JournalGone, Outcome, file_identity
from .file import explain


class Outcomes(JournalBase):
    """Outcomes of claimed rows."""

    def record(self, outcomes: Iterable[Outcome]) -> None:
        """Write what happened to claimed rows, in one transaction.

        Another program's write lock is waited out for ``patience`` seconds. When the outcomes cannot be
        written (lock held longer, journal removed or replaced), they are saved aside in ``<journal>.pending``
        — replayed by the next send before it recovers anything — and CampaignError says why: messages
        that went out stay recorded as sent, never turn ``unknown``.
        """
        outcomes = list(outcomes)
        if not outcomes:
            return
        moved = None
        try:
            if self._blocked is not None:
                raise self._blocked
            try:
                self.check_in_place()
            except JournalGone as exc:
                if file_identity(self.path) != self._identity:
                    raise  # not written back: nowhere to write
                moved = exc  # written back: record there, then stop the campaign
            self._write_outcomes(outcomes)
        except CampaignError as exc:
            self._blocked = exc
            self._save_aside(outcomes)
            raise
        if moved is not None:
            raise moved

    def _write_outcomes(self, outcomes: list[Outcome]) -> None:
        now = time.time()
        self._write_patiently(
            "UPDATE recipients SET state = ?, detail = ?, message_id = ?, next_attempt = ?,"
            " attempts = attempts + ?, updated = ? WHERE id = ?",
            [(o.state, o.detail, o.message_id, o.next_attempt, int(o.counts_attempt), now, o.id) for o in outcomes],
            after="DELETE FROM leases WHERE recipient = ?" if self._leasing else "",
        )  # fmt: skip

    def _save_aside(self, outcomes: list[Outcome]) -> None:
        """Append outcomes to ``<journal>.pending`` (flushed to disk); best effort when the folder is gone."""
        lines = "".join(json.dumps([self.uid, *astuple(o)]) + "\n" for o in outcomes)
        path = pending_path(self.path)
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:  # a line cut short is skipped by the replay; an empty file is not left to be read
            with contextlib.suppress(OSError):
                if path.stat().st_size == 0:
                    path.unlink()

    def replay_pending(self) -> int:
        """Write outcomes an earlier send saved aside into this journal (when they name it); returns how many."""
        path = pending_path(self.path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise explain(exc, path) from None
        outcomes = []
        for line in text.splitlines():
            try:
                uid, *values = json.loads(line)
                outcome = Outcome(*values)
            except (ValueError, TypeError):
                continue  # a line cut short by a crash while it was written
            if uid == self.uid:
                outcomes.append(outcome)
        self._write_outcomes(outcomes)
        path.unlink(missing_ok=True)
        return len(outcomes)


def pending_path(path: Path) -> Path:
    """Where outcomes that could not be written are kept until the next send writes them."""
    return path.with_name(path.name + ".pending")
