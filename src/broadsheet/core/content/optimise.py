"""Local images made ready to mail: resized to twice their displayed width, re-encoded, stripped of metadata.

JPEG becomes progressive at quality 82, PNG is re-encoded with ``optimize``; a GIF keeps its frames
as they are (animation) but loses its comment and application blocks but the looping one. Nothing is
kept but the pixels and the colour profile (wide-gamut photos need it to show their colours): EXIF (a
phone's GPS position, the camera's serial), XMP, IPTC, PNG text chunks and JPEG comments are dropped, the
EXIF orientation applied first. The
result is cached under ``<root>/.broadsheet/cache/images/`` by the digest of the source bytes and the
settings, so a warm build or preview opens no image; its name carries the digest of its own bytes. Each
use touches the cached file; whenever a new one is written, those unused for UNUSED_FOR (images since
replaced, issues removed) go, so the cache does not grow for ever.
Pillow's encoders are deterministic, so the same source gives the same bytes and name everywhere.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as Picture
from PIL import ImageOps
from PIL import __version__ as PILLOW_VERSION

from .images import ImageProblem

COLUMN_WIDTH = 600  # px: the theme's column; images are shown at most this wide
DENSITY = 2  # pixels per CSS pixel kept: sharp on high-density screens, no more
JPEG_QUALITY = 82
RECIPE = f"2:q{JPEG_QUALITY}:pillow{PILLOW_VERSION}"  # a change here makes every cached result stale
CACHE_FOLDER = Path(".broadsheet") / "cache" / "images"
UNUSED_FOR = 180 * 86_400  # seconds after which a cached image no build or preview used is removed


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
    """The optimised copy of ``source`` (already checked to be a PNG, JPEG or GIF), from ``cache`` when there;
    ImageProblem when Pillow cannot re-encode it."""
    data = Path(source).read_bytes()
    key = hashlib.sha256(f"{RECIPE}:{max_width}:".encode() + data).hexdigest()[:32]
    folder = _writable(Path(cache))
    for found in folder.glob(f"{key}.*"):  # <key>.<width>.<digest>.<ext>
        _, cached_width, digest, extension = found.name.split(".", 3)
        try:
            os.utime(found)  # used now: not one to remove
            size = found.stat().st_size
        except FileNotFoundError:  # removed meanwhile by another build's clean-up: made again below
            break
        except OSError:  # a cache that cannot be written is still read
            size = found.stat().st_size
        return Optimised(source, found, _name(source, digest, extension), len(data), size, int(cached_width))
    try:
        encoded, width, extension = _encode(data, max_width)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # a mode or a structure Pillow cannot write
        raise ImageProblem(f"cannot be optimised ({exc})", "export it again as an 8-bit PNG or JPEG") from None
    digest = hashlib.sha256(encoded).hexdigest()[:10]
    target = folder / f"{key}.{width}.{digest}.{extension}"
    _write_atomically(target, encoded)
    _remove_unused(folder)
    return Optimised(source, target, _name(source, digest, extension), len(data), len(encoded), width)


def _encode(data: bytes, max_width: int) -> tuple[bytes, int, str]:
    """(bytes, width, extension) of the image in ``data`` made ready to mail."""
    with Picture.open(io.BytesIO(data)) as picture:
        kind = picture.format
        if kind == "GIF":  # Pillow would lose an animation's timing: only the metadata blocks go
            return strip_gif(data), picture.size[0], "gif"
        icc = picture.info.get("icc_profile")
        transparency = picture.info.get("transparency")
        image = ImageOps.exif_transpose(picture)  # the orientation is in the EXIF that is about to go
        image.info = {}  # Pillow writes some of it back by itself (a JPEG's comment): only what is passed below
        if image.width > max_width:
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if transparency is not None or "A" in image.mode else "RGB")
                transparency = None
            image = image.resize((max_width, round(image.height * max_width / image.width)), Picture.Resampling.LANCZOS)
        out = io.BytesIO()
        if kind == "JPEG":
            if image.mode not in ("RGB", "L"):
                image = image.convert("RGB")  # CMYK and the rest: what every mail client shows right
                icc = None
            image.save(
                out,
                "JPEG",
                quality=JPEG_QUALITY,
                optimize=True,
                progressive=True,
                **({"icc_profile": icc} if icc else {}),
            )
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
    uid = os.getuid() if hasattr(os, "getuid") else 0
    fallback = Path(tempfile.gettempdir()) / f"broadsheet-images-{uid}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    status = fallback.lstat()
    if fallback.is_symlink() or status.st_uid != uid or status.st_mode & 0o077:  # someone else's folder
        return Path(tempfile.mkdtemp(prefix="broadsheet-images-"))
    return fallback


def _remove_unused(folder: Path) -> None:
    """Remove what no build or preview used for UNUSED_FOR: old results and half-written files. Run after
    each new result: listing the folder is cheap beside encoding an image."""
    now = time.time()
    for entry in folder.iterdir():
        try:
            if entry.is_file() and now - entry.stat().st_mtime > UNUSED_FOR:
                entry.unlink()
        except OSError:  # gone meanwhile, or not ours to remove
            continue


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


GIF_KEPT_APPLICATIONS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")  # how often an animation loops


def strip_gif(data: bytes) -> bytes:
    """``data`` (a GIF already read by Pillow) without comment blocks and application blocks (XMP, …) but
    the looping one; the frames, palettes and timing are copied byte for byte."""
    out = bytearray(data[:13])
    position = 13 + _palette_size(data[10])
    out += data[13:position]
    while position < len(data):
        introducer = data[position]
        if introducer == 0x3B:  # trailer
            out.append(0x3B)
            break
        if introducer == 0x21:  # extension: label, then data sub-blocks
            label = data[position + 1]
            end = _sub_blocks_end(data, position + 2)
            identifier = data[position + 3 : position + 14] if label == 0xFF else b""
            if label in (0xF9, 0x01) or identifier in GIF_KEPT_APPLICATIONS:
                out += data[position:end]
            position = end
        elif introducer == 0x2C:  # image: descriptor, local palette, LZW code size, data sub-blocks
            start = position + 10 + _palette_size(data[position + 9])
            end = _sub_blocks_end(data, start + 1)
            out += data[position:end]
            position = end
        else:  # not a block Pillow would have read: keep the file as it is
            return data
    return bytes(out)


def _palette_size(packed: int) -> int:
    return 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0


def _sub_blocks_end(data: bytes, position: int) -> int:
    """Where the data sub-blocks starting at ``position`` end (after their zero-length terminator)."""
    while position < len(data) and data[position]:
        position += data[position] + 1
    return position + 1
