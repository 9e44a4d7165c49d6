"""The site's icons, made from the brand logo with Pillow: square PNGs, the logo centred on transparency."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from broadsheet.core.errors import PublishError

SIZES = {"favicon": 32, "touch": 180}


def icons(logo: Path, *, where: str) -> dict[str, bytes]:
    """PNG bytes for each of SIZES (the same logo always gives the same bytes: no dates, no metadata)."""
    try:
        with Image.open(logo) as image:
            image.load()
            square = _squared(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError) as exc:
        raise PublishError(
            f"cannot make a favicon from the logo: {exc}", where=where, fix="use a PNG, JPEG or GIF logo"
        ) from None
    return {name: _png(square.resize((size, size), Image.Resampling.LANCZOS)) for name, size in SIZES.items()}


def _squared(image: Image.Image) -> Image.Image:
    side = max(image.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return square


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
