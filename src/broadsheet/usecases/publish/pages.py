"""Generators for the HTML: the index, and each issue's page (its browser version, with the archive's links)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import escape

from broadsheet.core.render.theme import long_date

from .model import INDEX, Entry, Site

TEMPLATES = Path(__file__).parent / "templates"
HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
TITLE = re.compile(r"<title>.*?</title>", re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )  # fmt: skip
    environment.filters["longdate"] = long_date
    return environment


def _render(name: str, **context: object) -> str:
    return _environment().get_template(name).render(index=INDEX, **context)


def index_page(entries: list[Entry], site: Site) -> str:
    """The archive's front page: every issue, newest first."""
    description = f"Every issue of {site.name}."
    head = dict(
        kind="website", title=site.name, description=description, url=site.absolute(), image=site.logo_url(), root=""
    )
    return _render("index.html.j2", site=site, entries=entries, **head)


def issue_page(entry: Entry, site: Site, *, older: Entry | None, newer: Entry | None) -> str:
    """The issue's browser version with the archive's head tags, a bar to the index and links to its neighbours."""
    title = f"{entry.title} · {site.name}"
    head = _render(
        "head.html.j2",
        site=site,
        kind="article",
        title=title,
        description=entry.summary,
        url=site.page_url(entry),
        image=site.image_url(entry),
        root="../",
    )
    top = _render("page_top.html.j2", site=site)
    bottom = _render("page_bottom.html.j2", site=site, older=older, newer=newer)
    page = TITLE.sub(lambda _: f"<title>{escape(title)}</title>", entry.page_html, count=1)
    page = HEAD_END.sub(lambda m: head + m.group(0), page, count=1)
    page = BODY_START.sub(lambda m: m.group(0) + top, page, count=1)
    return _insert_before_last(BODY_END, page, bottom)


def _insert_before_last(pattern: re.Pattern[str], text: str, insert: str) -> str:
    matches = list(pattern.finditer(text))
    if not matches:
        return text + insert
    at = matches[-1].start()
    return text[:at] + insert + text[at:]
