"""``send --due``: send every issue whose ``send_at`` has come, for cron or a systemd timer.

Safe to run every minute. It reads only the front matter of each issue folder; drafts and issues without
``send_at`` are never sent by it. Issues that are due go one after the other (earliest ``send_at``
first) under the project's send lock, without asking (``--due`` implies ``--yes``). When another send
holds the lock, it says so in one line and ends: that send is doing the work. An issue whose campaign
over the transport has nothing queued or deferred left is finished and left alone, so nobody is mailed
twice (subscribers who joined after it finished get it only from a ``broadsheet send ISSUE`` by hand).
When today's daily limit is used up it stops quietly; the next run after 00:00 UTC goes on.
Then the sequences' steps that are due go (``sequences.steps``), under the same lock and caps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from broadsheet.core.config import Config
from broadsheet.core.content import Schedule, read_schedule
from broadsheet.core.errors import BroadsheetError
from broadsheet.data.journal.lock import SendRunning

from .campaign import Journal, campaign_key, open_journal_for
from .campaign.caps import daily_cap, utc_text
from .report import Reporter
from .send import SendOptions, SendResult, send_issue
from .sequences.steps import has_sequences, send_due_steps


@dataclass
class DueResult:
    """What each due issue's send came to, and how many issues could not be read or sent (each told to
    the reporter as a problem; the others still went)."""

    sent: list[SendResult] = field(default_factory=list)
    errors: int = 0


def send_due(options: SendOptions, config: Config, reporter: Reporter, now: float | None = None) -> DueResult:
    """Send each due issue with ``options`` (ISSUE_DIR left out), one after the other, then each due sequence
    step, under the send lock; stops after one that a stop signal ended. ``now``: the time to judge by."""
    now = time.time() if now is None else now
    due, result = due_issues(config, now, reporter)
    sequences = has_sequences(config)
    if not due and not sequences:
        return result
    try:  # the send lock, taken before anything else: no other send
        journal = open_journal_for(config, lock=True, wait=options.journal_wait)
    except SendRunning:
        reporter.info(
            "send --due: another send is running for this project; leaving the due issues to it and to later runs"
        )
        return result
    with journal:
        for schedule in due:
            _send_one(options, config, journal, schedule, reporter, result)
            if result.sent and result.sent[-1].interrupted:
                return result
        if sequences:
            steps = send_due_steps(options, config, journal, reporter, now, backfill=options.backfill)
            result.sent += steps.sent
            result.errors += steps.errors
    return result


def due_issues(config: Config, now: float, reporter: Reporter) -> tuple[list[Schedule], DueResult]:
    """The issues whose send_at has come, earliest first, and a result counting the issue.md files that
    could not be read (each told to the reporter; the other issues still go)."""
    folder = config.resolve(config.issues_dir)
    due: list[Schedule] = []
    result = DueResult()
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    for issue in sorted(path for path in folder.iterdir() if (path / "issue.md").is_file()) if folder.is_dir() else ():
        try:
            schedule = read_schedule(issue, config)
        except BroadsheetError as exc:
            reporter.problem(exc)
            result.errors += 1
            continue
        if not schedule.draft and schedule.send_at is not None and schedule.send_at <= moment:
            due.append(schedule)
    due.sort(key=lambda schedule: schedule.send_at or moment)
    return due, result


def _send_one(
    options: SendOptions, config: Config, journal: Journal, schedule: Schedule, reporter: Reporter, result: DueResult
) -> None:
    transport = options.transport or config.send.transport
    if _finished(journal, schedule, transport):
        return
    cap = daily_cap(config, journal, transport, time.time())
    if cap is not None and cap.left == 0:
        return  # said once by the run that reached it; `broadsheet status` says when the rest goes
    assert schedule.send_at is not None
    reporter.info(f"send --due: {schedule.folder.name} (send_at {utc_text(schedule.send_at.timestamp())})")
    issue_options = dataclasses.replace(options, issue_dir=schedule.folder, due=False, yes=True, backfill=False)
    try:
        result.sent.append(send_issue(issue_options, config, reporter, journal))
    except BroadsheetError as exc:  # this issue cannot go; the others still may
        reporter.problem(exc)
        result.errors += 1


def _finished(journal: Journal, schedule: Schedule, transport: str) -> bool:
    """The issue's campaign over ``transport`` exists and has nobody queued or deferred."""
    slug = Path(schedule.folder).resolve().name
    for campaign in journal.campaigns_for(campaign_key(schedule.id, slug), slug):
        if campaign.transport == transport:
            counts = journal.counts(campaign)
            return counts["queued"] + counts["deferred"] == 0
    return False
