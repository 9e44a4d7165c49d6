"""broadsheet status ISSUE_DIR [--failed-csv FILE]: where each send of an issue stands, from the journal."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from . import issue_folder, project_config
from ..campaign import CampaignRecord, Journal, issue_key, journal_path
from ..campaign.journal import STATES
from ..config import Config
from ..errors import BroadsheetError, CampaignError
from ..events.report import after_send_lines

LAST_ERRORS = 10


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "status", help="show how far the sends of an issue got",
        description="Counts by state (queued, sending, sent, failed, deferred, unknown), the last errors, "
        "and optionally every failed or unknown recipient with its reason as CSV.",
    )  # fmt: skip
    parser.add_argument("issue_dir", type=Path, metavar="ISSUE_DIR", help="the issue folder (or its name under issues/)")
    parser.add_argument("--failed-csv", type=Path, metavar="FILE", help="write failed and unknown recipients here")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    args.issue_dir = issue_folder(args.issue_dir, config)
    path = journal_path(config.root)
    if not path.is_file():
        raise CampaignError("nothing has been sent from this project yet", where=str(path))
    with Journal(path) as journal:
        campaigns = journal.campaigns_for(_slug(args.issue_dir, config), issue_key(args.issue_dir, config.root))
        if not campaigns:
            raise CampaignError("no send has started for this issue", where=str(args.issue_dir))
        if _no_send_running(journal):  # rows still 'sending' were in flight when a send died (kill -9, crash)
            for campaign in campaigns:
                journal.recover_in_flight(campaign)
            journal.unlock()
        for campaign in campaigns:
            _show(journal, campaign)
        sent = sum(journal.counts(c)["sent"] for c in campaigns if c.transport != "outbox")
        for line in after_send_lines(config.root, campaigns[0].slug, sent):  # bounces, complaints, unsubscribes
            print(line)
        if args.failed_csv:
            written = sum(_export(journal, campaign, args.failed_csv, first=i == 0) for i, campaign in enumerate(campaigns))
            print(f"wrote {written:,} failed or unknown recipient(s) to {args.failed_csv}")
    return 0


def _show(journal: Journal, campaign: CampaignRecord) -> None:
    counts = journal.counts(campaign)
    print(f"{campaign.slug} over {campaign.transport} (started {campaign.created} UTC)")
    print("  " + " · ".join(f"{state} {counts[state]:,}" for state in STATES) + f"  (total {sum(counts.values()):,})")
    problems = journal.problems(campaign).fetchmany(LAST_ERRORS)
    if problems:
        print("  last errors:")
    for email, state, attempts, detail, updated in problems:
        print(f"    {email}  {state}  {detail or '-'}  ({attempts} attempt(s), {_when(updated)})")
    if counts["unknown"]:
        print("  unknown: in flight when a send stopped; resend with: broadsheet send … --retry-unknown")
    if counts["failed"]:
        print("  failed: resend with: broadsheet send … --retry-failed")


def _no_send_running(journal: Journal) -> bool:
    """Take the send lock if no 'broadsheet send' holds it (release it with ``journal.unlock()``)."""
    try:
        journal.lock()
    except CampaignError:
        return False
    return True


def _export(journal: Journal, campaign: CampaignRecord, target: Path, *, first: bool) -> int:
    try:
        handle = open(target, "w" if first else "a", newline="", encoding="utf-8")
    except OSError as exc:
        raise CampaignError(f"cannot write the CSV: {exc.strerror}", where=str(target)) from None
    with handle:
        writer = csv.writer(handle)
        if first:
            writer.writerow(["email", "state", "attempts", "reason", "updated", "transport"])
        count = 0
        for email, state, attempts, detail, updated in journal.problems(campaign, ("failed", "unknown")):
            writer.writerow([email, state, attempts, detail, _when(updated), campaign.transport])
            count += 1
    return count


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _slug(issue_dir: Path, config: Config) -> str:
    """The issue's slug from its front matter; the folder name when the issue cannot be read."""
    from ..content import read_issue

    try:
        return read_issue(issue_dir, config).slug
    except BroadsheetError:
        return Path(issue_dir).resolve().name
