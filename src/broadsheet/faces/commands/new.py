"""broadsheet new "Title": scaffold issues/<YYYY-MM-DD>-<slug>/."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import secrets
import shlex
import unicodedata
from pathlib import Path

from broadsheet.core.content import scaffold
from broadsheet.core.content.frontmatter import front_matter_value
from broadsheet.core.errors import ContentError

from . import Subparsers, project_config

ISSUE_TEMPLATE = """---
title: {title}
subject: {title}
preheader: "{preheader}"
date: {date}
number: {number}
id: "{issue_id}"
greeting: "Dear {{{{ subscriber.first_name | default('reader') }}}},"
---
{intro}
"""

ARTICLE_TEMPLATE = """---
title: {title}
author: ""
summary: ""
---
{body}: **bold**, *italic*, [links](https://example.org), lists and

> pull quotes.
"""


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "new", help="scaffold a new issue folder", description="Create issues/<date>-<slug>/."
    )
    parser.add_argument("title", help="the issue's title")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today)")
    return parser


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    date = args.date or dt.date.today()
    issues = config.resolve(config.issues_dir)
    if not args.title.strip():
        raise ContentError("the issue needs a title", fix='broadsheet new "Spring trade mission"')
    folder = issues / f"{date.isoformat()}-{slugify(args.title)}"
    if folder.exists():
        raise ContentError("the issue folder already exists", where=str(folder), fix="choose another title or date")
    title = _yaml_string(args.title)
    try:
        (folder / "articles").mkdir(parents=True)
        (folder / "images").mkdir()
        (folder / "issue.md").write_text(
            ISSUE_TEMPLATE.format(issue_id=new_issue_id(date), title=title, date=date.isoformat(),
                                  number=_next_number(issues), preheader=scaffold.PREHEADER, intro=scaffold.INTRO),
            encoding="utf-8",
        )  # fmt: skip
        (folder / "articles" / "01-first-article.md").write_text(
            ARTICLE_TEMPLATE.format(title=_yaml_string(scaffold.ARTICLE_TITLE), body=scaffold.ARTICLE_BODY),
            encoding="utf-8",
        )
    except OSError as exc:
        raise ContentError(
            f"cannot create the issue: {exc.strerror}",
            where=str(exc.filename or folder),
            fix=f"make {issues} a folder you can write to (issues_dir in broadsheet.toml)",
        ) from None
    print(f"created {folder}")
    print(_next_steps(folder, config.root))
    return 0


def _next_steps(folder: Path, root: Path) -> str:
    """What to run next, with the folder as the editor would type it."""
    try:
        name = folder.relative_to(Path.cwd())
    except ValueError:
        name = folder.relative_to(root) if folder.is_relative_to(root) else folder
    quoted = shlex.quote(str(name)) if re.search(r"""[\s'"\\$`!*?;&|<>(){}\[\]#~]""", str(name)) else str(name)
    return (
        f"next: write {quoted}/issue.md and {quoted}/articles/ (images in {quoted}/images/), then\n"
        f"  broadsheet preview {quoted}       # live preview in the browser\n"
        f"  broadsheet lint {quoted}          # what to fix before sending\n"
        f"  broadsheet send {quoted} --test you@example.org"
    )


def slugify(text: str) -> str:
    """Lower case, words joined by hyphens; accents dropped (Café → cafe), other scripts kept as they are
    (成都 stays 成都: letters and digits only, which the published addresses percent-encode)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "-", unicodedata.normalize("NFC", bare).lower()).strip("-")[:60].strip("-") or "issue"


def new_issue_id(date: dt.date) -> str:
    """A fresh identity for an issue: its date and 8 random hex digits (sends find the issue by it,
    wherever its folder moves)."""
    return f"{date.isoformat()}-{secrets.token_hex(4)}"


def _yaml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _next_number(issues: Path) -> int:
    numbers = [
        int(n) for path in issues.glob("*/issue.md") if (n := front_matter_value(path, "number")) and n.isdigit()
    ]
    return max(numbers, default=0) + 1
