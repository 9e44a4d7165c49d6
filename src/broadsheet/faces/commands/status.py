"""broadsheet status [ISSUE_DIR] [--failed-csv FILE]: where each send of an issue stands, from the journal;
without ISSUE_DIR, one line for every issue (scheduled, sending, sent)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import time
from pathlib import Path

from broadsheet.core.audience.spreadsheet import spreadsheet_safe
from broadsheet.core.config import Config
from broadsheet.core.errors import BroadsheetError, CampaignError
from broadsheet.core.providers import delivers
from broadsheet.data.journal.journal import STATES, pending_path
from broadsheet.usecases.campaign import CampaignRecord, Journal, campaign_key, journal_exists, open_journal_for
from broadsheet.usecases.campaign.caps import daily_cap, days_to_send, utc_text
from broadsheet.usecases.events.report import after_send_lines, click_lines

from . import Subparsers, issue_folder, project_config

LAST_ERRORS = 10


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "status", help="show how far the sends of an issue got",
        description="Counts by state (queued, sending, sent, failed, deferred, unknown), the last errors, "
        "and optionally every failed or unknown recipient with its reason as CSV.",
    )  # fmt: skip
    parser.add_argument(
        "issue_dir", type=Path, metavar="ISSUE_DIR", nargs="?",
        help="the issue folder (or its name under issues/); without it, one line for every issue",
    )  # fmt: skip
    parser.add_argument("--failed-csv", type=Path, metavar="FILE", help="write failed and unknown recipients here")
    return parser


def run(args: argparse.Namespace) -> int:
    """Reads the journal and changes nothing in it (a crash's rows are made unknown by the next send)."""
    config = project_config(args)
    if args.issue_dir is None:
        if args.failed_csv:
            raise CampaignError(
                "--failed-csv needs an issue", fix="give the issue: broadsheet status ISSUE_DIR --failed-csv FILE"
            )
        return _overview(config)
    args.issue_dir = issue_folder(args.issue_dir, config)
    send_at = _send_at(args.issue_dir, config)  # a broken send_at is the error send gives, not ignored
    if send_at is not None and not journal_exists(config):
        print(_waiting(Path(args.issue_dir).resolve().name, send_at))
        return 0
    with open_journal_for(config, read_only=True) as journal:
        issue_id, slug = _identity(args.issue_dir, config)
        campaigns = journal.campaigns_for(campaign_key(issue_id, slug), slug)
        if not campaigns:
            if send_at is not None:  # waiting for its time: no error
                print(_waiting(slug, send_at))
                return 0
            raise CampaignError("no send has started for this issue", where=str(args.issue_dir))
        running = journal.send_running()
        for campaign in campaigns:
            _show(journal, campaign, running=running, lease=config.send.worker_lease)
            _show_what_is_left(journal, campaign, config, args.issue_dir)
        if _has_content(pending_path(journal.path)):
            print(
                f"outcomes a send could not write to the journal wait in {pending_path(journal.path)}: "
                "the next send records them"
            )
        sent = sum(journal.counts(c)["sent"] for c in campaigns if delivers(c.transport))
        for line in after_send_lines(config, campaigns[0].slug, sent):  # bounces, complaints, unsubscribes
            print(line)
        for line in click_lines(config, campaigns[0].slug):
            print(line)
        if args.failed_csv:
            written = sum(
                _export(journal, campaign, args.failed_csv, first=i == 0) for i, campaign in enumerate(campaigns)
            )
            print(f"wrote {written:,} failed or unknown recipient(s) to {args.failed_csv}")
    return 0


def _overview(config: Config) -> int:
    """One line for every issue folder, in name order: sent or sending (with the after-send rates),
    scheduled (when), draft, or not sent. 2 when an issue.md cannot be read (said on its line)."""
    from broadsheet.core.content import read_schedule

    folder = config.resolve(config.issues_dir)
    issues = sorted(path for path in folder.iterdir() if (path / "issue.md").is_file()) if folder.is_dir() else []
    if not issues:
        print(f"no issues in {folder}")
        return 0
    journal = open_journal_for(config, read_only=True) if journal_exists(config) else None
    errors = 0
    try:
        for issue in issues:
            try:
                schedule = read_schedule(issue, config)
            except BroadsheetError as exc:
                print(f"{issue.name}: cannot be read: {exc}")
                errors += 1
                continue
            key = campaign_key(schedule.id, issue.name)
            campaigns = journal.campaigns_for(key, issue.name) if journal is not None else []
            if campaigns:
                assert journal is not None
                _overview_sent(journal, issue.name, campaigns, config)
            elif schedule.draft:
                print(f"{issue.name}: draft (not sent)")
            elif schedule.send_at is not None:
                print(_waiting(issue.name, schedule.send_at))
            else:
                print(f"{issue.name}: not sent")
    finally:
        if journal is not None:
            journal.close()
    return 2 if errors else 0


def _overview_sent(journal: Journal, slug: str, campaigns: list[CampaignRecord], config: Config) -> None:
    """An issue's campaigns, a line each (sending: how far; sent: the counts), then its after-send rates."""
    for campaign in campaigns:
        counts = journal.counts(campaign)
        left = counts["queued"] + counts["deferred"] + counts["sending"]
        total = sum(counts.values())
        others = ", ".join(f"{state} {counts[state]:,}" for state in ("failed", "unknown", "skipped") if counts[state])
        more = f", {others}" if others else ""
        if left:
            print(
                f"{slug}: sending over {campaign.transport}: sent {counts['sent']:,} of {total:,}, {left:,} to go{more}"
            )
        else:
            print(
                f"{slug}: sent over {campaign.transport} (started {campaign.created} UTC): sent {counts['sent']:,}{more}"
            )
    sent = sum(journal.counts(c)["sent"] for c in campaigns if delivers(c.transport))
    for line in after_send_lines(config, campaigns[0].slug, sent):
        print(line)


def _show(journal: Journal, campaign: CampaignRecord, *, running: bool, lease: float) -> None:
    counts = journal.counts(campaign)
    print(f"{campaign.slug} over {campaign.transport} (started {campaign.created} UTC)")
    print("  " + " · ".join(f"{state} {counts[state]:,}" for state in STATES) + f"  (total {sum(counts.values()):,})")
    problems = list(itertools.islice(journal.problems(campaign), LAST_ERRORS))
    if problems:
        print("  last errors:")
    for email, state, attempts, detail, updated in problems:
        print(f"    {email}  {state}  {detail or '-'}  ({attempts} attempt(s), {_when(updated)})")
    _show_workers(journal, campaign, time.time(), lease)
    if counts["sending"] and not running:
        print("  sending: in flight when a send stopped (crash, kill -9); the next send marks them unknown")
    if counts["unknown"]:
        print("  unknown: in flight when a send stopped; resend with: broadsheet send … --retry-unknown")
    if counts["failed"]:
        print("  failed: resend with: broadsheet send … --retry-failed")


def _show_workers(journal: Journal, campaign: CampaignRecord, now: float, lease: float) -> None:
    """Each ``send --worker`` of the campaign that has not stopped: host, pid, last batch, heartbeat age; one
    silent for longer than its lease is said to be gone (its recipients go to the others)."""
    workers = journal.workers(campaign)
    if workers:
        print(f"  workers: {len(workers)}")
    for worker in workers:
        last = f"last batch {_age(now - worker.last_batch)} ago" if worker.last_batch else "no batch yet"
        print(
            f"    {worker.host} pid {worker.pid}: {worker.batches:,} batch(es), {last}, "
            f"heartbeat {_age(now - worker.heartbeat)} ago"
            + (
                "; gone? (its lease ran out: the other workers take over its recipients)"
                if now - worker.heartbeat > lease
                else ""
            )
        )


def _age(seconds: float) -> str:
    return f"{max(0.0, seconds):.1f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _show_what_is_left(journal: Journal, campaign: CampaignRecord, config: Config, issue_dir: Path) -> None:
    """How many are still to go, and when: send_at when it is still ahead, and the days the daily cap
    spreads them over (today's cap first), assuming no other issue is sent meanwhile."""
    counts = journal.counts(campaign)
    left = counts["queued"] + counts["deferred"]
    if not left:
        return
    now = time.time()
    send_at = _send_at(issue_dir, config)
    if send_at is not None and send_at.timestamp() > now:
        print(f"  left: {left:,}; send_at {utc_text(send_at.timestamp())}: broadsheet send --due sends them then")
        return
    cap = daily_cap(config, journal, campaign.transport, now)
    if cap is None:
        due = " (or send --due: it has a send_at)" if send_at is not None else ""
        print(f"  left: {left:,}; they go with the next send of this issue (broadsheet send …{due})")
        return
    plan = days_to_send(config, journal, cap, left)
    today = (
        f"{cap.left:,} more can go today"
        if cap.left
        else f"today's cap is used up, next run after {utc_text(cap.resets_at)}"
    )
    print(f"  left: {left:,}; {cap.reason}: {cap.limit:,} a day, {cap.sent_today:,} sent today: {today}")
    shown = ", ".join(f"{utc_text(day)[:10]} {count:,}" for day, count in plan[:7])
    more = f", … the last on {utc_text(plan[-1][0])[:10]}" if len(plan) > 7 else ""
    print(f"  at the daily cap they go: {shown}{more}")


def _send_at(issue_dir: Path, config: Config) -> dt.datetime | None:
    """The issue's send_at; a ContentError (file, line, fix) when it cannot be read, as send says it.
    None when there is none, or no issue.md (a folder moved away after its send)."""
    from broadsheet.core.content import read_schedule

    if not (Path(issue_dir) / "issue.md").is_file():
        return None
    return read_schedule(issue_dir, config).send_at


def _waiting(slug: str, send_at: dt.datetime) -> str:
    """The line of an issue not sent yet that has a send_at: when it goes."""
    when = utc_text(send_at.timestamp())
    if send_at.timestamp() > time.time():
        return f"{slug}: scheduled for {when}; broadsheet send --due sends it then (nothing sent yet)"
    return f"{slug}: due since {when}; the next broadsheet send --due sends it (nothing sent yet)"


def _export(journal: Journal, campaign: CampaignRecord, target: Path, *, first: bool) -> int:
    try:
        handle = open(target, "w" if first else "a", newline="", encoding="utf-8")  # noqa: SIM115 -- `with handle` below
    except OSError as exc:
        raise CampaignError(f"cannot write the CSV: {exc.strerror}", where=str(target)) from None
    with handle:
        writer = csv.writer(handle)
        if first:
            writer.writerow(["email", "state", "attempts", "reason", "updated", "transport"])
        count = 0
        for email, state, attempts, detail, updated in journal.problems(campaign, ("failed", "unknown")):
            cells = [email, state, str(attempts), detail, _when(updated), campaign.transport]
            writer.writerow(map(spreadsheet_safe, cells))
            count += 1
    return count


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _identity(issue_dir: Path, config: Config) -> tuple[str | None, str]:
    """The issue's front-matter id and folder name; the id is None when the issue cannot be read."""
    from broadsheet.core.content.sequence import read_content  # an issue folder, or a sequence's step file

    slug = Path(issue_dir).resolve().name
    try:
        return read_content(issue_dir, config).id, slug
    except BroadsheetError:
        return None, slug
