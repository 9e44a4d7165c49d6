"""HTML fragments → readable plain text: headings marked, lists kept, links as numbered references."""

from __future__ import annotations

import re
import textwrap

import lxml.html
from lxml.html import HtmlElement

WIDTH = 78
MIN_WIDTH = 20  # what deep nesting leaves to a line's text at least (textwrap refuses a width below 1)
HARD_BREAK = "\u2028"  # a <br>, kept through white-space folding
BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "pre", "table", "hr", "figure"}


class LinkRegistry:
    """Numbers the links of one issue in reading order; the same URL keeps its number."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1

    def references(self) -> str:
        """The numbered list printed at the end of the text part."""
        return "\n".join(f"[{n}] {url}" for n, url in enumerate(self.urls, 1))


def html_to_text(html: str, links: LinkRegistry, width: int = WIDTH) -> str:
    """Plain text of an HTML fragment, wrapped at ``width`` columns."""
    if not html.strip():
        return ""
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    return "\n\n".join(b for b in _blocks(root, links, width) if b.strip())


def wrap(text: str, width: int = WIDTH, prefix: str = "", indent: str = "") -> str:
    """Wrap a paragraph without breaking URLs or words; explicit line breaks are kept."""
    return "\n".join(
        textwrap.fill(
            line,
            width=max(width, MIN_WIDTH),
            initial_indent=prefix,
            subsequent_indent=indent or " " * len(prefix),
            break_long_words=False,
            break_on_hyphens=False,
        )
        for line in text.split(HARD_BREAK)
    )


def _blocks(element: HtmlElement, links: LinkRegistry, width: int) -> list[str]:
    """Block-level children as text blocks; loose inline content becomes a paragraph."""
    blocks: list[str] = []
    loose: list[str] = [element.text or ""]
    for child in element:
        if not isinstance(child.tag, str):
            loose.append(child.tail or "")
            continue
        if child.tag in BLOCKS:
            blocks.append(wrap(_squash("".join(loose)), width))
            loose = []
            blocks.append(_block(child, links, width))
        else:
            loose.append(_inline(child, links))
        loose.append(child.tail or "")
    blocks.append(wrap(_squash("".join(loose)), width))
    return [b for b in blocks if b.strip()]


def _block(element: HtmlElement, links: LinkRegistry, width: int) -> str:
    tag = element.tag
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        title = wrap(_squash(_inline(element, links)), width)
        rule = "-" if tag in ("h1", "h2", "h3") else "~"  # an article's sections are h3 (its title is h2)
        return f"{title}\n{rule * min(max(map(len, title.splitlines()), default=0), width)}"
    if tag in ("ul", "ol"):
        return _list(element, links, width)
    if tag == "blockquote":
        inner = "\n\n".join(_blocks(element, links, width - 2))
        return "\n".join(("> " + line).rstrip() for line in inner.splitlines())
    if tag == "pre":
        return "\n".join("    " + line for line in element.text_content().rstrip("\n").splitlines())
    if tag == "hr":
        return "-" * 20
    if tag == "table" and "callout" in element.get("class", ""):
        return "\n\n".join(block for cell in element.iter("td") for block in _blocks(cell, links, width))
    if tag == "table":
        return _table(element, links, width)
    if tag == "div" and "button-row" in element.get("class", ""):
        return _button(element, width)
    if tag in ("div", "figure"):
        return "\n\n".join(_blocks(element, links, width))
    return wrap(_squash(_inline(element, links)), width)


def _button(row: HtmlElement, width: int) -> str:
    """A button as "Label: URL", the address whole on its line: a reader of the text part has nothing to press."""
    link = next(row.iter("a"), None)
    if link is None:
        return ""
    label = _squash(link.text_content())
    return wrap(f"{label}:", width) + " " + link.get("href", "").strip()


def _list(element: HtmlElement, links: LinkRegistry, width: int) -> str:
    ordered = element.tag == "ol"
    footnotes = "footnotes-list" in element.get("class", "")  # numbered apart from the link references
    start = int(element.get("start", "1") or 1)
    items = [li for li in element if isinstance(li.tag, str) and li.tag == "li"]
    lines = []
    for number, item in enumerate(items, start):
        marker = f"[^{number}]: " if footnotes else f"{number}. " if ordered else "- "
        inner = _blocks(item, links, width - len(marker))
        text = "\n".join(inner)
        first, *rest = text.splitlines() or [""]
        lines.append(marker + first)
        lines.extend((" " * len(marker) + line) if line else "" for line in rest)
    return "\n".join(lines)


def _table(element: HtmlElement, links: LinkRegistry, width: int) -> str:
    """One line per row, cells joined by ' | '; a row too long for ``width`` wraps, indented."""
    rows = []
    for row in element.iter("tr"):
        cells = [_squash(_inline(cell, links)) for cell in row if isinstance(cell.tag, str)]
        rows.append(wrap(" | ".join(cells), width, indent="  "))
    return "\n".join(rows)


def _inline(element: HtmlElement, links: LinkRegistry) -> str:
    """The text of an inline element and its children, links numbered."""
    if not isinstance(element.tag, str):  # a comment (Outlook's conditional markup) shows nothing
        return ""
    tag = element.tag
    if tag == "br":
        return HARD_BREAK
    if tag == "img":
        alt = element.get("alt", "").strip()
        return f"[{alt}]" if alt else ""
    if tag == "sup" and "footnote-ref" in element.get("class", ""):
        return "[^" + element.text_content().strip("[] ") + "]"  # not [1]: that is a link reference
    parts = [element.text or ""]
    for child in element:
        parts.append(_inline(child, links))
        parts.append(child.tail or "")
    text = "".join(parts)
    if tag == "a":
        href = element.get("href", "").strip()
        if href.startswith(("http://", "https://", "mailto:")):
            label = _squash(text)
            if label == href or label == href.removeprefix("mailto:"):
                return href.removeprefix("mailto:") if href.startswith("mailto:") else href
            return f"{text} [{links.number(href)}]"
    return text


def _squash(text: str) -> str:
    """Collapse runs of white space (newlines included), keeping hard breaks."""
    return HARD_BREAK.join(re.sub(r"\s+", " ", line).strip() for line in text.split(HARD_BREAK)).strip()
