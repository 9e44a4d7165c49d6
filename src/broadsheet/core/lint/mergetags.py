"""Lint of merge tags in the issue's Markdown: literal template syntax, fields no subscriber has, Mailchimp tags."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..content.mergetags import MERGE_TAG
from .findings import Finding
from .sources import SourceIndex, display

OPENING = re.compile(r"\{[{%#]")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
IN_ADDRESS = re.compile(r"""\]\([^)\s]*\{\{|\b(?:href|src)\s*=\s*["'][^"']*\{\{""")  # [text](…{{ or href="…{{
MAILCHIMP = re.compile(r"\*\|([A-Z0-9_]+)\|\*")
MAILCHIMP_FIELDS = {"FNAME": "first_name", "LNAME": "last_name", "EMAIL": "email", "NAME": "name"}
FORM = 'only {{ subscriber.<field> }} or {{ subscriber.<field> | default("…") }} is a merge tag'


def merge_tag_findings(sources: SourceIndex, known: frozenset[str] | None) -> Iterator[Finding]:
    """Per Markdown line: template syntax that stays literal, merge tags naming a field no subscriber
    has (``known``: the fields; None when the list is unreadable), and Mailchimp's ``*|FNAME|*``."""
    for path, lines in sources.files:
        if path.suffix != ".md":
            continue
        for number, line in _prose_lines(lines):
            where = f"{display(path)}:{number}"
            tags = list(MERGE_TAG.finditer(line))
            starts = {tag.start() for tag in tags}
            if IN_ADDRESS.search(line):
                yield Finding(
                    "merge-tag",
                    "warning",
                    "a merge tag in a link or image address is not filled: merge tags work in text only",
                    where,
                )
                starts = set()  # and what it holds is shown literally too
            for opening in OPENING.finditer(line):
                if opening.start() not in starts:
                    yield Finding(
                        "merge-tag", "warning", f"{_snippet(line, opening.start())} is shown literally: {FORM}", where
                    )
            for tag in tags:
                yield from _unknown_field(known, tag, where)
            for mailchimp in MAILCHIMP.finditer(line):
                field = MAILCHIMP_FIELDS.get(mailchimp.group(1), mailchimp.group(1).lower())
                yield Finding(
                    "merge-tag",
                    "warning",
                    f"{mailchimp.group(0)} is a Mailchimp merge tag, shown "
                    f"literally here: write {{{{ subscriber.{field} }}}}",
                    where,
                )


def _unknown_field(known: frozenset[str] | None, tag: re.Match[str], where: str) -> Iterator[Finding]:
    field = tag.group("field")
    if known is None or field in known:
        return
    default = tag.group("double") if tag.group("double") is not None else tag.group("single")
    gets = f'"{default}"' if default else "nothing"
    yield Finding(
        "merge-tag",
        "warning",
        f"no subscriber has the field '{field}' (the list has {', '.join(sorted(known))}): every reader gets {gets}",
        where,
    )


def _prose_lines(lines: list[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of lines outside fenced code, with inline code spans blanked."""
    fenced = False
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def _snippet(line: str, start: int) -> str:
    end = line.find("}", start + 2)
    text = line[start : end + 2 if end >= 0 else start + 20].strip()
    return text if len(text) <= 40 else text[:39] + "…"
