"""broadsheet publish [--out DIR]: the web archive of every non-draft issue (index, pages, feed, sitemap)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from broadsheet.usecases.publish import publish_site

from . import Subparsers, project_config

DEFAULT_OUT = "site"


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "publish", help="build the web archive: an index, a page per issue, an Atom feed and a sitemap",
        description="Build a static site of every non-draft issue under issues/ into DIR: index.html, "
                    "<slug>/index.html with its images, feed.xml, sitemap.xml, favicon.png. Upload DIR to base_url: "
                    "the emails' 'view in your browser' links and images point there.",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT}/ in the project)"
    )
    parser.add_argument(
        "--subscriber-count", action="store_true",
        help="show on the index how many people are subscribed (from the subscriber store; off by default)",
    )  # fmt: skip
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    published = publish_site(config, args.out or config.resolve(DEFAULT_OUT), subscriber_count=args.subscriber_count)
    count = len(published.entries)
    print(f"published {count} issue{'s' if count != 1 else ''} → {published.out} ({len(published.files)} files)")
    if published.removed:
        print(f"removed {len(published.removed)} files of issues no longer published")
    for note in published.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
