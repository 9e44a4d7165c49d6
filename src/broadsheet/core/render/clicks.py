"""Counted links: an issue's http(s) links pointed at serve's ``/r/<token>``, once per issue.

The rewrite works on the compiled per-recipient templates (``RenderedIssue.html`` and ``.text``), so it
runs once, after MJML and premailer. Each distinct address is one link, numbered in order of first
appearance (HTML first, then text), and the same address in both parts is the same link. Left alone: the
unsubscribe and browser-version links (Jinja expressions or the issue's own address), serve's own pages,
``mailto:``, and any address holding template syntax (a merge tag makes a link personal: it cannot be
sealed once per issue). The browser version (``web_html``) is not counted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from .model import RenderedIssue

HTML_LINK = re.compile(r"""(\bhref\s*=\s*)(["'])(https?://[^"'<>\s]*)\2""", re.IGNORECASE)
TEXT_LINK = re.compile(r"""https?://[^\s<>"'\[\]]+""", re.IGNORECASE)
TRAILING = ".,;:!?)"  # sentence punctuation after an address in the text part is not part of it
SERVE_PATHS = ("/u/", "/c/", "/r/")  # serve's own pages: unsubscribe, confirm, and counted links


@dataclass(frozen=True)
class TrackedIssue:
    """The issue with its links rewritten, and ``urls[n]``: the address of link ``n``."""

    issue: RenderedIssue
    urls: tuple[str, ...]


def track_links(rendered: RenderedIssue, href: Callable[[int, str], str | None], *, public_url: str) -> TrackedIssue:
    """Rewrite the html and text templates' links; ``href(n, url)`` gives what link ``n`` becomes (template
    text: a fixed address, or one with a per-recipient expression), or None to leave it alone."""
    numbers: dict[str, int] = {}
    targets: dict[str, str | None] = {}
    own = tuple(public_url.rstrip("/") + path for path in SERVE_PATHS)

    def counted(url: str) -> str | None:
        """The replacement for ``url``, or None to leave it alone."""
        if "{" in url or url == rendered.view_online_url or url.startswith(own):
            return None
        if url not in targets:
            targets[url] = target = href(len(numbers), url)
            if target is not None:
                numbers[url] = len(numbers)
        return targets[url]

    def html_link(match: re.Match[str]) -> str:
        target = counted(html.unescape(match[3]))
        return match[0] if target is None else f"{match[1]}{match[2]}{target}{match[2]}"

    def text_link(match: re.Match[str]) -> str:
        url = match[0].rstrip(TRAILING)
        target = counted(url)
        return match[0] if target is None else target + match[0][len(url) :]

    tracked_html = HTML_LINK.sub(html_link, rendered.html)
    tracked_text = TEXT_LINK.sub(text_link, rendered.text)
    return TrackedIssue(replace(rendered, html=tracked_html, text=tracked_text), tuple(numbers))


__all__ = ["TrackedIssue", "track_links"]
