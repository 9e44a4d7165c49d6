"""broadsheet new "Title": scaffold issues/<YYYY-MM-DD>-<slug>/ in the project (usecases/new_issue.py)."""

from __future__ import annotations

import argparse
import datetime as dt

from broadsheet.core.errors import ConfigError
from broadsheet.usecases.new_issue import create_issue, shown_path

from . import Subparsers, project_config


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "new", help="scaffold a new issue folder", description="Create issues/<date>-<slug>/."
    )
    parser.add_argument("title", help="the issue's title")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    if config.path is None:  # an issue outside a project would be linted against settings that are not there
        raise ConfigError(
            "no broadsheet.toml in this folder or any above it",
            fix="make a project first: broadsheet init (or cd into one)",
        )
    folder = create_issue(config, args.title, args.date or dt.date.today())
    print(f"created {folder}")
    quoted = shown_path(folder, config.root)
    print(
        f"next: write {quoted}/issue.md and {quoted}/articles/ (images in {quoted}/images/), then\n"
        f"  broadsheet preview {quoted}       # live preview in the browser\n"
        f"  broadsheet lint {quoted}          # what to fix before sending\n"
        f"  broadsheet send {quoted} --test you@example.org"
    )
    return 0
