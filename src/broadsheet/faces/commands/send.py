"""broadsheet send ISSUE_DIR: deliver an issue to the subscriber list, journaled, resumable.

``broadsheet send --due`` (for cron or a systemd timer): every issue whose ``send_at`` has come and whose
campaign is not finished, one after the other, without asking, then every sequence step that is due (see
``usecases/due.py``).

Exit codes: 0 every recipient of the campaign is sent (or the --limit or the daily limit was reached with
no failure);
1 some recipients are failed or unknown, or a --test/--dry-run found a problem; 130 stopped by Ctrl-C
(resumable); 2 an error (printed on one line by the CLI). ``--due``: the worst of its sends' codes, 2 when
an issue could not be read or sent (the others still went); 0 when another send holds the lock.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from broadsheet.usecases.due import send_due
from broadsheet.usecases.send import SendOptions, SendResult, send_issue

from . import Subparsers, issue_folder, project_config
from .terminal import TerminalReporter


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "send", help="send an issue to the subscriber list (resumable)",
        description="Compose one message per subscriber and deliver them through the configured transport. "
        "Every recipient is journaled in .broadsheet/state.db (in PostgreSQL when [database] url is set): "
        "running the same command again resumes.",
    )  # fmt: skip
    parser.add_argument(
        "issue_dir", type=Path, metavar="ISSUE_DIR", nargs="?", help="the issue folder (or its name under issues/)"
    )
    parser.add_argument(
        "--due",
        action="store_true",
        help="send every issue whose send_at has come and whose campaign is not finished (for cron; implies --yes)",
    )
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="with --due: everyone subscribed enters the welcome sequence, not only those who join from now on",
    )
    parser.add_argument(
        "--list", dest="list_file", type=Path, metavar="FILE", help="subscriber CSV (default: send.list)"
    )
    parser.add_argument(
        "--segment", action="append", default=[], metavar="TAG", help="only subscribers with this tag (repeatable)"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="send to at most N recipients in this run")
    parser.add_argument("--dry-run", action="store_true", help="compose every message, send none, write nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--transport", metavar="NAME", help="override send.transport")
    parser.add_argument("--test", metavar="ADDRESS", help="send one [TEST] copy to ADDRESS (not journaled)")
    parser.add_argument("--as", dest="as_email", metavar="EMAIL", help="with --test: personalise as this subscriber")
    parser.add_argument("--retry-failed", action="store_true", help="send again to recipients that failed")
    parser.add_argument("--retry-unknown", action="store_true", help="send again to recipients left unknown by a crash")
    parser.add_argument(
        "--resend-all",
        action="store_true",
        help="send although this issue went from a journal that is gone (everyone on the list is mailed again)",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="share the campaign with other 'send --worker' processes of the same issue and journal (on any "
        "machine when the journal is in PostgreSQL): each "
        "claims its own recipients, nobody is mailed twice, send.rate_per_second, rate_per_hour, daily_limit "
        "and the warm-up hold for all of them together",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="send even when lint reports errors, or when recipients got the same subject lately",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    options = SendOptions(
        issue_dir=args.issue_dir, due=args.due, list_file=args.list_file, segments=tuple(args.segment),
        limit=args.limit, dry_run=args.dry_run, yes=args.yes, transport=args.transport, test=args.test,
        as_email=args.as_email, retry_failed=args.retry_failed, retry_unknown=args.retry_unknown,
        resend_all=args.resend_all, force=args.force, config_file=getattr(args, "config", None),
        backfill=args.backfill, worker=args.worker,
    )  # fmt: skip
    config = project_config(args)
    if options.due:
        due = send_due(options, config, TerminalReporter())
        return max([2 if due.errors else 0, *(exit_code(result) for result in due.sent)])
    assert options.issue_dir is not None
    options = dataclasses.replace(options, issue_dir=issue_folder(options.issue_dir, config))
    return exit_code(send_issue(options, config, TerminalReporter()))


def exit_code(result: SendResult) -> int:
    """130 stopped by a signal; 1 someone failed or unknown (a test copy or dry run: a message failed); else 0."""
    if result.interrupted:
        return 130
    return 0 if result.complete else 1
