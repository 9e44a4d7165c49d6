"""Small issue folders written by tests."""

from __future__ import annotations

import re
from pathlib import Path


def write_issue(root: Path, *, issue: str | None = None, articles: dict[str, str] | None = None) -> Path:
    """An issue folder under ``root``; defaults to a minimal valid issue with one article."""
    folder = root / "issues" / "2024-01-02-test-issue"
    (folder / "articles").mkdir(parents=True, exist_ok=True)
    (folder / "issue.md").write_text(
        issue
        if issue is not None
        else "---\ntitle: Test issue\npreheader: A short preheader\ndate: 2024-01-02\nnumber: 3\n---\nHello intro.\n",
        encoding="utf-8",
    )
    for name, text in (
        articles if articles is not None else {"01-one.md": "---\ntitle: One\n---\nBody one.\n"}
    ).items():
        (folder / "articles" / name).write_text(text, encoding="utf-8")
    return folder


def write_image(path: Path, size: tuple[int, int] = (40, 20), image_format: str = "PNG") -> Path:
    """A real image file (Pillow), so that it passes the content check of published images."""
    from PIL import Image as Picture

    path.parent.mkdir(parents=True, exist_ok=True)
    Picture.new("RGB", size, (31, 78, 121)).save(path, format=image_format)
    return path


def hashed(name: str) -> str:
    """A regular expression for ``name`` as the build publishes it: ``<stem>-<10 hex digits>.<ext>``
    (content/optimise.py; JPEG files end in .jpg)."""
    stem, _, suffix = name.rpartition(".")
    suffix = "jpg" if suffix.lower() in ("jpg", "jpeg") else suffix
    return re.escape(stem) + r"-[0-9a-f]{10}\." + re.escape(suffix)
