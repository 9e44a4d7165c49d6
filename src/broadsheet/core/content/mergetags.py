"""Merge tags in an issue's Markdown: ``{{ subscriber.first_name | default("there") }}`` becomes each reader's value.

Only that form is a merge tag: ``subscriber.<field>`` with an optional ``default("…")`` (or ``'…'``).
Content reads it into an opaque ASCII marker (``bsmerge<hex field>g<hex default>z``) that Markdown,
the sanitiser, MJML and premailer leave alone; render turns each marker into one of its per-recipient
placeholders (render/placeholders.py), so compose fills it like the theme's own ``subscriber.*`` values,
HTML-escaped. Anything else written with ``{{`` stays text, shown literally (lint says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_inline import StateInline

MERGE_TAG = re.compile(
    r"""\{\{\s*subscriber\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s*"""
    r"""(?:\|\s*default\(\s*(?:"(?P<double>[^"\\\n{}]*)"|'(?P<single>[^'\\\n{}]*)')\s*\)\s*)?\}\}"""
)
MARKER = re.compile(r"bsmerge([0-9a-f]+)(?:g([0-9a-f]*))?z")
STANDARD_FIELDS = ("email", "name", "first_name")  # every subscriber has these (audience fills first_name)


@dataclass(frozen=True)
class MergeTag:
    field: str
    default: str | None  # None: no default("…") written


def marker(tag: MergeTag) -> str:
    """The opaque marker standing for ``tag`` in content's HTML and text."""
    default = "" if tag.default is None else "g" + tag.default.encode("utf-8").hex()
    return f"bsmerge{tag.field.encode('ascii').hex()}{default}z"


def tag_of(match: re.Match[str]) -> MergeTag:
    """The MergeTag of a MERGE_TAG match."""
    default = match.group("double") if match.group("double") is not None else match.group("single")
    return MergeTag(match.group("field"), default)


def read_marker(match: re.Match[str]) -> MergeTag:
    """The MergeTag of a MARKER match."""
    default = None if match.group(2) is None else bytes.fromhex(match.group(2)).decode("utf-8", "replace")
    return MergeTag(bytes.fromhex(match.group(1)).decode("ascii", "replace"), default)


def to_markers(text: str) -> str:
    """Plain text (a front-matter greeting) with its merge tags as markers."""
    return MERGE_TAG.sub(lambda m: marker(tag_of(m)), text)


def with_defaults(text: str) -> str:
    """Markers replaced by their defaults (or nothing): content shown to no one in particular (the feed)."""
    return MARKER.sub(lambda m: read_marker(m).default or "", text)


def merge_tag_plugin(parser: MarkdownIt) -> None:
    """markdown-it: a merge tag in running text (never in code or a URL) becomes its marker."""

    def rule(state: StateInline, silent: bool) -> bool:
        if state.src[state.pos] != "{":
            return False
        match = MERGE_TAG.match(state.src, state.pos)
        if match is None:
            return False
        if not silent:
            state.push("merge_tag", "", 0).content = marker(tag_of(match))
        state.pos = match.end()
        return True

    parser.inline.ruler.before("text", "merge_tag", rule)
    parser.add_render_rule("merge_tag", lambda self, tokens, idx, options, env: tokens[idx].content)
