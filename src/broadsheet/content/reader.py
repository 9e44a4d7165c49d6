"""Issue folder → Issue model: front matter read and typed, Markdown rendered, images found."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import frontmatter
import yaml

from ..config import Config, read_utf8
from ..errors import ContentError
from .images import image_size, published_src
from .markdown import render_markdown
from .model import Article, Image, Issue
from .text import LinkRegistry, html_to_text

REMOTE_PREFIXES = ("http://", "https://", "data:", "cid:", "mailto:", "//")
ISSUE_KEYS = {"title", "subject", "preheader", "date", "number", "draft", "id"}
YAML_DATE = re.compile(r"^\s*[\w-]+\s*:\s*((\d{4})-(\d\d?)-(\d\d?)\b.*?)\s*$")  # an unquoted YAML timestamp
ARTICLE_KEYS = {"title", "author", "date", "summary", "image", "image_alt", "order", "tags", "draft"}


@dataclass
class _Document:
    path: Path
    text: str  # the whole file
    meta: dict[str, Any]
    body: str
    body_line: int  # line of the file where the body starts


@dataclass
class _ImageCollector:
    """Finds local images, checks they exist and gives each a unique name under images/."""

    base_url: str
    slug: str
    roots: tuple[Path, ...]  # the project and the issue folder: images come from inside them (images/ is published)
    images: dict[Path, Image] = field(default_factory=dict)

    def relocate(self, src: str, alt: str, document: _Document) -> tuple[str, int | None]:
        """The published src of ``src`` and, for a local file, its width in pixels."""
        if not src or src.startswith(REMOTE_PREFIXES):
            return src, None
        written = unquote(src.split("#")[0].split("?")[0])  # Markdown gives "my%20pic.png" for <my pic.png>
        path = (document.path.parent / written).resolve()
        if not path.is_file() or not any(path.is_relative_to(root) for root in self.roots):
            where = _where(document, written if written in document.text else src)
            if not path.is_file():
                raise ContentError(f"image not found: {written}", where=where, fix=f"add the file {path} or fix the path")
            raise ContentError(f"image outside the project: {written}", where=where,  # images/ is published
                               fix="copy it into the issue folder")
        if path not in self.images:
            name = self._unique_name(path.name)
            self.images[path] = Image(src=name, alt=alt, path=path)
        name = self.images[path].src
        size = image_size(path)
        return published_src(self.base_url, self.slug, name), size[0] if size else None

    def _unique_name(self, name: str) -> str:
        taken = {image.src for image in self.images.values()}
        stem, dot, suffix = name.rpartition(".")
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n}{dot}{suffix}" if dot else f"{name}-{n}"
        return candidate


def read_issue(folder: Path, config: Config) -> Issue:
    """Read ``folder`` (issue.md + articles/*.md) into an Issue. Drafts are left out with a note."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContentError("issue folder not found", where=str(folder), fix="give the path of a folder under issues/")
    issue_file = folder / "issue.md"
    if not issue_file.is_file():
        raise ContentError("issue.md is missing", where=str(folder), fix="create issue.md with a title in its front matter")
    document = _read_document(issue_file)
    meta = document.meta
    _check_keys(document, ISSUE_KEYS)
    slug = folder.resolve().name
    links = LinkRegistry()
    images = _ImageCollector(config.base_url, slug, (config.root.resolve(), folder.resolve()))
    notes: list[str] = []
    intro_html, intro_text = _render_body(document, images, links, notes)
    articles = _read_articles(folder, images, links, notes)
    title = _required_text(document, "title")
    return Issue(
        folder=folder,
        slug=slug,
        title=title,
        subject=_text(document, "subject") or title,
        preheader=_text(document, "preheader"),
        date=_date(document, "date"),
        number=_number(document),
        draft=bool(meta.get("draft", False)),
        intro_html=intro_html,
        intro_text=intro_text,
        articles=articles,
        images=tuple(images.images.values()),
        links=tuple(links.urls),
        notes=tuple(notes),
        id=_issue_id(document),
    )


def _read_articles(folder: Path, images: _ImageCollector, links: LinkRegistry, notes: list[str]) -> tuple[Article, ...]:
    paths = sorted(p for p in (folder / "articles").glob("*.md") if not p.name.startswith("."))  # editors' lock files
    documents = [_read_document(path) for path in paths]
    kept = []
    for document in documents:
        _check_keys(document, ARTICLE_KEYS)
        if document.meta.get("draft") is True:
            notes.append(f"{document.path}: draft, left out of the build")
        else:
            kept.append(document)
    kept.sort(key=lambda d: (_order(d) if _order(d) is not None else float("inf"), d.path.name))
    return tuple(_article(document, images, links, notes) for document in kept)


def _article(document: _Document, images: _ImageCollector, links: LinkRegistry, notes: list[str]) -> Article:
    title = _required_text(document, "title")
    hero = None
    if src := _text(document, "image"):
        alt = _text(document, "image_alt")
        hero = Image(src=images.relocate(src, alt, document)[0], alt=alt)
        if not alt:
            notes.append(f"{_where(document, 'image:')}: image without alt text (add image_alt)")
    body_html, body_text = _render_body(document, images, links, notes)
    return Article(
        source=document.path,
        slug=re.sub(r"^\d+[-_]", "", document.path.stem),
        title=title,
        body_html=body_html,
        body_text=body_text,
        author=_text(document, "author"),
        date=_date(document, "date"),
        summary=_text(document, "summary"),
        image=hero,
        tags=_tags(document),
        order=_order(document),
    )


def _render_body(document: _Document, images: _ImageCollector, links: LinkRegistry, notes: list[str]) -> tuple[str, str]:
    fragment = render_markdown(document.body, rewrite_src=lambda src: images.relocate(src, "", document))
    for removed in sorted(set(fragment.removed)):  # "<script>", "onclick= attribute", "javascript: href"
        where = _where(document, removed.split()[0].rstrip(">"), start=document.body_line)
        notes.append(f"{where}: removed {removed} (not allowed in email)")
    for src, alt in fragment.images:
        if not alt.strip():
            notes.append(f"{_where(document, src, start=document.body_line)}: image without alt text ({src})")
    return fragment.html, html_to_text(fragment.html, links)


def _read_document(path: Path) -> _Document:
    text = read_utf8(path, ContentError)
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)  # where the bad construct starts
        line = f":{mark.line + 1}" if mark is not None else ""  # the YAML starts on the --- line
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ContentError(
            f"malformed front matter: {problem}", where=f"{path}{line}", fix="fix the YAML between the --- lines"
        ) from None
    except ValueError:  # YAML read a timestamp that is no real date (2021-13-45)
        number, value = _impossible_date(text)
        raise ContentError(
            f"not a real date: {value}", where=f"{path}:{number}" if number else str(path), fix="write it as YYYY-MM-DD"
        ) from None
    if not post.metadata and not _front_matter_is_mapping(text):
        raise ContentError("front matter must be 'key: value' lines", where=f"{path}:2", fix="write e.g. title: My title")
    body_line = text[: len(text) - len(post.content)].count("\n") + 1 if post.content else 1
    return _Document(path=path, text=text, meta=post.metadata, body=post.content, body_line=body_line)


def _impossible_date(text: str) -> tuple[int, str]:
    """(line, value) of the first front-matter date-like value that is no calendar date; (0, '') if none."""
    for number, line in enumerate(text.splitlines(), 1):
        match = YAML_DATE.match(line)
        if match:
            try:
                dt.date(*map(int, match.group(2, 3, 4)))
            except ValueError:
                return number, match.group(1)
    return 0, ""


def _front_matter_is_mapping(text: str) -> bool:
    """python-frontmatter drops front matter that is a YAML list or a plain string; tell them apart."""
    handler = frontmatter.YAMLHandler()
    if not handler.detect(text):
        return True
    front, _ = handler.split(text)
    return isinstance(yaml.safe_load(front), (dict, type(None)))


def _check_keys(document: _Document, allowed: set[str]) -> None:
    for key in document.meta:
        if key not in allowed:
            raise ContentError(
                f"unknown front matter key '{key}'", where=_where(document, f"{key}:"),
                fix="allowed: " + ", ".join(sorted(allowed)),
            )  # fmt: skip


def _where(document: _Document, needle: str, start: int = 1) -> str:
    """``file:line`` of the first line from ``start`` on containing ``needle`` (the file alone if absent)."""
    for number, line in enumerate(document.text.splitlines(), 1):
        if needle and needle in line and number >= start:
            return f"{document.path}:{number}"
    return str(document.path)


def _text(document: _Document, key: str) -> str:
    value = document.meta.get(key)
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip()
    raise ContentError(f"'{key}' must be text", where=_where(document, f"{key}:"), fix=f"write {key}: some text")


def _required_text(document: _Document, key: str) -> str:
    value = _text(document, key)
    if not value:
        raise ContentError(f"missing {key}", where=f"{document.path}:1", fix=f"add '{key}: …' to the front matter")
    return value


def _date(document: _Document, key: str) -> dt.date | None:
    value = document.meta.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ContentError(
            f"'{key}' is not a date: {value!r}", where=_where(document, f"{key}:"), fix="write it as YYYY-MM-DD"
        ) from None


def _number(document: _Document) -> int | str | None:
    value = document.meta.get("number")
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    return _text(document, "number")


def _order(document: _Document) -> int | None:
    value = document.meta.get("order")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ContentError("'order' must be a whole number", where=_where(document, "order:"), fix="write order: 1")


def _tags(document: _Document) -> tuple[str, ...]:
    value = document.meta.get("tags")
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list):
        return tuple(str(t).strip() for t in value)
    raise ContentError("'tags' must be a list", where=_where(document, "tags:"), fix="write tags: [a, b]")


ISSUE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def _issue_id(document: _Document) -> str | None:
    """The issue's ``id``: text of letters, digits, '.', '_' or '-' (what ``broadsheet new`` writes)."""
    value = document.meta.get("id")
    if value is None:
        return None
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or not ISSUE_ID.fullmatch(text):
        raise ContentError(
            f"'id' must be a short text of letters, digits, '.', '_' or '-': {value!r}", where=_where(document, "id:"),
            fix='write id: "…" as broadsheet new does; keep it once a send has begun (it names the campaign)',
        )  # fmt: skip
    return text
