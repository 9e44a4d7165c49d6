"""Local images made ready to mail: resized to twice their displayed width, re-encoded, stripped of metadata.

JPEG becomes progressive at quality 82, PNG is re-encoded with ``optimize``; GIF is copied as it is
(animation). Nothing is kept but the pixels and the colour profile: EXIF (a phone's GPS position, the
camera's serial), XMP, text chunks and comments are dropped, the EXIF orientation applied first. The
result is cached under ``<root>/.broadsheet/cache/images/`` by the digest of the source bytes and the
settings, so a warm build or preview opens no image; its name carries the digest of its own bytes.
Pillow's encoders are deterministic, so the same source gives the same bytes and name everywhere.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as Picture
from PIL import ImageOps
from PIL import __version__ as PILLOW_VERSION

COLUMN_WIDTH = 600  # px: the theme's column; images are shown at most this wide
DENSITY = 2  # pixels per CSS pixel kept: sharp on high-density screens, no more
JPEG_QUALITY = 82
RECIPE = f"1:q{JPEG_QUALITY}:pillow{PILLOW_VERSION}"  # a change here makes every cached result stale
CACHE_FOLDER = Path(".broadsheet") / "cache" / "images"


@dataclass(frozen=True)
class Optimised:
    """An image ready to publish: ``file`` holds the bytes, ``name`` is ``<stem>-<digest>.<ext>``."""

    source: Path
    file: Path
    name: str
    original_bytes: int
    optimised_bytes: int
    width: int

    @property
    def saved(self) -> int:
        return self.original_bytes - self.optimised_bytes


def max_width_for(displayed: int) -> int:
    """The widest an image shown ``displayed`` CSS pixels wide is kept."""
    return displayed * DENSITY


def optimise(source: Path, *, max_width: int, cache: Path) -> Optimised:
    """The optimised copy of ``source`` (already checked to be a PNG, JPEG or GIF), from ``cache`` when there."""
    data = Path(source).read_bytes()
    key = hashlib.sha256(f"{RECIPE}:{max_width}:".encode() + data).hexdigest()[:32]
    folder = _writable(Path(cache))
    for found in folder.glob(f"{key}.*"):  # <key>.<width>.<digest>.<ext>
        _, width, digest, extension = found.name.split(".", 3)
        return Optimised(source, found, _name(source, digest, extension), len(data), found.stat().st_size, int(width))
    encoded, width, extension = _encode(data, max_width)
    digest = hashlib.sha256(encoded).hexdigest()[:10]
    target = folder / f"{key}.{width}.{digest}.{extension}"
    _write_atomically(target, encoded)
    return Optimised(source, target, _name(source, digest, extension), len(data), len(encoded), width)


def _encode(data: bytes, max_width: int) -> tuple[bytes, int, str]:
    """(bytes, width, extension) of the image in ``data`` made ready to mail."""
    with Picture.open(io.BytesIO(data)) as picture:
        kind = picture.format
        if kind == "GIF":  # animated GIFs lose their frames when resized by Pillow: sent as they are
            return data, picture.size[0], "gif"
        icc = picture.info.get("icc_profile")
        transparency = picture.info.get("transparency")
        image = ImageOps.exif_transpose(picture)  # the orientation is in the EXIF that is about to go
        if image.width > max_width:
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if transparency is not None or "A" in image.mode else "RGB")
                transparency = None
            image = image.resize((max_width, round(image.height * max_width / image.width)), Picture.LANCZOS)
        out = io.BytesIO()
        if kind == "JPEG":
            if image.mode not in ("RGB", "L"):
                image = image.convert("RGB")  # CMYK and the rest: what every mail client shows right
                icc = None
            image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True,
                       **({"icc_profile": icc} if icc else {}))
            return out.getvalue(), image.width, "jpg"
        options = {"transparency": transparency} if transparency is not None else {}
        image.save(out, "PNG", optimize=True, **options, **({"icc_profile": icc} if icc else {}))
        return out.getvalue(), image.width, "png"


def _name(source: Path, digest: str, extension: str) -> str:
    return f"{Path(source).stem}-{digest}.{extension}"


def _writable(folder: Path) -> Path:
    """``folder``, created; a folder in the system's temporary space when the project is read-only."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"broadsheet-images-{os.getuid() if hasattr(os, 'getuid') else 0}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    return fallback


def _write_atomically(target: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: a concurrent build never reads half an image."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
