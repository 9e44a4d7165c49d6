"""broadsheet subscribers check FILE: count who would receive, list every bad row with line and reason.

Exit code 0 when every row is usable, 1 when any row is bad (so CI or a script can stop on it).
Rows rightly left out (unsubscribed, bounced, duplicate, suppressed…) are counted, not problems.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import project_config


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "subscribers", help="check a subscriber list", description="Work with subscriber lists."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="count recipients and report every bad row",
        description="Read FILE as send would: count recipients, say who is left out and why, and list "
        "every bad row with its line number and reason. Exit code 1 when any row is bad.",
    )  # fmt: skip
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--segment", action="append", default=[], metavar="TAG", help="only subscribers with this tag")
    return parser


def run(args: argparse.Namespace) -> int:
    from .send import subscriber_list

    subscribers = subscriber_list(args.file, project_config(args), args.segment)
    count = sum(1 for _ in subscribers)
    for problem in subscribers.problems:
        print(f"{args.file}:{problem.line}: {problem.reason}" + (f" ({problem.email})" if problem.email else ""))
    print(f"{count:,} recipient(s)")
    for reason, n in sorted(subscribers.skipped.items()):
        print(f"  left out, {reason}: {n:,}")
    if subscribers.problems:
        print(f"{len(subscribers.problems):,} bad row(s): they will be skipped by send")
        return 1
    return 0
