"""Image optimisation benchmark: time and bytes saved on the sample's images and on a 12-megapixel photo.

Run by hand: .venv/bin/python bench/images.py  — figures go to docs/performance.md.
Cold: ``content.optimise.optimise`` into an empty cache (decode, resize, encode, write). Warm: the same
call again (the source is read and hashed; no image is decoded). Median of 5 runs each. Then the whole
``build_issue`` of the sample with the photo added to an article, cold cache and warm (what the preview
pays on each save).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from PIL import Image  # noqa: E402

from broadsheet.core.config import load_config  # noqa: E402
from broadsheet.core.content.optimise import CACHE_FOLDER, COLUMN_WIDTH, max_width_for, optimise  # noqa: E402
from broadsheet.core.render import build_issue  # noqa: E402

SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant" / "images" / "chengdu-flemish-brabant.png"
LOGO = ROOT / "assets" / "bcecc-logo.png"


def phone_photo(path: Path) -> Path:
    """A 4000 × 3000 JPEG at quality 92 with a photo's kind of detail (gradients and noise) and GPS EXIF."""
    width, height = 4000, 3000
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40)
    picture = Image.merge("RGB", (gradient, noise, gradient.rotate(90).resize((width, height))))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (30.0, 39.0, 36.0), 3: "E", 4: (104.0, 3.0, 58.0)}
    picture.save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def measure(source: Path, max_width: int, runs: int = 5) -> tuple[float, float, int, int]:
    """(cold median s, warm median s, bytes before, bytes after)."""
    colds, warms = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            result = optimise(source, max_width=max_width, cache=Path(cache))
            colds.append(time.perf_counter() - start)
            start = time.perf_counter()
            optimise(source, max_width=max_width, cache=Path(cache))
            warms.append(time.perf_counter() - start)
    return statistics.median(colds), statistics.median(warms), result.original_bytes, result.optimised_bytes


def main() -> None:
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        photo = phone_photo(Path(folder) / "photo.jpg")
        cases = [
            ("sample article image (PNG)", SAMPLE, max_width_for(COLUMN_WIDTH)),
            ("sample logo (PNG, logo_width 160)", LOGO, max_width_for(160)),
            ("12-megapixel photo (JPEG 4000×3000)", photo, max_width_for(COLUMN_WIDTH)),
        ]
        print("| image | size | cold | warm | bytes before → after | saved |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, path, width in cases:
            cold, warm, before, after = measure(path, width)
            with Image.open(path) as picture:
                size = "×".join(map(str, picture.size))
            print(
                f"| {label} | {size} | {cold * 1000:.0f} ms | {warm * 1000:.1f} ms | "
                f"{before / 1024:.0f} KB → {after / 1024:.0f} KB | {1 - after / before:.0%} |"
            )
        cold, warm = build_with_photo(photo)
        print(f"\nbuild_issue of the sample + the photo: cold cache {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms")


def build_with_photo(photo: Path, runs: int = 5) -> tuple[float, float]:
    """(cold median s, warm median s) of build_issue on a copy of the sample with ``photo`` in an article."""
    colds, warms = [], []
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for name in ("broadsheet.toml", "subscribers.example.csv"):
            shutil.copy(ROOT / name, project / name)
        for name in ("templates", "assets"):
            shutil.copytree(ROOT / name, project / name)
        issue = project / "issues" / SAMPLE.parents[1].name
        shutil.copytree(SAMPLE.parents[1], issue)
        shutil.copy(photo, issue / "images" / "photo.jpg")
        (issue / "articles" / "03-photo.md").write_text("---\ntitle: Photo\n---\n![A photo](../images/photo.jpg)\n")
        config = load_config(project / "broadsheet.toml")
        build_issue(issue, config)  # imports, cssutils' first use
        for _ in range(runs):
            shutil.rmtree(project / CACHE_FOLDER, ignore_errors=True)
            start = time.perf_counter()
            build_issue(issue, config)
            colds.append(time.perf_counter() - start)
            start = time.perf_counter()
            build_issue(issue, config)
            warms.append(time.perf_counter() - start)
    return statistics.median(colds), statistics.median(warms)


if __name__ == "__main__":
    main()
