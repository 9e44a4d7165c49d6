"""What render hands on: the compiled issue, its parts ready for personalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Variables the compiled ``html`` and ``text`` expect, filled per recipient by compose:
#   subscriber       mapping: email, name, first_name, and every extra CSV column
#   unsubscribe_url  this recipient's unsubscribe link
#   view_online_url  the issue's browser version
#   clicks           only after compose.clicks.count_links with [tracking] per_subscriber: clicks[n] is this
#                    reader's token for link n
PERSONAL_VARIABLES = ("subscriber", "unsubscribe_url", "view_online_url")


@dataclass(frozen=True)
class RenderedIssue:
    """One issue compiled once: MJML -> HTML (inlined) + text, with per-recipient placeholders.

    ``html`` and ``text`` are Jinja2 templates in the default syntax whose only variables are
    PERSONAL_VARIABLES; anything the issue's own content contained that looks like template syntax
    has been escaped, so rendering them shows it literally. Render ``html`` with autoescape on.
    ``web_html`` is the browser version with no per-recipient fields.
    """

    slug: str
    title: str
    subject: str
    preheader: str
    mjml: str
    html: str
    text: str
    web_html: str
    view_online_url: str  # "" without a base_url
    images: tuple[tuple[str, Path], ...] = ()  # (name under images/, source file) to publish
    warnings: tuple[str, ...] = field(default=())
