"""broadsheet build ISSUE_DIR [--out DIR]: compile the issue into dist/<slug>/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from broadsheet.core.content import Issue
from broadsheet.core.lint import lint_rendered
from broadsheet.core.render import read_and_build, write_build
from broadsheet.core.render.checks import GMAIL_CLIP_BYTES, html_size
from broadsheet.data.store.recipients import audience_fields

from . import Subparsers, issue_folder, project_config


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "build", help="compile an issue to email HTML, plain text and a browser version",
        description="Compile ISSUE_DIR into DIR/<slug>/: email.mjml, email.html, email.txt, web.html, images/.",
    )  # fmt: skip
    parser.add_argument(
        "issue_dir", type=Path, metavar="ISSUE_DIR", help="the issue folder (or its name under issues/)"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default: output_dir in the config, dist/)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    args.issue_dir = issue_folder(args.issue_dir, config)
    issue, rendered = read_and_build(args.issue_dir, config)
    target = write_build(rendered, args.out or config.resolve(config.output_dir))
    size = html_size(rendered)
    print(f"built {rendered.slug} → {target}")
    print(
        f"HTML {size / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB clipping limit ({size / GMAIL_CLIP_BYTES:.0%})"
    )
    if line := images_line(issue):
        print(line)
    findings = lint_rendered(rendered, issue, config, validate_mjml=False, subscriber_fields=audience_fields(config))
    rules = {finding.rule for finding in findings}
    for warning in rendered.warnings:
        if not any(rule in rules and words in warning for rule, words in SAID_BY_LINT.items()):
            print(f"warning: {warning}", file=sys.stderr)
    for finding in findings:  # every finding `broadsheet lint` shows but the (slow) MJML validator's
        print(f"lint: {finding}", file=sys.stderr)
    return 0


def images_line(issue: Issue) -> str:
    """What optimising the issue's images saved, e.g. "images: 3 optimised, 4.2 MB → 612 KB (saved 3.6 MB)"."""
    local = [image for image in issue.images if image.path]
    if not local:
        return ""
    before, after = sum(i.original_bytes for i in local), sum(i.optimised_bytes for i in local)
    return f"images: {len(local)} optimised, {_size(before)} → {_size(after)} (saved {_size(max(before - after, 0))})"


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MB" if count >= 1024 * 1024 else f"{count / 1024:.0f} KB"


# A build warning that a lint finding of the same rule also states (in other words) is printed once, as lint's.
SAID_BY_LINT = {
    "preheader": "no preheader",
    "subject": "subject is",
    "html-size": "HTML is",
    "link-https": "insecure http://",
    "image-alt": "without alt text",
}
