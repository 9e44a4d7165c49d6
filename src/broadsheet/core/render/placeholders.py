"""Per-recipient placeholders that survive MJML and CSS inlining untouched.

While the theme renders, ``subscriber.x``, ``unsubscribe_url`` and ``view_online_url`` stand for
opaque ASCII markers (no spaces or punctuation for lxml to percent-encode). After compiling and
inlining, the markers become Jinja2 expressions again, and any template syntax that came from the
issue's own content is escaped so that it is shown, never executed. What the theme wraps in
``{% filter email_only %}`` is marked the same way: kept in the email, cut from the browser version.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable
from typing import Any, Self

from markupsafe import Markup

from ..content.mergetags import MARKER as MERGE_TAG_MARKER
from ..content.mergetags import read_marker

TEMPLATE_SYNTAX = re.compile(r"\{[{%#]")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Placeholder(str):
    """A marker string that remembers the expression it stands for."""

    expression: str
    default: str | None

    def __new__(cls, marker: str, expression: str, default: str | None = None) -> Self:
        value = super().__new__(cls, marker)
        value.expression = expression
        value.default = default
        return value

    def __html__(self) -> str:  # already safe: plain ASCII marker
        return str(self)


class PlaceholderTable:
    """Hands out markers during one render and turns them back into Jinja2 or fixed values."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(5)
        self.entries: dict[str, Placeholder] = {}
        self._pattern = re.compile(rf"bsph{self.nonce}n(\d+)x")
        self._begin, self._end = f"bsph{self.nonce}bx", f"bsph{self.nonce}ex"  # an email-only stretch
        self._email_only = re.compile(rf"{self._begin}.*?{self._end}", re.DOTALL)
        self._section_marks = re.compile(rf"{self._begin}|{self._end}")

    def make(self, expression: str, default: str | None = None) -> Placeholder:
        marker = f"bsph{self.nonce}n{len(self.entries)}x"
        placeholder = Placeholder(marker, expression, default)
        self.entries[marker] = placeholder
        return placeholder

    def subscriber(self) -> SubscriberPlaceholders:
        return SubscriberPlaceholders(self)

    def default_filter(self, fallback: Callable[..., Any]) -> Callable[..., Any]:
        """Jinja's ``default`` filter, taught to record defaults on placeholders."""

        def default(value: object, default_value: object = "", boolean: bool = False) -> object:
            if isinstance(value, Placeholder):
                return self.make(value.expression, str(default_value))
            return fallback(value, default_value, boolean)

        return default

    def merge_tags(self, text: str) -> str:
        """The content's merge-tag markers (content/mergetags.py) made into this table's placeholders."""

        def placeholder(match: re.Match[str]) -> str:
            tag = read_marker(match)
            return self.make(f"subscriber.{tag.field}", tag.default)

        return MERGE_TAG_MARKER.sub(placeholder, text)

    def email_only(self, content: str) -> str:
        """The ``email_only`` filter: ``content`` is kept in the email, left out of the browser version."""
        if isinstance(content, Markup):
            return Markup(self._begin) + content + Markup(self._end)  # noqa: S704 -- our own fixed markers
        return f"{self._begin}{content}{self._end}"

    def to_jinja(self, text: str) -> str:
        """Escape content's template syntax, then restore markers as Jinja2 expressions."""
        text = self._section_marks.sub("", text)
        text = TEMPLATE_SYNTAX.sub(lambda m: "{{ " + _quote(m.group(0)) + " }}", text)
        return self._pattern.sub(lambda m: "{{ " + self._jinja(self.entries[m.group(0)]) + " }}", text)

    def fill(self, text: str, values: dict[str, str]) -> str:
        """Replace markers with fixed values (the browser version); defaults where a value is missing.

        Email-only stretches (a greeting, the link to the browser version itself) are left out.
        """

        def value(match: re.Match[str]) -> str:
            placeholder = self.entries[match.group(0)]
            found = values.get(placeholder.expression)
            return found if found else html.escape(placeholder.default or "")  # an editor's default("<…>") is text

        return self._pattern.sub(value, self._email_only.sub("", text))

    @staticmethod
    def _jinja(placeholder: Placeholder) -> str:
        if placeholder.default is None:
            return placeholder.expression
        return f"{placeholder.expression} | default({_quote(placeholder.default)})"


class SubscriberPlaceholders:
    """``subscriber`` during the theme render: every attribute is a placeholder."""

    def __init__(self, table: PlaceholderTable):
        self._table = table

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("_") or not FIELD_NAME.match(name):
            raise AttributeError(name)
        return self._table.make(f"subscriber.{name}")

    def __getitem__(self, name: str) -> Placeholder:
        if not FIELD_NAME.match(str(name)):
            raise KeyError(name)
        return self._table.make(f"subscriber.{name}")


def _quote(text: str) -> str:
    """A single-quoted Jinja2 string literal (safe inside double-quoted HTML attributes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
