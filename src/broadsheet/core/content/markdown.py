"""Markdown → sanitised, email-ready HTML fragments."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any

import lxml.html
from lxml.html import HtmlElement
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.attrs import attrs_plugin
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.footnote import footnote_plugin

from .components import CONTAINERS, shape_components
from .mergetags import merge_tag_plugin

# Elements that never belong in an email: removed with everything inside them.
FORBIDDEN_ELEMENTS = (
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input", "button",
    "select", "textarea", "style", "link", "meta", "base", "svg", "math",
)  # fmt: skip
# Attributes holding a URL, where a javascript: (or vbscript:, data:text) address would run.
URL_ATTRIBUTES = {"href", "src", "srcset", "action", "formaction", "background", "poster", "data", "xlink:href"}
MAX_DEPTH = 100  # elements nested in content; libxml2 (lxml) silently stops reading at 256, theme included


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    """CommonMark with tables, strikethrough, footnotes, attributes, smart quotes, bare URLs linked
    (linkify-it-py), merge tags (content/mergetags.py) and ``::: callout`` / ``figure`` / ``pair`` blocks."""
    # maxNesting: commonmark's 20 silently dropped what a list 10 deep held; deeper than MAX_DEPTH is refused
    parser = MarkdownIt("commonmark", {"typographer": True, "html": True, "linkify": True, "maxNesting": MAX_DEPTH})
    parser.enable(["table", "strikethrough", "replacements", "smartquotes", "linkify"])
    assert parser.linkify is not None  # made by the "linkify" option (linkify-it-py is a dependency)
    parser.linkify.set({"fuzzy_link": False})  # only addresses with a scheme: "readme.md" is no Moldovan site
    parser.use(footnote_plugin).use(attrs_plugin).use(merge_tag_plugin)
    for name in CONTAINERS:
        parser.use(container_plugin, name)
    return parser


@dataclass
class Fragment:
    """Sanitised HTML of one Markdown document and what was noticed on the way."""

    html: str
    removed: list[str] = field(default_factory=list)  # what the sanitiser took out
    images: list[tuple[str, str]] = field(default_factory=list)  # (src, alt) as written
    too_deep: bool = False  # nested deeper than MAX_DEPTH: html is empty, the caller reports it
    deep_line: int | None = None  # when the Markdown itself (lists, quotes) nests too deep: its line, from 0


CONTENT_WIDTH = 536  # px: the theme's 600 px column less its side padding
PHONE_CONTENT_WIDTH = 288  # px: what the theme's column shows on a 320 px screen (16 px padding each side)

# Given an image's src as written: its published src, and its (width, height) in pixels when known.
ImageRewriter = Callable[[str], tuple[str, "tuple[int, int] | None"]]


def render_markdown(text: str, *, rewrite_src: ImageRewriter | None = None, top_heading: int = 1) -> Fragment:
    """Render Markdown, strip unsafe HTML, and let ``rewrite_src`` relocate image sources. The document's
    highest heading becomes ``h{top_heading}`` and the others keep their distance to it (at most h6)."""
    markdown = markdown_parser()
    env: dict[str, Any] = {}
    tokens = markdown.parse(text, env)
    deep = _cut_at(tokens)
    if deep is not None:  # markdown-it drops what lies deeper than maxNesting without a word
        return Fragment(html="", too_deep=True, deep_line=deep.map[0] if deep.map else None)
    html = markdown.renderer.render(tokens, markdown.options, env)
    if not html.strip():
        return Fragment(html="")
    parser = lxml.html.HTMLParser(huge_tree=True)  # reads past 256 levels, so that the depth can be measured
    root = lxml.html.fragment_fromstring(html, create_parent="div", parser=parser)
    if _depth(root) > MAX_DEPTH:
        return Fragment(html="", too_deep=True)
    fragment = Fragment(html="")
    _sanitise(root, fragment)
    _prepare_for_email(root, fragment, rewrite_src)
    shape_components(root)
    _shift_headings(root, top_heading)
    fragment.html = "".join(_serialise(child) for child in root) if len(root) else (root.text or "")
    if root.text and len(root):
        fragment.html = _escape_text(root.text) + fragment.html
    return fragment


def _cut_at(tokens: list[Token]) -> Token | None:
    """The block at the deepest level markdown-it reads, if its content would be blocks (and so dropped)."""
    for token, following in pairwise(tokens):
        if token.nesting == 1 and token.level >= MAX_DEPTH - 1 and following.type != "inline":
            return token
    return None


def _depth(root: HtmlElement) -> int:
    """How deeply elements nest below ``root`` (iteratively: no recursion limit to meet)."""
    deepest, stack = 0, [(root, 0)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element)
    return deepest


def _sanitise(root: HtmlElement, fragment: Fragment) -> None:
    for element in list(root.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions
            if element is not root and element.getparent() is not None:
                element.drop_tree()
            continue
        tag = element.tag.lower()
        if tag in FORBIDDEN_ELEMENTS:
            fragment.removed.append(f"<{tag}>")
            element.drop_tree()
            continue
        for name in list(element.attrib):
            value = element.attrib[name].strip().lower()
            if name.lower().startswith("on"):
                fragment.removed.append(f"{name}= attribute")
                del element.attrib[name]
            elif name.lower() in URL_ATTRIBUTES and value.startswith(("javascript:", "vbscript:", "data:text")):
                fragment.removed.append(f"{value.split(':')[0]}: {name}")
                del element.attrib[name]
                if tag == "a" and name.lower() == "href":  # a link to nowhere would still look like one
                    element.drop_tag()
                    break


def _prepare_for_email(root: HtmlElement, fragment: Fragment, rewrite_src: ImageRewriter | None) -> None:
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue
        if element.tag == "img":
            src = element.get("src", "")
            alt = element.get("alt", "")
            fragment.images.append((src, alt))
            size = None
            if rewrite_src:
                new_src, size = rewrite_src(src)
                element.set("src", new_src)
            _size_image(element, size)
            element.set("alt", alt)
            element.set("class", (element.get("class", "") + " content-image").strip())
        elif element.tag == "a" and "footnote-backref" in element.get("class", ""):
            element.drop_tree()
        elif element.tag == "a" and _in_footnote_ref(element):  # Gmail and Outlook follow no in-page anchor
            element.text = FOOTNOTE_REPEAT.sub("]", element.text or "")
            element.drop_tag()
        elif element.tag == "li" and "footnote-item" in element.get("class", ""):
            element.attrib.pop("id", None)
        elif element.tag == "li" and not len(element) and not element.text:
            element.text = ""  # else lxml writes an empty item as "<li>" alone, which MRML cannot read
        elif element.tag == "section":
            element.tag = "div"
        elif element.tag == "table":
            element.set("class", (element.get("class", "") + " content-table").strip())
            scroll = _wrap(element, "table-scroll")  # a wide table scrolls on a phone instead of breaking words
            scroll.set("tabindex", "0")  # a box that scrolls is reached with the keyboard too (WCAG 2.1.1)
            if label := ", ".join(filter(None, (" ".join(th.text_content().split()) for th in element.iter("th")))):
                scroll.set("role", "region")  # named by its column headings, in the issue's own language
                scroll.set("aria-label", _shorten(label, 80))
        elif element.tag == "blockquote":
            element.set("class", (element.get("class", "") + " pull-quote").strip())
            _mark_attribution(element)


def _size_image(element: HtmlElement, size: tuple[int, int] | None) -> None:
    """Width and height attributes at most the column wide, in the picture's own ratio (the space is kept while it
    loads, and when it does not), and a fluid width: it shrinks with a phone's screen, never past its own size."""
    written = element.get("width", "").strip().removesuffix("px")
    written_height = element.get("height", "").strip().removesuffix("px")
    width = int(written) if written.isdigit() and int(written) else size[0] if size else None
    if size and size[0] and size[1]:
        ratio = size[1] / size[0]
    elif written.isdigit() and int(written) and written_height.isdigit():
        ratio = int(written_height) / int(written)
    else:
        ratio = None
    for name in ("width", "height"):
        element.attrib.pop(name, None)
    if width is None:
        element.set("style", _style(element, "max-width:100%;height:auto"))
        return
    width = min(width, CONTENT_WIDTH)  # Outlook ignores max-width: the attribute is what it shows
    element.set("width", str(width))
    if ratio is not None:
        element.set("height", str(max(1, round(width * ratio))))
    element.set("style", _style(element, f"width:100%;max-width:{width}px;height:auto"))


