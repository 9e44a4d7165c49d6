"""The components an editor writes in Markdown, shaped into HTML that email clients (Outlook too) lay out.

- button: ``[Label](https://…){.button}`` alone in a paragraph (``{.button .secondary}`` for the second
  colour) becomes ``<div class="button-row"><a class="button">``; render adds Outlook's VML shape.
- callout: ``::: callout`` … ``:::`` becomes a one-cell table (Outlook ignores a div's padding).
- figure: ``::: figure`` holding an image, then its caption, becomes the image and ``<p class="caption">``.
- pair: ``::: pair`` holding two images puts them side by side; they stack on a narrow screen.
"""

from __future__ import annotations

from lxml import etree
from lxml.html import HtmlComment, HtmlElement

CONTAINERS = ("callout", "figure", "pair")
PAIR_WIDTH = 260  # px: each of two images in the 536 px column, with room between them
BUTTON = "button"


def classes(element: HtmlElement) -> list[str]:
    return (element.get("class") or "").split()


def shape_components(root: HtmlElement) -> None:
    """Reshape the components in ``root`` (sanitised Markdown HTML) in place."""
    for element in list(root.iter("a", "div")):
        names = classes(element)
        if element.tag == "a" and BUTTON in names:
            _button(element)
        elif element.tag == "div" and "figure" in names:
            _figure(element)
        elif element.tag == "div" and "pair" in names:
            _pair(element)
        elif element.tag == "div" and "callout" in names:
            _callout(element)


def _button(link: HtmlElement) -> None:
    """A button alone in its paragraph becomes a row of its own (an inline one stays a styled link)."""
    paragraph = link.getparent()
    if paragraph is None or paragraph.tag != "p" or len(paragraph) != 1:
        return
    if (paragraph.text or "").strip() or (link.tail or "").strip():
        return
    paragraph.tag = "div"
    paragraph.set("class", "button-row")
    paragraph.text, link.tail = None, None


def _figure(figure: HtmlElement) -> None:
    """The first image leads; every paragraph with text after it is the caption."""
    image = next(figure.iter("img"), None)
    if image is None:  # lint names it: a caption without an image
        return
    holder = image.getparent()
    if holder is not None and holder is not figure:
        _lift(image)  # the caption's start, on the line after the image, stays in the paragraph
        holder.addprevious(image)
    image.tail = None
    for paragraph in figure.findall("p"):
        if not len(paragraph) and not (paragraph.text or "").strip():
            figure.remove(paragraph)
        else:
            paragraph.set("class", "caption")
            paragraph.text = (paragraph.text or "").lstrip() or None


def _pair(pair: HtmlElement) -> None:
    """Each image in an inline-block of at most PAIR_WIDTH px (two fit the column; on a phone each takes the
    width), inside a two-cell table that only Outlook for Windows reads (it knows no inline-block)."""
    images = list(pair.iter("img"))
    if not images:
        return
    for image in images:
        _lift(image)
        written = (image.get("width") or "").removesuffix("px")
        if not written.isdigit() or int(written) > PAIR_WIDTH:
            image.set("width", str(PAIR_WIDTH))
            image.attrib.pop("height", None)
    for paragraph in pair.findall("p"):  # left with text (a caption) or nothing
        if not len(paragraph) and not (paragraph.text or "").strip():
            pair.remove(paragraph)
        else:
            paragraph.set("class", "caption")
            paragraph.text = (paragraph.text or "").lstrip() or None
    captions = list(pair)
    for child in captions:
        pair.remove(child)
    pair.text = None
    cell = f'<td width="{PAIR_WIDTH + 8}" valign="top">'
    pair.append(HtmlComment(f'[if mso]><table role="presentation" cellpadding="0" cellspacing="0"><tr>{cell}<![endif]'))
    for number, image in enumerate(images):
        if number:
            pair.append(HtmlComment(f"[if mso]></td>{cell}<![endif]"))
        item = pair.makeelement("div", {"class": "pair-item"})
        item.append(image)
        pair.append(item)
    pair.append(HtmlComment("[if mso]></td></tr></table><![endif]"))
    for caption in captions:
        pair.append(caption)


def _lift(element: HtmlElement) -> None:
    """Take ``element`` out of its parent, leaving the text after it where it was."""
    parent = element.getparent()
    if parent is None:
        return
    tail, element.tail = element.tail or "", None
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)


def _callout(callout: HtmlElement) -> None:
    """A one-cell table holding the callout's blocks: its background and padding reach Outlook too."""
    children = list(callout)
    text = callout.text
    callout.tag = "table"
    callout.attrib.clear()
    callout.attrib.update({"class": "callout", "role": "presentation", "width": "100%", "cellpadding": "0"})
    callout.set("cellspacing", "0")
    for child in children:
        callout.remove(child)
    callout.text = None
    row = etree.SubElement(callout, "tr")
    cell = etree.SubElement(row, "td", {"class": "callout-body"})
    cell.text = text if text and text.strip() else None
    for child in children:
        cell.append(child)
