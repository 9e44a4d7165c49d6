"""MJML → HTML (MRML, once per issue) → CSS inlined (premailer, once per issue)."""

from __future__ import annotations

import functools
import logging
import os
import re
from typing import Any

from ..errors import TemplateError

DOCTYPE = re.compile(r"\s*<!doctype[^>]*>", re.IGNORECASE)
MAIN = re.compile(r'<div class="issue-main"')  # the theme's mj-wrapper around the issue's own content


def compile_mjml(source: str, *, fonts: dict[str, str], where: str) -> str:
    """Compile MJML with MRML; no web fonts unless the theme declares them."""
    import mjml  # here, not at import: commands that build nothing do not load it

    try:
        html: str = mjml.mjml2html(source, fonts=fonts, disable_comments=False)
    except ValueError as exc:
        raise TemplateError(f"MJML does not compile: {exc}", where=where, fix="check the theme's MJML tags") from None
    return MAIN.sub('<div role="main" class="issue-main"', html, count=1)  # MJML has no attribute for a landmark


def inline_css(html: str) -> str:
    """Inline the CSS, keeping <style> blocks so media queries (mobile, dark mode) still apply.

    premailer drops the document type; it is put back (MRML's, or HTML5's), so that no client
    renders the email in quirks mode.
    """
    doctype = DOCTYPE.match(html)
    inlined: str = _premailer()(  # premailer is untyped
        html,
        allow_network=False,
        keep_style_tags=True,
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        exclude_pseudoclasses=True,
        disable_basic_attributes=["width", "height"],  # keep MRML's pixel widths for Outlook
    ).transform(pretty_print=False)
    if DOCTYPE.match(inlined):
        return inlined
    return (doctype.group(0).strip() if doctype else "<!doctype html>") + "\n" + inlined


@functools.cache
def _premailer() -> Any:
    """premailer's Premailer, imported on the first build (it brings cssutils, cssselect and requests).

    premailer validates every style attribute against cssutils' CSS profiles although ``disable_validation``
    is set (its merge_styles parses them without the flag); validation only logs, and that log is silenced,
    so the profiles are dropped: nothing is left to check, and nothing checked changes the output.
    """
    # premailer keeps the CSS it parses in one cache of 128 entries by default, read from the environment
    # when it is imported: one issue's style sheets and style attributes overflow it, so every build parsed
    # them again.
    os.environ.setdefault("PREMAILER_CACHE_MAXSIZE", "4096")
    import cssutils
    from premailer import Premailer

    cssutils.log.setLevel(logging.CRITICAL)
    cssutils.profile.removeProfile(all=True)
    return Premailer