def _style(element: HtmlElement, fit: str) -> str:
    """``fit`` after the element's own inline style (a declaration written later wins)."""
    own = element.get("style", "").strip().rstrip(";")
    return f"{own};{fit}" if own else fit


def _shift_headings(root: HtmlElement, top: int) -> None:
    """Move every heading so that the highest becomes ``h{top}``, keeping the steps between them (h6 at most)."""
    levels = {e: int(e.tag[1]) for e in root.iter() if isinstance(e.tag, str) and HEADING.fullmatch(e.tag)}
    if not levels:
        return
    shift = top - min(levels.values())
    for element, level in levels.items():
        element.tag = f"h{min(6, max(1, level + shift))}"


HEADING = re.compile(r"h[1-6]")
FOOTNOTE_REPEAT = re.compile(r":\d+\]$")  # markdown-it numbers a second reference to note 1 "[1:1]"
ATTRIBUTION = ("—", "–", "--", "~")  # a pull quote's last paragraph starting so names who said it


def _in_footnote_ref(element: HtmlElement) -> bool:
    parent = element.getparent()
    return parent is not None and parent.tag == "sup" and "footnote-ref" in parent.get("class", "")


def _wrap(element: HtmlElement, css_class: str) -> HtmlElement:
    """Put ``element`` inside a new ``<div class=css_class>`` where it stands; the new element."""
    wrapper = element.makeelement("div", {"class": css_class})
    element.addprevious(wrapper)
    wrapper.tail, element.tail = element.tail, None
    wrapper.append(element)
    return wrapper


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mark_attribution(quote: HtmlElement) -> None:
    """The last paragraph of a pull quote that starts with a dash is its attribution, styled apart."""
    paragraphs = [child for child in quote if child.tag == "p"]
    if len(paragraphs) > 1 and paragraphs[-1].text_content().lstrip().startswith(ATTRIBUTION):
        last = paragraphs[-1]
        last.set("class", (last.get("class", "") + " quote-attribution").strip())


def _serialise(element: HtmlElement) -> str:
    return lxml.html.tostring(element, encoding="unicode", method="html")


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
