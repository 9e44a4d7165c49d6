"""Issue folder → Issue model: front matter read and typed, Markdown rendered, images found."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..config import Config, read_utf8
from ..errors import ContentError
from .frontmatter import FrontMatterError, split_front_matter
from .images import ImageProblem, check_local_image, published_src, unique_name
from .markdown import MAX_DEPTH, render_markdown
from .mergetags import to_markers
from .model import Article, Image, Issue, Schedule
from .optimise import CACHE_FOLDER, COLUMN_WIDTH, max_width_for, optimise
from .text import LinkRegistry, html_to_text

REMOTE_PREFIXES = ("http://", "https://", "data:", "cid:", "mailto:", "//")
ISSUE_KEYS = {"title", "subject", "preheader", "date", "number", "draft", "id", "send_at", "greeting", "summary", "toc"}
DEFAULT_GREETING = 'Dear {{ subscriber.first_name | default("reader") }},'  # greeting: "" for none
ARTICLE_KEYS = {"title", "author", "date", "summary", "image", "image_alt", "order", "tags", "draft"}
ONE_LINE_KEYS = {
    "title",
    "subject",
    "preheader",
    "author",
    "image",
    "image_alt",
    "number",
    "greeting",
}  # headers, alt text, …
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0/C1 controls but tab and line feed


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
    cache: Path  # where optimised images are kept between builds
    images: dict[Path, Image] = field(default_factory=dict)

    def relocate(self, src: str, alt: str, document: _Document) -> tuple[str, tuple[int, int] | None]:
        """The published src of ``src`` and, for a local file, its (width, height) in pixels as published."""
        if not src or src.startswith(REMOTE_PREFIXES):
            return src, None
        written = unquote(src.split("#")[0].split("?")[0])  # Markdown gives "my%20pic.png" for <my pic.png>
        path = (document.path.parent / written).resolve()
        if path not in self.images:
            try:
                width, height = check_local_image(path, self.roots)
                ready = optimise(path, max_width=max_width_for(COLUMN_WIDTH), cache=self.cache)
            except ImageProblem as exc:
                where = _where(document, written if written in document.text else src)
                raise ContentError(f"image {exc.problem}: {written}", where=where, fix=exc.fix) from None
            name = unique_name(ready.name, {image.src for image in self.images.values()})
            self.images[path] = Image(
                src=name,
                alt=alt,
                path=path,
                file=ready.file,
                original_bytes=ready.original_bytes,
                optimised_bytes=ready.optimised_bytes,
                width=ready.width,
                height=max(1, round(ready.width * height / width)),
            )
        image = self.images[path]
        return published_src(self.base_url, self.slug, image.src), (image.width, image.height)


def read_issue(folder: Path, config: Config) -> Issue:
    """Read ``folder`` (issue.md + articles/*.md) into an Issue. Drafts are left out with a note."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContentError("issue folder not found", where=str(folder), fix="give the path of a folder under issues/")
    issue_file = folder / "issue.md"
    if not issue_file.exists():  # a device or a link elsewhere is refused when read, with its reason
        raise ContentError(
            "issue.md is missing", where=str(folder), fix="create issue.md with a title in its front matter"
        )
    roots = (config.root.resolve(), folder.resolve())  # what the issue may read and publish
    document = _read_document(issue_file, roots)
    _check_keys(document, ISSUE_KEYS)
    slug = folder.resolve().name
    links = LinkRegistry()
    images = _ImageCollector(config.base_url, slug, roots, config.root / CACHE_FOLDER)
    notes: list[str] = []
    intro_html, intro_text = _render_body(document, images, links, notes, top_heading=2)  # below the issue's h1
    articles = _read_articles(folder, roots, images, links, notes)
    title = _required_text(document, "title")
    summary = _text(document, "summary")
    return Issue(
        folder=folder,
        slug=slug,
        title=title,
        subject=_text(document, "subject") or title,
        preheader=_text(document, "preheader") or " ".join(summary.split()),
        summary=summary,
        greeting=to_markers(_text(document, "greeting") if "greeting" in document.meta else DEFAULT_GREETING),
        toc=_bool(document, "toc"),
        date=_date(document, "date"),
        number=_number(document),
        draft=_bool(document, "draft"),
        intro_html=intro_html,
        intro_text=intro_text,
        articles=articles,
        images=tuple(images.images.values()),
        links=tuple(links.urls),
        notes=tuple(notes),
        id=_issue_id(document),
        send_at=_send_at(document),
    )


def read_schedule(folder: Path, config: Config) -> Schedule:
    """The issue's id, draft flag and ``send_at`` from issue.md's front matter only: cheap enough to
    look at every issue folder each minute (``send --due``). Errors name file:line, as read_issue's."""
    folder = Path(folder)
    issue_file = folder / "issue.md"
    if not issue_file.exists():
        raise ContentError(
            "issue.md is missing", where=str(folder), fix="create issue.md with a title in its front matter"
        )
    document = _read_document(issue_file, (config.root.resolve(), folder.resolve()))
    _check_keys(document, ISSUE_KEYS)
    return Schedule(folder=folder, id=_issue_id(document), draft=_bool(document, "draft"), send_at=_send_at(document))


def _read_articles(
    folder: Path, roots: tuple[Path, ...], images: _ImageCollector, links: LinkRegistry, notes: list[str]
) -> tuple[Article, ...]:
    paths = sorted(p for p in (folder / "articles").glob("*.md") if not p.name.startswith("."))  # editors' lock files
    documents = [_read_document(path, roots) for path in paths]
    kept = []
    for document in documents:
        _check_keys(document, ARTICLE_KEYS)
        if _bool(document, "draft"):
            notes.append(f"{document.path}: draft, left out of the build")
        else:
            kept.append(document)
    kept.sort(key=lambda d: (_order(d) if _order(d) is not None else float("inf"), d.path.name))
    return tuple(_article(document, images, links, notes) for document in kept)


def _article(document: _Document, images: _ImageCollector, links: LinkRegistry, notes: list[str]) -> Article:
    title = _required_text(document, "title")
    hero = None
    if src := _text(document, "image"):
        if re.match(r"[A-Za-z][\w+.-]+:", src) and not src.lower().startswith(("https://", "http://")):
            raise ContentError(
                f"'image' must be a file or a web address, not {src[:40]!r}",  # javascript:, data:
                where=_where(document, "image:"),
                fix="write image: ../images/hero.png or an https:// URL",
            )
        alt = _text(document, "image_alt")
        published, size = images.relocate(src, alt, document)
        hero = Image(src=published, alt=alt, width=size[0] if size else 0, height=size[1] if size else 0)
        if not alt:
            notes.append(f"{_where(document, 'image:')}: image without alt text (add image_alt)")
    body_html, body_text = _render_body(document, images, links, notes, top_heading=3)  # below the article's h2
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


def _render_body(
    document: _Document, images: _ImageCollector, links: LinkRegistry, notes: list[str], *, top_heading: int
) -> tuple[str, str]:
    fragment = render_markdown(
        document.body, rewrite_src=lambda src: images.relocate(src, "", document), top_heading=top_heading
    )
    if fragment.too_deep and fragment.deep_line is not None:
        raise ContentError(
            f"lists or quotes nested more than {MAX_DEPTH} deep",
            where=f"{document.path}:{document.body_line + fragment.deep_line}",
            fix="nest them less",
        )
    if fragment.too_deep:  # lxml (premailer, lint) would silently drop all that follows: the footer too
        raise ContentError(
            f"HTML nested more than {MAX_DEPTH} elements deep",
            where=_deep_line(document),
            fix="close the HTML tags you opened, or nest them less",
        )
    for removed in sorted(set(fragment.removed)):  # "<script>", "onclick= attribute", "javascript: href"
        where = _where(document, removed.split()[0].rstrip(">"), start=document.body_line)
        notes.append(f"{where}: removed {removed} (not allowed in email)")
    for src, alt in fragment.images:
        if not alt.strip():
            notes.append(f"{_where(document, src, start=document.body_line)}: image without alt text ({src})")
    return fragment.html, html_to_text(fragment.html, links)


def _read_document(path: Path, roots: tuple[Path, ...]) -> _Document:
    resolved = path.resolve()
    if not any(resolved.is_relative_to(root) for root in roots):  # a symbolic link to a file elsewhere
        raise ContentError(
            f"leads outside the project, to {resolved}",
            where=str(path),
            fix="copy the file into the issue folder instead of linking to it",
        )
    text = read_utf8(path, ContentError)
    if control := CONTROL.search(text.replace("\r", "")):  # invisible in editors; MJML refuses some
        line = text[: control.start()].count("\n") + 1
        raise ContentError(
            f"the control character U+{ord(control.group()):04X} is in the text",
            where=f"{path}:{line}",
            fix="delete it; most editors do not show it",
        )
    try:
        parts = split_front_matter(text)
    except FrontMatterError as exc:
        raise ContentError(exc.message, where=f"{path}:{exc.line}", fix=exc.fix) from None
    return _Document(path=path, text=text, meta=parts.meta, body=parts.body, body_line=parts.body_line)


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
        return _clean(document, key, str(value).strip())
    raise ContentError(f"'{key}' must be text", where=_where(document, f"{key}:"), fix=f"write {key}: some text")


def _clean(document: _Document, key: str, value: str) -> str:
    """``value`` when it holds no control characters (nor line breaks, for one-line keys)."""
    bad = CONTROL.search(value) or (re.search(r"[\n\u2028\u2029]", value) if key in ONE_LINE_KEYS else None)
    if bad:
        what = "a line break" if bad.group() in "\n\u2028\u2029" else f"the control character U+{ord(bad.group()):04X}"
        raise ContentError(
            f"'{key}' holds {what}", where=_where(document, f"{key}:"), fix=f"write {key} as one line of plain text"
        )
    return value


def _bool(document: _Document, key: str) -> bool:
    value = document.meta.get(key, False)
    if not isinstance(value, bool):  # draft: "no" is a string, and any string is true
        raise ContentError(
            f"'{key}' must be true or false, not {value!r}",
            where=_where(document, f"{key}:"),
            fix=f"write {key}: true or {key}: false, without quotes",
        )
    return value


def _deep_line(document: _Document) -> str:
    """``file:line`` where the Markdown's own HTML tags first nest deeper than MAX_DEPTH (the body if unsure)."""
    depth = 0
    for number, line in enumerate(document.body.splitlines(), document.body_line):
        for closing, name, empty in re.findall(r"<(/?)([A-Za-z][\w-]*)[^>]*?(/?)>", line):
            depth += -1 if closing else 0 if empty or name.lower() in VOID_ELEMENTS else 1
            if depth > MAX_DEPTH:
                return f"{document.path}:{number}"
    return f"{document.path}:{document.body_line}"


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


SEND_AT_FIX = "write send_at: 2026-12-03 09:00:00+01:00 (date, time and UTC offset; without an offset it is UTC)"
SEND_AT_RANGE = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC))


def _send_at(document: _Document) -> dt.datetime | None:
    """``send_at``: a date and time, in UTC. With an offset (+01:00, Z) it is that moment; without one it
    is read as UTC (never the machine's zone, which cron and a laptop may not share)."""
    value = document.meta.get("send_at")
    if value is None or value == "":
        return None
    where = _where(document, "send_at:")
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(re.sub(r"\s+([+-]\d\d(:?\d\d)?|Z)$", r"\1", value.strip()))
        except ValueError:
            raise ContentError(f"'send_at' is not a date and time: {value!r}", where=where, fix=SEND_AT_FIX) from None
    if not isinstance(value, dt.datetime):  # a date alone: which hour was meant is a guess
        raise ContentError(f"'send_at' needs a time of day, not only {value}", where=where, fix=SEND_AT_FIX)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:  # a moment past 9999 or before year 1 in UTC cannot be held: every command would fail on it
        moment = value.astimezone(dt.UTC)
    except OverflowError:
        moment = None
    if moment is None or not SEND_AT_RANGE[0] <= moment <= SEND_AT_RANGE[1]:
        raise ContentError(
            f"'send_at' is out of range: {document.meta['send_at']}",
            where=where,
            fix="give a moment between 1970-01-01 and 9999-12-31 23:59:59 UTC",
        )
    return moment


def _number(document: _Document) -> int | str | None:
    value = document.meta.get("number")
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
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
    if isinstance(value, list) and all(isinstance(t, (str, int, float)) and not isinstance(t, bool) for t in value):
        return tuple(_clean(document, "tags", str(t).strip()) for t in value)
    if isinstance(value, str):
        return tuple(t.strip() for t in _clean(document, "tags", value).split(",") if t.strip())
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
