"""The starter text `broadsheet new` writes; lint refuses to let it be sent and publish leaves it out
(commands/new.py, lint/rules.py, publish/reader.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

PREHEADER = "One line that inboxes show after the subject."
INTRO = "A few words from the editor: what this issue is about and why it matters."
ARTICLE_TITLE = "First article"
ARTICLE_BODY = "Write the article here in Markdown"

# (text as it stands on its line, what it is) — what lint looks for in the Markdown
STARTER_TEXTS = (
    (f'preheader: "{PREHEADER}"', "the preheader"),
    (INTRO, "the introduction"),
    (f'title: "{ARTICLE_TITLE}"', "an article title"),
    (ARTICLE_BODY, "an article's text"),
)


class StarterText(NamedTuple):
    """Starter text left in an issue: where, and what it stands for."""

    path: Path
    line: int
    what: str


def find_starter_text(files: Iterable[tuple[Path, Sequence[str]]]) -> Iterator[StarterText]:
    """The starter text in ``files`` (Markdown files as (path, lines)), in STARTER_TEXTS' order."""
    files = [(path, lines) for path, lines in files if path.suffix == ".md"]
    for needle, what in STARTER_TEXTS:
        for path, lines in files:
            for number, line in enumerate(lines, 1):
                if needle in line:
                    yield StarterText(path, number, what)


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
