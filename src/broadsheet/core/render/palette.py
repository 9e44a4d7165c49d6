"""Every colour a theme uses, made from the brand's four (coloraide reads, mixes and measures them).

The brand's colours are used as given in light mode (lint names a pair below WCAG's ratios); what the
theme derives (headings, muted text, masthead lines, dark mode) is moved toward black or white until it
reaches them. Dark mode keeps the author's button colours and lightens links and bars for the dark sheet.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

from coloraide import Color

from ..config import Brand

TEXT_RATIO = 4.5  # WCAG AA, body text
LARGE_RATIO = 3.0  # WCAG AA, large text and the edges of buttons and bars (1.4.11)
SHEET = "#ffffff"  # the paper the articles sit on
DARK_PAGE = "#0f1419"
DARK_SHEET = "#1b232e"
DARK_TEXT = "#e6e9ee"
DARK_MUTED = "#aab3bf"
WHITE, BLACK = "#ffffff", "#000000"
DEFAULTS = Brand()


def colour(value: str, fallback: str) -> Color:
    """``value`` (any CSS colour) as opaque sRGB; ``fallback`` when it is no colour or mostly transparent."""
    try:
        parsed = Color(value.strip()).convert("srgb").fit("srgb")
    except ValueError:
        return Color(fallback)
    return Color(fallback) if parsed.alpha() < 0.5 else parsed.set("alpha", 1)


def hex_of(value: Color) -> str:
    return value.convert("srgb").fit("srgb").to_string(hex=True, alpha=False)


def ratio(a: str | Color, b: str | Color) -> float:
    """WCAG 2.1 contrast ratio, 1 to 21."""
    return float(Color(a).contrast(Color(b), method="wcag21"))


def readable(value: Color | str, *backgrounds: str, minimum: float = TEXT_RATIO) -> str:
    """``value`` moved toward black or white (whichever the lightest background calls for) until, as a hex
    colour, it has ``minimum`` contrast against each of ``backgrounds``."""
    start = Color(value)
    target = BLACK if max(Color(b).luminance() for b in backgrounds) > 0.18 else WHITE
    for step in range(41):
        moved = hex_of(start.mix(target, step / 40, space="srgb"))
        if all(ratio(moved, b) >= minimum for b in backgrounds):
            return moved
    return target


def on(fill: str) -> str:
    """White or black text, whichever reads better on ``fill``."""
    return WHITE if ratio(fill, WHITE) >= ratio(fill, BLACK) else BLACK


@dataclass(frozen=True)
class Palette:
    """Hex colours, named by use. ``dark_*`` are dark mode's (prefers-color-scheme, Outlook.com's data-ogsc)."""

    page: str
    sheet: str
    text: str
    heading: str
    link: str
    muted: str
    rule: str
    accent: str
    code_background: str
    masthead: str
    on_masthead: str
    masthead_muted: str
    button: str
    on_button: str
    button_secondary: str
    on_button_secondary: str
    callout_background: str
    callout_text: str
    callout_link: str
    dark_page: str
    dark_sheet: str
    dark_text: str
    dark_muted: str
    dark_link: str
    dark_accent: str
    dark_code_background: str
    dark_callout_background: str
    dark_callout_text: str

    def items(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@functools.lru_cache(maxsize=64)
def palette_of(brand: Brand) -> Palette:
    """The theme's colours for ``brand`` (kept: every build and every archive page asks for the same brand's)."""
    primary = hex_of(colour(brand.primary_color, DEFAULTS.primary_color))
    accent = hex_of(colour(brand.accent_color, DEFAULTS.accent_color))
    page = hex_of(colour(brand.background_color, DEFAULTS.background_color))
    text = hex_of(colour(brand.text_color, DEFAULTS.text_color))
    on_masthead = on(primary)
    callout_background = hex_of(Color(accent).mix(SHEET, 0.9, space="srgb"))
    dark_callout_background = hex_of(Color(accent).mix(DARK_SHEET, 0.82, space="srgb"))
    return Palette(
        page=page,
        sheet=SHEET,
        text=text,
        heading=readable(Color(primary).mix(text, 0.45, space="srgb"), SHEET),
        link=primary,
        muted=readable(Color(text).mix(SHEET, 0.4, space="srgb"), SHEET, page),
        rule=hex_of(Color(text).mix(SHEET, 0.88, space="srgb")),
        accent=accent,
        code_background=hex_of(Color(page).mix(SHEET, 0.5, space="srgb")),
        masthead=primary,
        on_masthead=on_masthead,
        masthead_muted=readable(Color(on_masthead).mix(primary, 0.2, space="srgb"), primary),
        button=primary,
        on_button=on_masthead,
        button_secondary=accent,
        on_button_secondary=on(accent),
        callout_background=callout_background,
        callout_text=readable(text, callout_background),
        callout_link=readable(primary, callout_background),
        dark_page=DARK_PAGE,
        dark_sheet=DARK_SHEET,
        dark_text=DARK_TEXT,
        dark_muted=DARK_MUTED,
        dark_link=readable(primary, DARK_SHEET, dark_callout_background),
        dark_accent=readable(accent, DARK_SHEET, minimum=LARGE_RATIO),
        dark_code_background=DARK_PAGE,
        dark_callout_background=dark_callout_background,
        dark_callout_text=readable(DARK_TEXT, dark_callout_background),
    )
