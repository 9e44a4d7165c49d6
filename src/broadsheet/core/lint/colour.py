"""CSS colours and their WCAG contrast ratio, enough for inlined email HTML."""

from __future__ import annotations

import re

RGB = tuple[int, int, int]

NAMED: dict[str, RGB] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "green": (0, 128, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "silver": (192, 192, 192),
    "maroon": (128, 0, 0),
    "navy": (0, 0, 128),
    "olive": (128, 128, 0),
    "purple": (128, 0, 128),
    "teal": (0, 128, 128),
    "aqua": (0, 255, 255),
    "fuchsia": (255, 0, 255),
    "lime": (0, 255, 0),
    "orange": (255, 165, 0),
    "whitesmoke": (245, 245, 245),
    "lightgray": (211, 211, 211),
    "lightgrey": (211, 211, 211),
    "gainsboro": (220, 220, 220),
    "darkgray": (169, 169, 169),
    "darkgrey": (169, 169, 169),
    "snow": (255, 250, 250),
    "ivory": (255, 255, 240),
    "ghostwhite": (248, 248, 255),
    "floralwhite": (255, 250, 240),
}
_HEX = re.compile(r"#([0-9a-f]{3,8})\b")
_FUNC = re.compile(r"rgba?\(\s*([\d.]+%?)\s*[, ]\s*([\d.]+%?)\s*[, ]\s*([\d.]+%?)\s*(?:[,/]\s*([\d.]+%?)\s*)?\)")
_WORD = re.compile(r"[a-z]+")


def parse_colour(value: str) -> RGB | None:
    """The first opaque colour in a CSS value (``#abc``, ``#aabbcc``, ``rgb()``, a name), else None.

    Transparent and mostly transparent colours give None: they show what is behind them.
    """
    value = value.strip().lower()
    if match := _HEX.search(value):
        return _from_hex(match.group(1))
    if match := _FUNC.search(value):
        if match.group(4) is not None and _channel(match.group(4), 1.0) < 0.5:
            return None
        return tuple(round(_channel(match.group(i), 255.0)) for i in (1, 2, 3))  # type: ignore[return-value]
    for word in _WORD.findall(value):
        if word in NAMED:
            return NAMED[word]
    return None


def _from_hex(digits: str) -> RGB | None:
    if len(digits) in (3, 4):
        digits = "".join(c * 2 for c in digits)
    if len(digits) == 8 and int(digits[6:], 16) < 128:
        return None
    if len(digits) not in (6, 8):
        return None
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _channel(text: str, scale: float) -> float:
    if text.endswith("%"):
        return min(1.0, float(text[:-1]) / 100) * scale
    return min(float(text), scale)


def luminance(colour: RGB) -> float:
    """WCAG relative luminance of an sRGB colour."""

    def linear(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio, 1 (same colour) to 21 (black on white)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hex_of(colour: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)
