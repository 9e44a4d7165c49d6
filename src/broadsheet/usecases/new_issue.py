"""A new issue folder under issues_dir: issue.md, articles/, images/; ``broadsheet new``'s starter text, or
the guide ``broadsheet init`` writes into a project's first issue (both in core/content/scaffold.py)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import shlex
import unicodedata
from pathlib import Path

from broadsheet.core.config import Config
from broadsheet.core.content import scaffold
from broadsheet.core.content.frontmatter import front_matter_value
from broadsheet.core.errors import ContentError

ISSUE_TEMPLATE = """---
title: {title}
subject: {subject}
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
{body}
"""

STARTER_ARTICLE = (
    f"{scaffold.ARTICLE_BODY}: **bold**, *italic*, [links](https://example.org), lists and\n\n> pull quotes."
)


def create_issue(config: Config, title: str, date: dt.date, *, subject: str = "", guide: bool = False) -> Path:
    """Write ``<issues_dir>/<date>-<slug of title>/`` and return it; ``guide``: the text explains itself
    (a new project's first issue) instead of standing in for the editor's. An existing folder is refused."""
    issues = config.resolve(config.issues_dir)
    if not title.strip():
        raise ContentError("the issue needs a title", fix='broadsheet new "Spring trade mission"')
    folder = issues / f"{date.isoformat()}-{slugify(title)}"
    if folder.exists():
        raise ContentError("the issue folder already exists", where=str(folder), fix="choose another title or date")
    if guide:
        preheader, intro = scaffold.GUIDE_PREHEADER, f"{scaffold.GUIDE_INTRO}\n\n{scaffold.GUIDE_INTRO_MORE}"
        article = ("01-how-an-article-is-written.md", scaffold.GUIDE_ARTICLE_TITLE,
                   f"{scaffold.GUIDE_ARTICLE_BODY}\n\n{scaffold.GUIDE_ARTICLE_MORE}")  # fmt: skip
    else:
        preheader, intro = scaffold.PREHEADER, scaffold.INTRO
        article = ("01-first-article.md", scaffold.ARTICLE_TITLE, STARTER_ARTICLE)
    issue_md = ISSUE_TEMPLATE.format(
        issue_id=new_issue_id(date), title=yaml_string(title), subject=yaml_string(subject or title),
        date=date.isoformat(), number=_next_number(issues), preheader=preheader, intro=intro,
    )  # fmt: skip
    try:
        (folder / "articles").mkdir(parents=True)
        (folder / "images").mkdir()
        (folder / "issue.md").write_text(issue_md, encoding="utf-8")
        (folder / "articles" / article[0]).write_text(
            ARTICLE_TEMPLATE.format(title=yaml_string(article[1]), body=article[2]), encoding="utf-8"
        )
    except OSError as exc:
        raise ContentError(
            f"cannot create the issue: {exc.strerror}",
            where=str(exc.filename or folder),
            fix=f"make {issues} a folder you can write to (issues_dir in broadsheet.toml)",
        ) from None
    return folder


def shown_path(path: Path, root: Path) -> str:
    """``path`` as the editor would type it from here (relative when it can be), quoted for the shell."""
    try:
        name = path.relative_to(Path.cwd())
    except ValueError:
        name = path.relative_to(root) if path.is_relative_to(root) else path
    return shell_word(str(name))


def shell_word(text: str) -> str:
    """``text`` quoted for the shell when it must be (spaces, quotes, globs), else as it is."""
    return shlex.quote(text) if re.search(r"""[\s'"\\$`!*?;&|<>(){}\[\]#~]""", text) else text


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


def yaml_string(text: str) -> str:
    """``text`` as a double-quoted YAML scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _next_number(issues: Path) -> int:
    numbers = [
        int(n) for path in issues.glob("*/issue.md") if (n := front_matter_value(path, "number")) and n.isdigit()
    ]
    return max(numbers, default=0) + 1
