"""broadsheet sync [--transport NAME] [--since DATE]: bring the provider's bounce, complaint and
unsubscribe lists into the subscriber store, for senders who do not run ``broadsheet serve``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from broadsheet.data.store import Store
from broadsheet.usecases.events.sync import sync

from . import Subparsers, project_config


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sync", help="read bounces, complaints and unsubscribes from the provider's API into the store",
        description="Reads the provider's suppression lists (Postmark, SendGrid, Mailgun, SES) page by page and "
        "records each entry once in the subscriber store: bounced and complained addresses are suppressed, "
        "unsubscribes unsubscribed. Running it again changes nothing.",
    )  # fmt: skip
    parser.add_argument("--transport", metavar="NAME", help="the provider to read (default: send.transport)")
    parser.add_argument("--since", metavar="DATE", type=_date, help="only entries from this date (YYYY-MM-DD) on")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    name = args.transport or config.send.transport
    with Store.for_config(config) as store:
        result = sync(config, store, name, args.since)
    print(f"{name}: {result.applied.summary()} ({result.requests} request(s))")
    for email in result.applied.suppressed[:20]:
        print(f"  suppressed {email}")
    if len(result.applied.suppressed) > 20:
        print(f"  … and {len(result.applied.suppressed) - 20:,} more")
    for note in result.notes:
        print(f"warning: {name}: {note}", file=sys.stderr)
    return 0


def _date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-12-01, not {value!r}") from None
