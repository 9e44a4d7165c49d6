"""Image dimensions read from file headers (PNG, GIF, JPEG, WebP), without decoding the image."""

from __future__ import annotations

import struct
from pathlib import Path
from urllib.parse import quote


def published_src(base_url: str, slug: str, name: str) -> str:
    """The address of ``images/<name>`` once ``dist/<slug>/`` is published at ``base_url`` (relative without)."""
    return f"{base_url.rstrip('/')}/{quote(slug)}/images/{quote(name)}" if base_url else f"images/{quote(name)}"


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) in pixels, or None when the format is not recognised."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return struct.unpack("<HH", head[6:10])
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp_size(head)
            if head[:2] == b"\xff\xd8":
                handle.seek(2)
                return _jpeg_size(handle)
    except (OSError, struct.error):
        return None
    return None


def _jpeg_size(handle) -> tuple[int, int] | None:
    while True:
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        if marker[1] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            handle.read(3)  # segment length, precision
            height, width = struct.unpack(">HH", handle.read(4))
            return width, height
        (length,) = struct.unpack(">H", handle.read(2))
        handle.seek(length - 2, 1)


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    return None
