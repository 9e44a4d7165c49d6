"""Local images checked before they are published: inside the project, and real PNG, JPEG or GIF files."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from PIL import Image as Picture
from PIL import UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "GIF")  # what every mail client shows; SVG and WebP are not among them
FORMAT_HINT = "use a PNG, JPEG or GIF file"


class ImageProblem(ValueError):
    """Why a local file cannot be published as an image: ``problem`` ("not found", …) and ``fix``."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def published_src(base_url: str, slug: str, name: str) -> str:
    """The address of ``images/<name>`` once ``dist/<slug>/`` is published at ``base_url`` (relative without)."""
    return f"{base_url.rstrip('/')}/{quote(slug)}/images/{quote(name)}" if base_url else f"images/{quote(name)}"


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``… the first not in ``taken`` (one folder of published images)."""
    stem, dot, suffix = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{dot}{suffix}" if dot else f"{name}-{n}"
    return candidate


def check_local_image(path: Path, roots: Iterable[Path]) -> tuple[int, int]:
    """(width, height) of ``path`` when it is a PNG, JPEG or GIF file inside one of ``roots``
    (symbolic links followed first); ImageProblem otherwise."""
    path = Path(path).resolve()
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise ImageProblem("not found", f"add the file {path} or fix the path") from None
    if not any(path.is_relative_to(Path(root).resolve()) for root in roots):
        raise ImageProblem("outside the project", "copy it into the issue folder")  # everything published is public
    if not stat.S_ISREG(mode):
        raise ImageProblem("is not a file", FORMAT_HINT)
    return image_size(path)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, JPEG or GIF file, checked by its content; ImageProblem when it is none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Picture.DecompressionBombWarning)
            with Picture.open(path, formats=FORMATS) as picture:
                size = picture.size
                picture.verify()  # reads the structure (PNG chunks and their checksums) without decoding
    except UnidentifiedImageError:
        raise ImageProblem(f"is not a PNG, JPEG or GIF{_kind(path)}", FORMAT_HINT) from None
    except (Picture.DecompressionBombError, Picture.DecompressionBombWarning):
        raise ImageProblem("has too many pixels for an email", "scale it down to at most 2000 px wide") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageProblem(f"is damaged ({exc})", "export the image again") from None
    return size


def _kind(path: Path) -> str:
    """A word on what the file seems to be, for the error message."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(256).lstrip()
    except OSError:
        return ""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return " (WebP, which Outlook cannot show)"
    if b"<svg" in head.lower() or (head.startswith(b"<?xml") and path.suffix.lower() == ".svg"):
        return " (SVG, which Gmail and Outlook cannot show)"
    return ""
