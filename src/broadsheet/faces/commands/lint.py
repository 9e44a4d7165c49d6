"""``broadsheet lint ISSUE_DIR``: what will break, clip or land in spam. Exit 1 on errors."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from broadsheet.core.config import Config
from broadsheet.core.errors import BroadsheetError

from . import Subparsers, issue_folder, project_config

if TYPE_CHECKING:
    from broadsheet.core.lint import Finding


def register(sub: Subparsers) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "lint",
        help="check an issue for what hurts delivery",
        description="Build ISSUE_DIR and check it: size, images, links, required parts, MJML, text part, "
        "spam-prone patterns. Exit 1 on errors, 0 on warnings only.",
    )
    parser.add_argument("issue_dir", metavar="ISSUE_DIR", help="the issue folder (or its name under issues/)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="json for CI")
    parser.add_argument("--no-validator", action="store_true", help="skip the npm MJML validator")
    return parser


def run(args: argparse.Namespace) -> int:
    from broadsheet.core.lint import HOW_TO_INSTALL, Finding, find_validator, lint_issue, summary, to_json
    from broadsheet.data.store.recipients import audience_fields

    config = project_config(args)
    folder = issue_folder(args.issue_dir, config)
    try:
        fields = audience_fields(config)
        findings = lint_issue(folder, config, validate_mjml=not args.no_validator, subscriber_fields=fields)
    except BroadsheetError as exc:
        if args.format == "json":  # CI still gets a document: the build error as the one finding
            error = Finding(
                "build", "error", exc.message + (f" ({exc.fix})" if exc.fix else ""), exc.where or str(folder)
            )
            print(to_json([error], issue=str(folder)))
        raise
    findings += store_findings(config)
    validator = None if args.no_validator else find_validator(config.root)
    if args.format == "json":
        print(to_json(findings, issue=str(folder), validator=str(validator) if validator else None))
    else:
        for finding in findings:
            print(finding)
        if validator is None and not args.no_validator:
            print(f"note: MJML validator not installed, skipped ({HOW_TO_INSTALL})", file=sys.stderr)
        print(f"{folder.name}: {summary(findings)}")
    return 1 if any(f.severity == "error" for f in findings) else 0


def store_findings(config: Config) -> list[Finding]:
    """Warnings about the subscriber store (many unconfirmed or long-unchanged addresses), as ``send`` gives."""
    from broadsheet.core.lint import Finding
    from broadsheet.data.store import store_location
    from broadsheet.usecases.events.report import store_health

    where = str(store_location(config))  # the SQLite file, or the PostgreSQL URL (which holds no password)
    return [Finding("store-health", "warning", text, where) for text in store_health(config)]
