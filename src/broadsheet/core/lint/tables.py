"""How narrow an article's tables can get: an estimate from their words, without a browser.

A cell is at least as wide as its longest word (lines break at spaces and after hyphens; CJK text between
any two characters) and at least the theme's 4em; the theme's Helvetica averages a little over half an em
a character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import lxml.html
from lxml.html import HtmlElement

FONT_PX = 14  # the theme's table text
CELL_MIN_EM = 4  # the theme's min-width for a cell
CELL_EDGES_PX = 17  # 8 px padding each side and a 1 px border
LATIN_EM = 0.56  # an average Helvetica character; bold header cells a little more
BOLD_EM = 0.6
WORD_BREAK = re.compile(r"\s+|(?<=-)")


@dataclass(frozen=True)
class TableWidth:
    """One content table: its columns, the narrowest it can be in CSS pixels, and its first cell's text."""

    columns: int
    narrowest: int
    first_cell: str


def table_widths(html: str) -> list[TableWidth]:
    """Every article table (``table.content-table``) in ``html``, in document order."""
    if "content-table" not in html:
        return []
    root = lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    return [_measure(table) for table in root.find_class("content-table") if table.tag == "table"]


def _measure(table: HtmlElement) -> TableWidth:
    columns: list[float] = []
    first = ""
    for row in table.iter("tr"):
        cells = [cell for cell in row if isinstance(cell.tag, str) and cell.tag in ("td", "th")]
        for index, cell in enumerate(cells):
            text = cell.text_content()
            first = first or " ".join(text.split())
            width = max(_longest_word(text, bold=cell.tag == "th"), CELL_MIN_EM * FONT_PX) + CELL_EDGES_PX
            if index == len(columns):
                columns.append(width)
            else:
                columns[index] = max(columns[index], width)
    return TableWidth(columns=len(columns), narrowest=round(sum(columns)) + 1, first_cell=first)


def _longest_word(text: str, *, bold: bool) -> float:
    em = BOLD_EM if bold else LATIN_EM
    return max((_word_px(word, em) for word in WORD_BREAK.split(text) if word), default=0.0)


def _word_px(word: str, em: float) -> float:
    """A word's width; a CJK character is an em wide and may end a line, so it counts alone."""
    widest = run = 0.0
    for char in word:
        if unicodedata.east_asian_width(char) in ("W", "F"):
            widest, run = max(widest, run, FONT_PX), 0.0
        else:
            run += em * FONT_PX
    return max(widest, run)
