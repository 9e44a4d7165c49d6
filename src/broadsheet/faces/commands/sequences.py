"""broadsheet sequences: what a sequence would send (simulate), what it sent (status), who enters it (enter).

Its steps are sent by ``broadsheet send --due``; ``preview``, ``lint``, ``build`` and ``send --test`` take a
step file as they take an issue folder.
"""

from __future__ import annotations

import argparse
import time

from broadsheet.core.config import Config
from broadsheet.core.content.sequence import read_sequence, sequence_folder
from broadsheet.core.errors import AudienceError
from broadsheet.usecases.campaign.caps import utc_text
from broadsheet.usecases.sequences.timeline import sequence_status, simulate

from . import Subparsers, project_config


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sequences", help="simulate a sequence, show its status, enter subscribers into it",
        description="A sequence is a folder sequences/NAME/ of step files NN-slug.md (subject, preheader, after); "
        "broadsheet send --due sends each step when it falls due.",
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    simulated = actions.add_parser(
        "simulate", help="the timeline a subscriber would get, without sending",
        description="Print each step a subscriber entering NAME now would get within --days: step, date, subject. "
        "With --as, the timeline of that subscriber, from when they entered, with the steps already sent.",
    )  # fmt: skip
    simulated.add_argument("name", metavar="NAME")
    simulated.add_argument("--days", type=int, default=30, metavar="N", help="how many days to show (default 30)")
    simulated.add_argument("--as", dest="as_email", metavar="ADDRESS", help="the timeline of this subscriber")
    status = actions.add_parser(
        "status", help="how many are at each step and what went out",
        description="Members of NAME (in it, stopped), then each step: how many it is the last step sent to, and "
        "its journal counts.",
    )  # fmt: skip
    status.add_argument("name", metavar="NAME")
    enter = actions.add_parser(
        "enter", help="enter subscribers into a sequence",
        description="Enter the subscribed EMAILs (or everyone subscribed with --tag) into NAME now; the first step "
        "goes when its after has passed. Members stay where they are.",
    )  # fmt: skip
    enter.add_argument("name", metavar="NAME")
    enter.add_argument("email", nargs="*", metavar="EMAIL")
    enter.add_argument("--tag", metavar="TAG", help="everyone subscribed with this tag")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    if args.action == "simulate":
        return _simulate(args, config)
    if args.action == "status":
        return _status(args, config)
    return _enter(args, config)


def _simulate(args: argparse.Namespace, config: Config) -> int:
    if args.days < 0:
        raise AudienceError("--days must be 0 or more")
    timeline = simulate(config, args.name, days=args.days, as_email=args.as_email)
    who = args.as_email if timeline.member else "a subscriber entering now"
    if args.as_email and not timeline.member:
        who = f"{args.as_email} (not in {args.name}: as if entering now)"
    print(f"{args.name}: {who}, from {utc_text(timeline.start)}")
    for entry in timeline.entries:
        day = (entry.at - timeline.start) / 86400
        print(f"  {entry.step.name:<24} {utc_text(entry.at)}  day {day:>4.1f}  "
              f"{'sent  ' if entry.sent else ''}{entry.step.subject}")  # fmt: skip
    if timeline.later:
        print(f"  … {timeline.later} more step(s) after day {args.days}")
    if not timeline.entries and not timeline.later:
        print("  (no steps)")
    return 0


def _status(args: argparse.Namespace, config: Config) -> int:
    status = sequence_status(config, args.name)
    print(f"{args.name}: {status.members.active:,} in it, {status.members.stopped:,} stopped "
          "(unsubscribed, bounced or complained)")  # fmt: skip
    print(f"  waiting for the first step: {status.waiting:,}")
    for row in status.steps:
        counts = ", ".join(f"{state} {n:,}" for state, n in row.counts.items()) or "nothing sent yet"
        print(f"  {row.step.name:<24} at this step {row.at:>7,}   {counts}")
    return 0


def _enter(args: argparse.Namespace, config: Config) -> int:
    from broadsheet.data.store import Store
    from broadsheet.data.store.sequences import enter, enter_tagged

    read_sequence(sequence_folder(args.name, config), config)  # a typo enters no one into nothing
    if bool(args.email) == bool(args.tag):
        raise AudienceError("give addresses or --tag TAG", fix="broadsheet sequences enter NAME EMAIL… or --tag TAG")
    with Store.for_config(config) as store:
        now = time.time()
        count = enter_tagged(store, args.name, args.tag, now) if args.tag else enter(store, args.name, args.email, now)
    print(f"{count:,} subscriber(s) entered {args.name}")
    return 0
