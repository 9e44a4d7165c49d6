"""CSV cells that a spreadsheet shows as text and never runs as a formula (OWASP: CSV injection).

A subscriber's name can come from a public sign-up form and a failure reason from a remote mail server:
a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR is a formula to Excel, LibreOffice and
Sheets (``=HYPERLINK(…)``, DDE). What broadsheet writes goes through ``spreadsheet_safe`` (a leading
apostrophe, the spreadsheets' own mark for text); what it reads goes through ``as_written``, which takes
that apostrophe off again, so an exported file imports as it was. Signed numbers are left as they are.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")


def _formula_like(value: str) -> bool:
    """``value``, past any apostrophes, starts like a formula (and is not a signed number)."""
    text = value.lstrip("'")
    return text.startswith(FORMULA_STARTS) and _NUMBER.match(text) is None


def spreadsheet_safe(value: str) -> str:
    """``value`` as a cell to write: an apostrophe first when it would start a formula (or is already such
    a cell, so that ``as_written`` gives it back exactly)."""
    return "'" + value if _formula_like(value) else value


def as_written(value: str) -> str:
    """A cell as read from a CSV, without the apostrophe ``spreadsheet_safe`` put before it."""
    return value[1:] if value[:1] == "'" and _formula_like(value) else value
