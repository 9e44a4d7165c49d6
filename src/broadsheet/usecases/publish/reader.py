"""Reader: every non-draft issue under issues/ → an Entry, through content and render (one pipeline).

An issue whose ``send_at`` is still ahead is left out (with a note): it appears online once it is due to
be mailed, never before its subscribers get it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from pathlib import Path

from broadsheet.core.config import Config
from broadsheet.core.content import Issue, read_issue
from broadsheet.core.content.mergetags import with_defaults
from broadsheet.core.content.scaffold import starter_text_in
from broadsheet.core.errors import PublishError
from broadsheet.core.render import RenderedIssue, build_issue

from .model import Entry

SUMMARY_CHARACTERS = 240


def issue_folders(config: Config) -> list[Path]:
    """The folders under issues_dir holding an issue.md, in name order (hidden ones left out)."""
    root = config.resolve(config.issues_dir)
    return sorted(p.parent for p in root.glob("*/issue.md") if not p.parent.name.startswith((".", "_")))


def read_entries(config: Config, *, now: dt.datetime | None = None, notes: list[str] | None = None) -> list[Entry]:
    """The published issues, newest first (by date, then by number, then by folder name): not drafts, and not issues
    still holding the text `broadsheet new` or `init` wrote or scheduled after ``now`` (default: the current time),
    for which a line is added to ``notes``."""
    site_config = dataclasses.replace(config, base_url="")  # pages link their images relatively
    now = now or dt.datetime.now(dt.UTC)
    entries = []
    for folder in issue_folders(config):
        issue = read_issue(folder, site_config)
        if issue.draft:
            continue
        if leftovers := starter_text_in(folder):
            if notes is not None:
                first = leftovers[0]  # its path is inside the folder: starter_text_in looked there
                notes.append(
                    f"{folder.name} is left out: {first.what} is still the placeholder `{first.by}` wrote"
                    f" ({first.path.relative_to(folder.parent)}:{first.line}); write it, or mark it draft: true"
                )
            continue
        if issue.send_at is not None and issue.send_at > now:
            if notes is not None:
                notes.append(
                    f"{folder.name} is left out until its send_at, {issue.send_at:%Y-%m-%d %H:%M} UTC:"
                    " publish again once it is sent"
                )
            continue
        entries.append(_entry(issue, build_issue(folder, site_config, issue=issue)))
    return sorted(entries, key=_order, reverse=True)


def _order(entry: Entry) -> tuple[dt.date, tuple[int, int, str], str]:
    """Oldest first by date, then, on the same day, by issue number (9 before 10; a numbered issue after
    one without), then by folder name."""
    number = "" if entry.number is None else str(entry.number).strip()
    digits = len(number) - len(number.lstrip("0123456789"))
    value = (1, int(number[:digits]) if digits else 0, number[digits:]) if number else (0, 0, "")
    return entry.date, value, entry.slug


def _entry(issue: Issue, rendered: RenderedIssue) -> Entry:
    if issue.date is None:
        raise PublishError(
            "the issue has no date: the archive is in date order and the feed needs one",
            where=str(issue.folder / "issue.md"),
            fix="add date: YYYY-MM-DD, or draft: true to leave it out",
        )
    hero = next((a.image for a in issue.articles if a.image), None)
    return Entry(
        slug=issue.slug,
        title=issue.title,
        date=issue.date,
        number=issue.number,
        summary=summary(issue),
        hero=hero.src if hero else "",
        hero_alt=hero.alt if hero else "",
        page_html=rendered.web_html,
        content_html=content_html(issue),
        images=rendered.images,
    )


def summary(issue: Issue) -> str:
    """The issue's summary: its own, else the preheader, an article's summary, or the start of the intro."""
    for text in (getattr(issue, "summary", ""), issue.preheader, *(a.summary for a in issue.articles)):
        if text:
            return text
    intro = " ".join(with_defaults(issue.intro_text).split())
    return intro if len(intro) <= SUMMARY_CHARACTERS else intro[:SUMMARY_CHARACTERS].rsplit(" ", 1)[0] + " …"


def content_html(issue: Issue) -> str:
    """Intro and articles as one HTML fragment (the feed's full content), from content's sanitised HTML."""
    parts = [issue.intro_html]
    for article in issue.articles:
        parts.append(f"<h2>{html.escape(article.title)}</h2>")
        if article.author:
            parts.append(f"<p><em>{html.escape(article.author)}</em></p>")
        if article.image:
            parts.append(f'<p><img src="{html.escape(article.image.src)}" alt="{html.escape(article.image.alt)}"></p>')
        parts.append(article.body_html)
    return with_defaults("\n".join(parts))  # merge tags: the feed has no reader, so their defaults
