"""``broadsheet send --due``: send every issue whose ``send_at`` has come, for cron or a systemd timer.

Safe to run every minute. It reads only the front matter of each issue folder; drafts and issues without
``send_at`` are never sent by it. Issues that are due go one after the other (earliest ``send_at``
first) under the project's send lock, without asking (``--due`` implies ``--yes``). When another send
holds the lock, it says so in one line and exits 0: that send is doing the work. An issue whose campaign
over the transport has nothing queued or deferred left is finished and left alone, so nobody is mailed
twice (subscribers who joined after it finished get it only from a ``broadsheet send ISSUE`` by hand).
When today's daily limit is used up it stops quietly; the next run after 00:00 UTC goes on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from ..campaign import Journal, campaign_key
from ..campaign.caps import daily_cap, utc_text
from ..campaign.lock import ProjectLock, SendRunning
from ..config import Config
from ..content import Schedule, read_schedule
from ..errors import BroadsheetError


def send_due(args: argparse.Namespace, config: Config) -> int:
    """0 when every due issue went (or nothing was due); the worst exit code of the sends otherwise."""
    now = time.time()
    due, code = due_issues(config, now)
    if not due:
        return code
    lock = ProjectLock(config.root)
    try:
        lock.acquire()
    except SendRunning:
        print("send --due: another send is running for this project; leaving the due issues to it and to later runs")
        return code
    try:
        with Journal.for_project(config.root) as journal:  # the lock above keeps other sends out
            for schedule in due:
                code = max(code, _send_one(args, config, journal, schedule, now))
                if code == 130:
                    break
    finally:
        lock.release()
    return code


def due_issues(config: Config, now: float) -> tuple[list[Schedule], int]:
    """The issues whose send_at has come, earliest first, and 2 when an issue.md could not be read (said
    on stderr; the other issues still go)."""
    folder = config.resolve(config.issues_dir)
    due: list[Schedule] = []
    code = 0
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    for issue in sorted(path for path in folder.iterdir() if (path / "issue.md").is_file()) if folder.is_dir() else ():
        try:
            schedule = read_schedule(issue, config)
        except BroadsheetError as exc:
            print(f"broadsheet: error: {exc}", file=sys.stderr)
            code = 2
            continue
        if not schedule.draft and schedule.send_at is not None and schedule.send_at <= moment:
            due.append(schedule)
    due.sort(key=lambda schedule: schedule.send_at or moment)
    return due, code


def _send_one(args: argparse.Namespace, config: Config, journal: Journal, schedule: Schedule, now: float) -> int:
    from .send import send_issue

    transport = args.transport or config.send.transport
    if _finished(journal, schedule, transport):
        return 0
    cap = daily_cap(config, journal, transport, time.time())
    if cap is not None and cap.left == 0:
        return 0  # said once by the run that reached it; `broadsheet status` says when the rest goes
    assert schedule.send_at is not None
    print(f"send --due: {schedule.folder.name} (send_at {utc_text(schedule.send_at.timestamp())})")
    issue_args = argparse.Namespace(**{**vars(args), "issue_dir": schedule.folder, "due": False, "yes": True})
    try:
        return send_issue(issue_args, config, journal)
    except BroadsheetError as exc:  # this issue cannot go; the others still may
        print(f"broadsheet: error: {exc}", file=sys.stderr)
        return 2


def _finished(journal: Journal, schedule: Schedule, transport: str) -> bool:
    """The issue's campaign over ``transport`` exists and has nobody queued or deferred."""
    slug = Path(schedule.folder).resolve().name
    for campaign in journal.campaigns_for(campaign_key(schedule.id, slug), slug):
        if campaign.transport == transport:
            counts = journal.counts(campaign)
            return counts["queued"] + counts["deferred"] == 0
    return False
