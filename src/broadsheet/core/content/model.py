"""The issue model: typed, immutable, knowing nothing of HTML templates or sending."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

WORDS_PER_MINUTE = 230


@dataclass(frozen=True)
class Image:
    """An image an article uses: ``src`` as written (for a local file: its name under images/), ``path``
    the local file, ``file`` its optimised copy that is published (content/optimise.py)."""

    src: str
    alt: str
    path: Path | None = None
    file: Path | None = None
    original_bytes: int = 0
    optimised_bytes: int = 0
    width: int = 0  # pixels as published (0 when unknown: a web address): the theme keeps their ratio
    height: int = 0


@dataclass(frozen=True)
class Article:
    source: Path
    slug: str
    title: str
    body_html: str  # Markdown rendered to sanitised HTML
    body_text: str  # the same content as readable plain text
    author: str = ""
    date: dt.date | None = None
    summary: str = ""
    image: Image | None = None
    tags: tuple[str, ...] = ()
    order: int | None = None


@dataclass(frozen=True)
class Issue:
    folder: Path
    slug: str
    title: str
    subject: str
    preheader: str = ""
    date: dt.date | None = None
    number: int | str | None = None
    draft: bool = False
    intro_html: str = ""
    intro_text: str = ""
    articles: tuple[Article, ...] = ()
    images: tuple[Image, ...] = ()  # every local image used, once; src is its name under images/
    links: tuple[str, ...] = ()  # the text part's numbered link references, in order
    notes: tuple[str, ...] = field(default=())  # warnings met while reading (drafts left out, …)
    id: str | None = None  # front-matter ``id``: the issue's identity for sending, kept across renames
    send_at: dt.datetime | None = None  # front-matter ``send_at`` (aware, UTC): when ``send --due`` sends it
    summary: str = ""  # front matter summary: the archive's, and the preheader when there is none
    greeting: str = ""  # plain text, merge tags as markers (content/mergetags.py); "" for none
    toc: bool = False  # a list of the articles at the top
    file: Path | None = None  # the step file of a sequence step (content/sequence.py); None for an issue

    @property
    def main_file(self) -> Path:
        """The Markdown file holding the front matter: issue.md, or the step file."""
        return self.file or self.folder / "issue.md"

    @property
    def reading_minutes(self) -> int:
        """Minutes to read the intro and the articles at 230 words a minute (at least 1)."""
        words = sum(len(text.split()) for text in (self.intro_text, *(a.body_text for a in self.articles)))
        return max(1, round(words / WORDS_PER_MINUTE))


@dataclass(frozen=True)
class Schedule:
    """What ``send --due`` needs of an issue, read from its front matter alone (no Markdown, no images)."""

    folder: Path
    id: str | None
    draft: bool
    send_at: dt.datetime | None  # aware, in UTC


@dataclass(frozen=True)
class Step:
    """One step of a sequence, from its front matter alone: what ``send --due`` and ``simulate`` need.

    ``after`` counts from the subscriber's entry for the first step, from the previous step after that."""

    sequence: str  # the folder's name under sequences/
    path: Path
    name: str  # the file name without .md, e.g. 01-hello
    after: dt.timedelta
    subject: str

    @property
    def key(self) -> str:
        """The step's campaign in the journal."""
        return f"seq:{self.sequence}:{self.name}"

    @property
    def slug(self) -> str:
        return f"{self.sequence}-{self.name}"
