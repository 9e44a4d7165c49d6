"""Outlook for Windows draws no padding, rounded corners or background on a link: each button row gets a
VML shape that only it reads (``<!--[if mso]>``), and hides the link from it (the bulletproof button)."""

from __future__ import annotations

from dataclasses import replace
from html import escape

import lxml.html
from lxml.html import HtmlComment, HtmlElement

from ..content import Issue
from ..content.components import classes
from .palette import Palette

HEIGHT = 44  # px
MIN_WIDTH, MAX_WIDTH = 120, 536
CHARACTER_WIDTH = 9  # px of 16 px bold Helvetica, roughly: the VML shape has a fixed width
RADIUS_PERCENT = 10


def with_outlook_buttons(issue: Issue, palette: Palette) -> Issue:
    """``issue`` with the VML of every button row in its intro and articles."""
    if "button-row" not in issue.intro_html and not any("button-row" in a.body_html for a in issue.articles):
        return issue
    articles = tuple(replace(a, body_html=outlook_buttons(a.body_html, palette)) for a in issue.articles)
    return replace(issue, intro_html=outlook_buttons(issue.intro_html, palette), articles=articles)


def outlook_buttons(html: str, palette: Palette) -> str:
    """``html`` (sanitised content) with each ``div.button-row > a.button`` made bulletproof."""
    if "button-row" not in html:
        return html
    root = lxml.html.fragment_fromstring(html, create_parent="div", parser=lxml.html.HTMLParser(huge_tree=True))
    for row in root.iter("div"):
        link = next(iter(row), None)
        if "button-row" in classes(row) and link is not None and link.tag == "a" and link.get("href"):
            _bulletproof(row, link, palette)
    inner = (root.text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return inner + "".join(lxml.html.tostring(child, encoding="unicode", method="html") for child in root)


def _bulletproof(row: HtmlElement, link: HtmlElement, palette: Palette) -> None:
    secondary = "secondary" in classes(link)
    fill = palette.button_secondary if secondary else palette.button
    ink = palette.on_button_secondary if secondary else palette.on_button
    label = " ".join(link.text_content().split())
    width = max(MIN_WIDTH, min(MAX_WIDTH, len(label) * CHARACTER_WIDTH + 48))
    shape = (
        f'[if mso]><v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" xmlns:w="urn:schemas-microsoft-com:office:word"'
        f' href="{escape(link.get("href", ""))}" style="height:{HEIGHT}px;v-text-anchor:middle;width:{width}px;"'
        f' arcsize="{RADIUS_PERCENT}%" strokecolor="{fill}" fillcolor="{fill}"><w:anchorlock/>'
        f'<center style="color:{ink};font-family:Helvetica,Arial,sans-serif;font-size:16px;font-weight:bold;">'
        f"{escape(label)}</center></v:roundrect><![endif]"
    )
    link.addprevious(HtmlComment(shape.replace("--", "&#45;&#45;")))
    link.addprevious(HtmlComment("[if !mso]><!"))
    link.addnext(HtmlComment("<![endif]"))
