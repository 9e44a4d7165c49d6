"""broadsheet report [--out FILE]: the project's history as one self-contained HTML page of charts."""

from __future__ import annotations

import argparse
from pathlib import Path

from broadsheet.usecases.report_page import ReportOptions, write_report

from . import Subparsers, project_config

DEFAULT_OUT = "report.html"


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report", help="write an HTML page of charts: subscribers, each issue's rates, send rate, warm-up",
        description="Write one self-contained HTML page (no script, nothing loaded from elsewhere; light and dark "
                    "mode; fits a phone) with charts of the subscribers over time (joined, left, bounced, "
                    "complained), each issue's bounce, complaint, unsubscribe and click rates, the send rate of "
                    "the last campaign, and what went out per day against the warm-up's caps. It reads the "
                    "subscriber store and the send journal and changes neither.",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help=f"where to write the page (default: {DEFAULT_OUT} in the project)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    written = write_report(config, ReportOptions(out=args.out or config.resolve(DEFAULT_OUT)))
    if written.data.empty:
        print(f"nothing to report yet (no subscriber store, no send journal) → {written.out}")
    else:
        print(f"report → {written.out}")
    return 0
