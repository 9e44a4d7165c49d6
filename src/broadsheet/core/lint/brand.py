"""Lint of the brand's colours and logo as the theme uses them: text, links and buttons readable (WCAG AA),
and a logo with see-through parts that does not vanish into what it sits on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..config import Config
from ..errors import BroadsheetError
from ..render.build import logo_file
from ..render.palette import LARGE_RATIO, TEXT_RATIO, Palette, palette_of, ratio
from ..render.theme import load_theme
from .findings import Finding

WHITE = "#ffffff"  # what serve's pages and the confirmation mails put the logo on
SEE_THROUGH = 0.1  # a logo with this share of transparent pixels shows what is behind it
MAX_SIDE = 256  # px: the logo is measured on a copy this small


def brand_findings(config: Config, html: str) -> Iterator[Finding]:
    palette = palette_of(config.brand)
    yield from _contrast(config, palette, html)
    yield from _logo(config, palette)


def _contrast(config: Config, palette: Palette, html: str) -> Iterator[Finding]:
    pairs = [
        ("brand.text_color", "the text", palette.text, palette.sheet, TEXT_RATIO),
        ("brand.primary_color", "links", palette.link, palette.sheet, TEXT_RATIO),
    ]
    if 'class="button"' in html:
        pairs.append(("brand.primary_color", "buttons", palette.button, palette.sheet, LARGE_RATIO))
    if 'class="button secondary"' in html:
        pairs.append(("brand.accent_color", "secondary buttons", palette.button_secondary, palette.sheet, LARGE_RATIO))
    for key, what, colour, background, minimum in pairs:
        measured = ratio(colour, background)
        if measured < minimum:
            yield Finding(
                "brand-contrast",
                "warning",
                f"{what} are {colour} on {background}: contrast {measured:.1f}:1, below WCAG's {minimum:g}:1; "
                f"choose a darker {key}",
                config.where(key),
            )


def _logo(config: Config, palette: Palette) -> Iterator[Finding]:
    """A logo whose visible pixels are (on average) close to the colour behind it: a white logo on a light band."""
    try:
        path = logo_file(config)
        background_name = load_theme(config.theme_dir).logo_background
    except BroadsheetError:  # build reports a missing logo or theme
        return
    colour = _visible_colour(path) if path else None
    if colour is None:
        return
    behind = {"masthead": palette.masthead, "sheet": palette.sheet, "page": palette.page}[background_name]
    places = {
        f"the email's {background_name} ({behind})": behind,
        f"serve's pages and confirmation mails ({WHITE})": WHITE,
    }
    for place, background in places.items():
        measured = ratio(colour, background)
        if measured < LARGE_RATIO:
            yield Finding(
                "logo-background",
                "warning",
                f"the logo (mostly {colour}) hardly shows on {place}: contrast {measured:.1f}:1; "
                "give it a background of its own or use a version in a darker colour",
                config.where("brand.logo"),
            )


def _visible_colour(path: Path) -> str | None:
    """The mean colour of a logo's opaque pixels, when enough of it is see-through to show what is behind."""
    try:
        with Image.open(path) as image:
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            rgba = image.convert("RGBA")
    except (OSError, UnidentifiedImageError):
        return None
    alpha = rgba.getchannel("A")
    histogram = alpha.histogram()
    opaque = sum(histogram[128:])
    if opaque == 0 or opaque > (1 - SEE_THROUGH) * rgba.width * rgba.height:
        return None
    mask = alpha.point(lambda a: 255 if a >= 128 else 0)
    red, green, blue = (
        sum(i * n for i, n in enumerate(channel.histogram(mask))) / opaque for channel in rgba.split()[:3]
    )
    return f"#{round(red):02x}{round(green):02x}{round(blue):02x}"
