"""The starter text `broadsheet new` writes, and the guide `broadsheet init` writes into a project's first
issue; lint refuses to let either be sent and publish leaves it out (usecases/new_issue.py, lint/rules.py,
publish/reader.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

PREHEADER = "One line that inboxes show after the subject."
INTRO = "A few words from the editor: what this issue is about and why it matters."
ARTICLE_TITLE = "First article"
ARTICLE_BODY = "Write the article here in Markdown"

# The first issue of a new project explains itself instead; each paragraph is one line, so lint finds it.
GUIDE_PREHEADER = "The line inboxes show after the subject: say what this issue brings."
GUIDE_INTRO = (
    "This is the introduction, the editor's few words above the articles. It lives in issue.md, below the "
    "front matter (the lines between the two `---`, which set the title, subject, preheader and date)."
)
GUIDE_INTRO_MORE = (
    "Each article is a Markdown file in articles/, in the order of their names (01-…, 02-…); images go in "
    "images/. `broadsheet preview` shows the issue as it is saved, and `broadsheet lint` lists what is left "
    "to do, this guide included, until it is replaced."
)
GUIDE_ARTICLE_TITLE = "How an article is written"
GUIDE_ARTICLE_BODY = (
    "This is an article: a Markdown file whose front matter gives its title, author and summary. Replace "
    "this text with yours, and add a file for each further article."
)
GUIDE_ARTICLE_MORE = (
    "Markdown gives **bold**, *italic*, [links](https://example.org), lists and quotes. An image is a file "
    "in the issue's images/ folder, shown with `![what it shows](../images/photo.jpg)`; an `image:` line in "
    "the front matter makes one the article's lead picture."
)

NEW = "broadsheet new"
INIT = "broadsheet init"

# (text as it stands on its line, what it is, the command that wrote it) — what lint looks for in the
# issue's Markdown
STARTER_TEXTS = (
    (f'preheader: "{PREHEADER}"', "the preheader", NEW),
    (INTRO, "the introduction", NEW),
    (f'title: "{ARTICLE_TITLE}"', "an article title", NEW),
    (ARTICLE_BODY, "an article's text", NEW),
    (f'preheader: "{GUIDE_PREHEADER}"', "the preheader", INIT),
    (GUIDE_INTRO, "the introduction", INIT),
    (f'title: "{GUIDE_ARTICLE_TITLE}"', "an article title", INIT),
    (GUIDE_ARTICLE_BODY, "an article's text", INIT),
)


class StarterText(NamedTuple):
    """Starter text left in an issue: where, and what it stands for."""

    path: Path
    line: int
    what: str
    by: str  # the command that wrote it


def find_starter_text(files: Iterable[tuple[Path, Sequence[str]]]) -> Iterator[StarterText]:
    """The starter text in ``files`` (Markdown files as (path, lines)), in STARTER_TEXTS' order."""
    files = [(path, lines) for path, lines in files if path.suffix == ".md"]
    for needle, what, by in STARTER_TEXTS:
        for path, lines in files:
            for number, line in enumerate(lines, 1):
                if needle in line:
                    yield StarterText(path, number, what, by)


def starter_text_in(folder: Path) -> list[StarterText]:
    """The starter text in an issue folder's issue.md and articles/*.md."""
    paths = [folder / "issue.md", *sorted((folder / "articles").glob("*.md"))]
    files = []
    for path in paths:
        try:
            files.append((path, path.read_text(encoding="utf-8", errors="replace").splitlines()))
        except OSError:  # unreadable: reading the issue says so
            continue
    return list(find_starter_text(files))
