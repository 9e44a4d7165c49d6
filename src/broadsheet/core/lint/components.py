"""Lint rules for the components written in Markdown (content/components.py): a button with no address,
a caption with no image, a pair that is not two images, a ``:::`` block or ``{.button}`` that made nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

import lxml.html

from ..content.components import CONTAINERS, classes
from .document import shorten
from .findings import Finding
from .sources import text_needles

BUTTON_SYNTAX = "[Label](https://…){.button}"
ADDRESS = re.compile(r"(https?://[^\s/]+|mailto:\S+@\S+)", re.IGNORECASE)
LEFT_OVER = re.compile(r"\{\s*\.button[^}]*\}|^\s*:::\s*(\S*)", re.MULTILINE)


class LintContext(Protocol):
    """What these rules read of rules.LintContext."""

    html: str

    def where(self, *needles: str, fallback: str) -> str: ...


def check_components(ctx: LintContext) -> Iterator[Finding]:
    if not ctx.html.strip():
        return
    root = lxml.html.fromstring(ctx.html)
    for link in root.iter("a"):
        if "button" in classes(link) and not ADDRESS.match((link.get("href") or "").strip()):
            label = " ".join(link.text_content().split())
            yield Finding(
                "button-link",
                "error",
                f'the button "{shorten(label, 40)}" leads nowhere: write {BUTTON_SYNTAX} with a whole web address',
                ctx.where(f"[{label}]", *text_needles(label), fallback=f'<a class="button">{shorten(label, 40)}</a>'),
            )
    for block in root.iter("div"):
        names = classes(block)
        if "figure" in names and next(block.iter("img"), None) is None:
            caption = shorten(block.text_content(), 40)
            yield Finding(
                "caption-image",
                "warning",
                f'the caption "{caption}" has no image: put ![alt](file) on the line after ::: figure',
                ctx.where(*text_needles(block.text_content()), "::: figure", fallback='<div class="figure">'),
            )
        if "pair" in names and len(list(block.iter("img"))) != 2:
            count = len(list(block.iter("img")))
            yield Finding(
                "pair-images",
                "warning",
                f"::: pair holds {count} image{'s' * (count != 1)}: it shows two side by side",
                ctx.where("::: pair", fallback='<div class="pair">'),
            )
    yield from _left_over(ctx, root)


def _left_over(ctx: LintContext, root: lxml.html.HtmlElement) -> Iterator[Finding]:
    """``{.button}`` after no link, and ``:::`` blocks of a name no component has, reach the reader as text."""
    for paragraph in root.iter("p"):
        if paragraph.find(".//code") is not None:  # the syntax shown as code, on purpose
            continue
        text = paragraph.text_content()
        for match in LEFT_OVER.finditer(text):
            if match.group(0).lstrip().startswith(":::"):
                name = match.group(1)
                if name in CONTAINERS or not name:
                    continue
                message = f"::: {name} is no component (there are {', '.join(CONTAINERS)}): it shows as text"
                needle = f"::: {name}"
            else:
                message = f"{match.group(0)} stands after no link, so it shows as text: write {BUTTON_SYNTAX}"
                needle = match.group(0)
            yield Finding("component-syntax", "warning", message, ctx.where(needle, fallback=shorten(text, 60)))
