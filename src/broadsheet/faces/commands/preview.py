"""``broadsheet preview ISSUE_DIR``: a live page of the issue, or a PNG of it with --screenshot."""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from broadsheet.core.errors import ContentError

from . import Subparsers, issue_folder, project_config, wait_until_stopped

if TYPE_CHECKING:
    from ..preview.builder import Build


def register(sub: Subparsers) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "preview",
        help="preview an issue in the browser, reloading on every save",
        description="Serve ISSUE_DIR on 127.0.0.1: subject, from, preheader, desktop and mobile frames, "
        "text part, headers and lint findings; rebuilt and reloaded whenever a file of the issue, the "
        "theme or the config is saved. Ctrl-C stops it.",
    )
    parser.add_argument(
        "issue_dir", metavar="ISSUE_DIR", help="the issue folder (or its name under issues/), or a sequence's step file"
    )
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: [preview] port, 8025)")
    parser.add_argument(
        "--as", dest="as_email", metavar="EMAIL", help="personalise as this subscriber (of the store, else the list)"
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png", help="save the email as a PNG and exit")
    parser.add_argument("--width", type=_width, default=600, help="screenshot width in CSS pixels (default 600)")
    return parser


def run(args: argparse.Namespace) -> int:
    from broadsheet.data.store.recipients import find_subscriber

    from ..preview import Preview

    config = project_config(args)
    folder = issue_folder(args.issue_dir, config)
    if not ((folder / "issue.md").is_file() or (folder.suffix == ".md" and folder.is_file())):  # or a step file
        raise ContentError(
            "issue folder not found",
            where=str(args.issue_dir),
            fix=f"give a folder holding issue.md, e.g. {config.issues_dir}/<date>-<name>, or a sequence's step file",
        )
    config_path = config.path
    if args.screenshot:
        return _screenshot(folder, config_path, args)
    port = config.preview.port if args.port is None else args.port
    if args.as_email:
        find_subscriber(config, args.as_email)  # an unknown address is an error now, not a page later
    try:
        with Preview(folder, port=port, config_path=config_path, as_email=args.as_email, report=_report) as preview:
            print(f"previewing {folder.name} at {preview.url} (Ctrl-C to stop)", flush=True)
            if args.open:
                webbrowser.open(preview.url)
            wait_until_stopped()
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    return 0


def _width(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 4000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a width from 100 to 4000 pixels")
    return int(text)


def _screenshot(folder: Path, config_path: Path | None, args: argparse.Namespace) -> int:
    from ..preview import Preview
    from ..preview.chromium import screenshot

    with Preview(folder, port=0, config_path=config_path, as_email=args.as_email, watch=False) as preview:
        if preview.current.error is not None:
            raise preview.current.error
        shot = screenshot(preview.url + "email.html", args.screenshot, width=args.width)
    if shot.width > args.width:
        print(f"saved {shot.path} ({shot.width} px wide: the email is wider than the {args.width} px screen asked for)")
    else:
        print(f"saved {shot.path} ({shot.width} px wide)")
    return 0


def _report(kind: str, build: Build) -> None:
    """One line per rebuild on the terminal."""
    if kind != "build":
        return
    if build.error is not None:
        print(f"build {build.generation} failed: {build.error}", flush=True)
    else:
        errors = sum(1 for f in build.findings if f.severity == "error")
        print(
            f"build {build.generation} in {build.seconds * 1000:.0f} ms "
            f"({errors} lint errors, {len(build.findings) - errors} warnings)",
            flush=True,
        )
