"""broadsheet build ISSUE_DIR [--out DIR]: compile the issue into dist/<slug>/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import issue_folder, project_config
from ..lint import lint_rendered
from ..render import read_and_build, write_build
from ..render.checks import GMAIL_CLIP_BYTES, html_size


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "build", help="compile an issue to email HTML, plain text and a browser version",
        description="Compile ISSUE_DIR into DIR/<slug>/: email.mjml, email.html, email.txt, web.html, images/.",
    )  # fmt: skip
    parser.add_argument("issue_dir", type=Path, metavar="ISSUE_DIR", help="the issue folder (or its name under issues/)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: output_dir in the config, dist/)")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    args.issue_dir = issue_folder(args.issue_dir, config)
    issue, rendered = read_and_build(args.issue_dir, config)
    target = write_build(rendered, args.out or config.resolve(config.output_dir))
    size = html_size(rendered)
    print(f"built {rendered.slug} → {target}")
    print(f"HTML {size / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB clipping limit ({size / GMAIL_CLIP_BYTES:.0%})")
    for warning in rendered.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for finding in lint_rendered(rendered, issue, config, validate_mjml=False):
        if finding.rule not in ALREADY_WARNED:
            print(f"lint: {finding}", file=sys.stderr)
    return 0


# Rules whose problem the build's own warnings (render.checks, content notes) already printed above;
# `broadsheet lint` shows them all.
ALREADY_WARNED = {"preheader", "subject", "html-size", "link-https", "image-alt"}
