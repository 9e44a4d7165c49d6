"""CSS the theme or an article uses that Gmail, Outlook for Windows or Apple Mail ignore, from the caniemail
data set (``caniemail_css.json``, made by scripts/caniemail_subset.py).

A few features are left out on purpose (``DEGRADES``): where a client ignores them the reader loses an
enhancement, never the content, and the shipped themes rely on exactly that.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cssutils

DEGRADES = {
    "css-at-media": "phones get the column layout MJML makes fluid anyway",
    "css-at-media-prefers-color-scheme": "a client without dark mode shows the light colours",
    "css-at-media-prefers-reduced-motion": "there is no motion to reduce where it is ignored",
    "css-pseudo-class-hover": "no hover effect",
    "css-overflow-wrap": "long words wrap less neatly",
    "css-word-wrap": "long words wrap less neatly",
    "css-hyphens": "long words are not hyphenated",
    "css-white-space": "code wraps as the client chooses",
}
OUTLOOK_DARK_HOOKS = ("[data-ogsc]", "[data-ogsb]")  # rules only Outlook.com reads
UNITS = re.compile(r"\d(rem|vw|vh|vmin|vmax|ch)\b")
FUNCTIONS = {
    "linear-gradient(": "css-linear-gradient",
    "radial-gradient(": "css-radial-gradient",
    "conic-gradient(": "css-conic-gradient",
    "var(": "css-variables",
    "calc(": "css-unit-calc",
    "clamp(": "css-function-clamp",
    "min(": "css-function-min",
    "max(": "css-function-max",
    "light-dark(": "css-function-light-dark",
    "rgba(": "css-rgba",
}
SHORTHANDS = ("border", "margin", "padding", "background", "list-style", "outline", "text-decoration")
ALIASES = {"top": "left-right-top-bottom", "left": "left-right-top-bottom", "right": "left-right-top-bottom",
           "bottom": "left-right-top-bottom", "column-gap": "gap", "row-gap": "gap", "overflow-x": "overflow",
           "overflow-y": "overflow"}  # fmt: skip
MEDIA_FEATURES = ("prefers-color-scheme", "prefers-reduced-motion", "hover", "orientation", "device-pixel-ratio")
AT_RULES = {"@keyframes": "css-at-keyframes", "@supports": "css-at-supports", "@import": "css-at-import"}
# a style sheet's own word for features it uses knowingly: /* css-support-ok: css-min-width css-overflow; why */
KNOWN_OK = re.compile(r"/\*\s*css-support-ok:\s*([a-z0-9 -]+?)\s*;", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"""\bstyle\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)

cssutils.log.setLevel(logging.CRITICAL)  # its own complaints about CSS it does not know are not ours


@dataclass(frozen=True)
class Unsupported:
    """A CSS feature one of the three clients ignores, first used at ``needle`` in a file."""

    slug: str
    title: str
    url: str
    clients: tuple[str, ...]
    needle: str


@functools.cache
def support_table() -> dict[str, Any]:
    """The shipped caniemail subset: its source line and, per feature, the clients that ignore it."""
    text = resources.files("broadsheet.core.lint").joinpath("caniemail_css.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def unsupported_in_stylesheet(css: str) -> Iterator[Unsupported]:
    """Each ignored feature of a style sheet (a theme's ``.css`` file or a ``<style>`` element), once, but
    those the sheet names in a ``css-support-ok`` comment (with its reason: the fallback it relies on)."""
    known = {slug.lower() for match in KNOWN_OK.finditer(css) for slug in match[1].split()}
    return _report([(slug, needle) for slug, needle in _stylesheet_features(css) if slug not in known])


def unsupported_in_markdown(text: str) -> Iterator[Unsupported]:
    """Each ignored feature of the ``style=`` attributes and ``<style>`` elements written in Markdown, once."""
    found: list[tuple[str, str]] = []
    for match in STYLE_ATTRIBUTE.finditer(text):
        found.extend(_declaration_features(cssutils.parseStyle(match[1] or match[2] or "", validate=False)))
    for match in STYLE_ELEMENT.finditer(text):
        found.extend(_stylesheet_features(match[1]))
    return _report(found)


def _report(found: list[tuple[str, str]]) -> Iterator[Unsupported]:
    features = support_table()["features"]
    seen: set[str] = set()
    for slug, needle in found:
        known = features.get(slug)
        if known is None or slug in DEGRADES or slug in seen:
            continue
        seen.add(slug)
        yield Unsupported(slug, known["title"], known["url"], tuple(known["no"]), needle)


@functools.lru_cache(maxsize=64)
def _stylesheet_features(css: str) -> tuple[tuple[str, str], ...]:
    """Kept per style sheet text: a theme's sheets are the same in every build that lint reads."""
    found: list[tuple[str, str]] = []
    for rule in cssutils.parseString(css, validate=False):
        if rule.type == rule.STYLE_RULE:
            found.extend(_rule_features(rule))
        elif rule.type == rule.MEDIA_RULE:
            media = rule.media.mediaText
            found.append(("css-at-media", "@media"))
            found.extend((f"css-at-media-{name}", name) for name in MEDIA_FEATURES if name in media)
            # what is inside is read only where the media query is: its own features matter there only
        elif rule.type == rule.FONT_FACE_RULE:
            found.append(("css-at-font-face", "@font-face"))
        elif rule.type == rule.IMPORT_RULE:
            found.append(("css-at-import", "@import"))
        elif rule.type == rule.UNKNOWN_RULE:
            at = rule.cssText.split(None, 1)[0] if rule.cssText else ""
            if at in AT_RULES:
                found.append((AT_RULES[at], at))
    return tuple(found)


def _rule_features(rule: Any) -> list[tuple[str, str]]:
    selectors = [selector.selectorText for selector in rule.selectorList]
    if all(selector.startswith(OUTLOOK_DARK_HOOKS) for selector in selectors):
        return []
    found = [*_selector_features(selectors), *_declaration_features(rule.style)]
    return found


def _selector_features(selectors: list[str]) -> Iterator[tuple[str, str]]:
    for selector in selectors:
        for pseudo in re.findall(r"(::?)([a-z-]+)", selector):
            kind = "element" if pseudo[0] == "::" or pseudo[1] in ("before", "after") else "class"
            yield f"css-pseudo-{kind}-{pseudo[1]}", pseudo[0] + pseudo[1]


def _declaration_features(style: Any) -> Iterator[tuple[str, str]]:
    for declaration in style:
        name, value = declaration.name.lower(), declaration.value.lower()
        needle = f"{name}:"
        if name.startswith("--"):
            yield "css-variables", name
            continue
        if name == "display":
            yield f"css-display-{value.split()[0] if value else ''}", needle
        yield f"css-{ALIASES.get(name, name)}", needle
        family = next((family for family in SHORTHANDS if name.startswith(f"{family}-")), None)
        if family:  # border-left-color is border's, as padding-left is padding's
            yield f"css-{family}", needle
        for function, slug in FUNCTIONS.items():
            if function in value:
                yield slug, function
        for unit in UNITS.findall(value):
            yield f"css-unit-{unit}", unit


def located(path: Path, lines: list[str], needle: str) -> str:
    """``path:line`` of the first line holding ``needle`` (case-insensitive), else the path."""
    lowered = needle.lower()
    for number, line in enumerate(lines, 1):
        if lowered in line.lower():
            return f"{path}:{number}"
    return str(path)
