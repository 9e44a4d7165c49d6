"""The personalised email HTML parsed once into what the rules look at: images, links, visible text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import lxml.html
from lxml.html import HtmlElement

from .colour import RGB, parse_colour

WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
_SKIP_TAGS = {"head", "style", "script", "title", "meta", "link", "noscript"}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Img:
    src: str
    alt: str | None  # None when the attribute is missing
    width: str | None
    height: str | None
    element: str  # a short description, e.g. '<img src="…">'


@dataclass(frozen=True)
class Link:
    href: str | None
    text: str  # visible text, whitespace collapsed ('' for an image-only link)
    element: str


@dataclass(frozen=True)
class TextRun:
    """Visible text directly inside one element, with the colours it is drawn in."""

    text: str
    colour: RGB
    background: RGB
    element: str


@dataclass
class EmailDocument:
    images: list[Img] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    runs: list[TextRun] = field(default_factory=list)

    @property
    def visible_text(self) -> str:
        return " ".join(run.text for run in self.runs)

    @property
    def words(self) -> int:
        return len(re.findall(r"\w+", self.visible_text))


def collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def shorten(text: str, limit: int = 60) -> str:
    text = collapse(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_email(html: str) -> EmailDocument:
    """Parse ``html`` (a whole document or a fragment) and collect images, links and text runs."""
    document = EmailDocument()
    if not html.strip():
        return document
    root = lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    _walk(root, WHITE, BLACK, document)
    return document


def _walk(element: HtmlElement, background: RGB, colour: RGB, out: EmailDocument) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _SKIP_TAGS or _hidden(element):
        return
    background = _background_of(element) or background
    colour = _colour_of(element) or colour
    if tag == "img":
        out.images.append(_img(element))
    elif tag == "a":
        out.links.append(Link(element.get("href"), collapse(element.text_content()), _describe(element)))
    own = collapse(" ".join([element.text or ""] + [child.tail or "" for child in element]))
    if own and tag:
        out.runs.append(TextRun(own, colour, background, _describe(element)))
    for child in element:
        _walk(child, background, colour, out)


def styles(element: HtmlElement) -> dict[str, str]:
    """The element's inline ``style`` as a mapping of lower-case property -> value (last wins)."""
    result: dict[str, str] = {}
    for declaration in (element.get("style") or "").split(";"):
        name, sep, value = declaration.partition(":")
        if sep:
            result[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return result


def _hidden(element: HtmlElement) -> bool:
    style = styles(element)
    if style.get("display") == "none" or style.get("visibility") == "hidden":
        return True
    if style.get("mso-hide") == "all" and style.get("max-height", "").startswith("0"):
        return True
    if style.get("opacity") in ("0", "0.0"):
        return True
    return element.get("hidden") is not None


def _background_of(element: HtmlElement) -> RGB | None:
    style = styles(element)
    for value in (style.get("background-color"), style.get("background"), element.get("bgcolor")):
        if value and (colour := parse_colour(value)):
            return colour
    return None


def _colour_of(element: HtmlElement) -> RGB | None:
    value = styles(element).get("color") or (element.get("color") if element.tag == "font" else None)
    return parse_colour(value) if value else None


def _img(element: HtmlElement) -> Img:
    width = element.get("width")
    return Img(
        src=(element.get("src") or "").strip(),
        alt=element.get("alt"),
        width=width.strip() if width is not None else None,
        height=element.get("height"),
        element=_describe(element),
    )


def _describe(element: HtmlElement) -> str:
    """A short, recognisable description of an element: its tag, its URL or its text."""
    tag = str(element.tag)
    if tag == "img":
        return f'<img src="{shorten(element.get("src") or "", 70)}">'
    if tag == "a":
        text = shorten(element.text_content(), 40)
        return f'<a href="{shorten(element.get("href") or "", 70)}">{text}</a>'
    return f'<{tag}> "{shorten(element.text_content(), 40)}"'
