"""Images optimised on build: resized, re-encoded, stripped of metadata, named by content, cached; lint weighs them."""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from support.issues import hashed
from test_cli_build import SAMPLE_NAME, run_cli

from broadsheet.core.content.optimise import CACHE_FOLDER, UNUSED_FOR, optimise
from broadsheet.faces.cli import main

ISSUE = f"issues/{SAMPLE_NAME}"
GPS = {1: "N", 2: (30.0, 39.0, 36.0), 3: "E", 4: (104.0, 3.0, 58.0)}  # a phone photo taken in Chengdu


@pytest.fixture
def project(cold_project: Path) -> Path:
    """The sample project before its first build: these tests are about the optimising itself."""
    return cold_project


def gps_photo(path: Path, size=(4000, 3000), orientation: int | None = None) -> Path:
    """A real JPEG with EXIF: GPS position, camera make, and optionally an orientation."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = GPS
    if orientation:
        exif[0x0112] = orientation
    picture = Image.new("RGB", size, (200, 120, 40))
    for x in range(0, size[0], 97):  # some detail, so the encoder has something to do
        picture.paste((20, 60, 200), (x, 0, x + 20, size[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def use_image(project: Path, markdown: str, name: str = "03-photo.md") -> None:
    path = project / "issues" / SAMPLE_NAME / "articles" / name
    path.write_text(f"---\ntitle: Photo\n---\nSee below.\n\n{markdown}\n", encoding="utf-8")


def published(project: Path, pattern: str) -> Path:
    folder = project / "dist" / SAMPLE_NAME / "images"
    matches = [p for p in folder.iterdir() if re.fullmatch(pattern, p.name)]
    assert len(matches) == 1, sorted(p.name for p in folder.iterdir())
    return matches[0]


def test_a_phone_photo_is_resized_stripped_of_its_gps_position_and_progressive(project):
    source = gps_photo(project / "issues" / SAMPLE_NAME / "images" / "holiday.jpeg")
    with Image.open(source) as original:
        assert original.getexif().get_ifd(0x8825)  # the source really carries a position
    use_image(project, "![The square](../images/holiday.jpeg)")
    result = run_cli(project, "build", ISSUE)
    assert result.returncode == 0, result.stderr
    out = published(project, hashed("holiday.jpg"))
    with Image.open(out) as photo:
        assert photo.format == "JPEG" and photo.size == (1200, 900)
        assert photo.info.get("progressive") or photo.info.get("progression")
        assert not photo.getexif() and "exif" not in photo.info
    data = out.read_bytes()
    assert b"Exif" not in data and b"PhoneMaker" not in data
    assert len(data) < source.stat().st_size / 5
    html = (project / "dist" / SAMPLE_NAME / "email.html").read_text(encoding="utf-8")
    assert f"images/{out.name}" in html and 'width="536"' in html
    saved = re.search(r"images: 2 optimised, (.+) → (.+) \(saved (.+)\)", result.stdout)
    assert saved, result.stdout


def test_the_exif_orientation_is_applied_before_it_is_dropped(project):
    gps_photo(project / "issues" / SAMPLE_NAME / "images" / "upright.jpg", size=(1600, 900), orientation=6)
    use_image(project, "![Turned](../images/upright.jpg)")
    assert run_cli(project, "build", ISSUE).returncode == 0
    with Image.open(published(project, hashed("upright.jpg"))) as photo:
        assert photo.size == (900, 1600)  # turned as the phone showed it; not wider than 1,200 px


def test_png_text_chunks_are_dropped_and_small_images_keep_their_size(project):
    path = project / "issues" / SAMPLE_NAME / "images" / "chart.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Private")
    info.add_text("Comment", "taken at home")
    Image.new("RGB", (300, 200), (10, 200, 30)).save(path, "PNG", pnginfo=info)
    use_image(project, "![A chart](../images/chart.png)")
    assert run_cli(project, "build", ISSUE).returncode == 0
    out = published(project, hashed("chart.png"))
    with Image.open(out) as chart:
        assert chart.size == (300, 200) and not chart.text
    assert b"Jane Private" not in out.read_bytes()


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, first bytes of the payload) of each segment of a JPEG up to the start of the scan."""
    segments, position = [], 2
    while position < len(data) and data[position] == 0xFF:
        marker, length = data[position + 1], int.from_bytes(data[position + 2 : position + 4], "big")
        segments.append((marker, data[position + 4 : position + 4 + min(length - 2, 14)]))
        if marker == 0xDA:  # start of scan: the pixels follow
            break
        position += 2 + length
    return segments


def with_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """``data`` (a JPEG) with one more segment after its SOI marker."""
    return data[:2] + bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def test_a_small_jpeg_loses_its_comment_and_every_metadata_segment_but_its_colour_profile(project):
    from PIL import ImageCms

    path = project / "issues" / SAMPLE_NAME / "images" / "small.jpg"
    picture = Image.new("RGB", (300, 200), (200, 120, 40))  # narrower than the column: not resized
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x8825] = GPS
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", comment=b"Jane Private, at home", exif=exif.tobytes(), icc_profile=icc)
    data = with_segment(buffer.getvalue(), 0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Jane Private</x:xmpmeta>")
    data = with_segment(data, 0xED, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0cJane Private")  # IPTC
    path.write_bytes(data)
    assert {marker for marker, _ in jpeg_segments(data)} >= {0xFE, 0xE1, 0xE2, 0xED}  # all there to begin with
    use_image(project, "![Small](../images/small.jpg)")
    assert main(["--config", str(project / "broadsheet.toml"), "build", str(project / ISSUE)]) == 0
    out = published(project, hashed("small.jpg")).read_bytes()
    kept = [(marker, head) for marker, head in jpeg_segments(out) if marker == 0xFE or 0xE0 <= marker <= 0xEF]
    assert [marker for marker, _ in kept] == [0xE0, 0xE2], kept  # JFIF, and the ICC profile (for the colours)
    assert kept[0][1].startswith(b"JFIF\0") and kept[1][1].startswith(b"ICC_PROFILE\0")
    assert b"Jane Private" not in out
    with Image.open(io.BytesIO(out)) as small:
        assert small.size == (300, 200) and small.info.get("icc_profile") == icc


def test_the_logo_is_kept_at_twice_its_displayed_width(project):
    logo = project / "assets" / "wide-logo.png"
    Image.new("RGB", (1000, 250), (255, 255, 255)).save(logo)
    config = project / "broadsheet.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("assets/bcecc-logo.png", "assets/wide-logo.png"), encoding="utf-8"
    )
    assert run_cli(project, "build", ISSUE).returncode == 0
    with Image.open(published(project, "logo-" + hashed("wide-logo.png"))) as shown:
        assert shown.size == (320, 80)  # logo_width = 160


def test_names_and_bytes_are_the_same_wherever_and_however_warm(project, tmp_path, sample_image_cache):
    """The sample's own images come from the session's cache (made cold in another folder); the new
    photo is encoded cold here and in the copy."""
    shutil.copytree(sample_image_cache, project / CACHE_FOLDER)
    gps_photo(project / "issues" / SAMPLE_NAME / "images" / "holiday.jpg")
    use_image(project, "![The square](../images/holiday.jpg)")
    other = tmp_path / "elsewhere"
    shutil.copytree(project, other)
    assert run_cli(project, "build", ISSUE).returncode == 0
    cold = {p.name: p.read_bytes() for p in (project / "dist" / SAMPLE_NAME / "images").iterdir()}
    cached = sorted((project / CACHE_FOLDER).iterdir())
    files = [p.stat().st_ino for p in cached]  # a result written again is a new file (a rename)
    shutil.rmtree(project / "dist")
    assert run_cli(project, "build", ISSUE).returncode == 0  # warm: read from the cache, not encoded again
    assert [p.stat().st_ino for p in sorted((project / CACHE_FOLDER).iterdir())] == files
    warm = {p.name: p.read_bytes() for p in (project / "dist" / SAMPLE_NAME / "images").iterdir()}
    assert run_cli(other, "build", ISSUE).returncode == 0
    elsewhere = {p.name: p.read_bytes() for p in (other / "dist" / SAMPLE_NAME / "images").iterdir()}
    assert cold == warm == elsewhere


def test_a_changed_image_gets_a_new_name(project, tmp_path):
    source = gps_photo(tmp_path / "photo.jpg", size=(800, 600))
    first = optimise(source, max_width=1200, cache=tmp_path / "cache")
    Image.new("RGB", (800, 600), (1, 2, 3)).save(source, "JPEG")
    second = optimise(source, max_width=1200, cache=tmp_path / "cache")
    assert first.name != second.name and first.file.read_bytes() != second.file.read_bytes()
    assert optimise(source, max_width=400, cache=tmp_path / "cache").width == 400  # the settings are in the key


def test_the_cache_keeps_what_is_used_and_drops_what_no_build_used_for_half_a_year(tmp_path):
    cache = tmp_path / "cache"
    kept = optimise(gps_photo(tmp_path / "kept.jpg", size=(800, 600)), max_width=1200, cache=cache)
    replaced = optimise(gps_photo(tmp_path / "old.jpg", size=(640, 480)), max_width=1200, cache=cache)
    half_written = cache / ".partial-abc"
    half_written.write_bytes(b"killed mid-write")
    long_ago = time.time() - UNUSED_FOR - 86_400
    for path in (kept.file, replaced.file, half_written):
        os.utime(path, (long_ago, long_ago))
    assert optimise(tmp_path / "kept.jpg", max_width=1200, cache=cache).file == kept.file  # used again: touched
    Image.new("RGB", (300, 200), (9, 9, 9)).save(tmp_path / "new.jpg", "JPEG")
    new = optimise(tmp_path / "new.jpg", max_width=1200, cache=cache)  # a new result: the unused ones go
    assert sorted(cache.iterdir()) == sorted([kept.file, new.file])


def test_a_cached_image_removed_as_it_is_found_is_made_again(tmp_path):
    """Another build's clean-up can remove an entry between the listing that found it and its use."""
    cache = tmp_path / "cache"
    source = gps_photo(tmp_path / "photo.jpg", size=(800, 600))
    first = optimise(source, max_width=1200, cache=cache)
    made = first.file.read_bytes()
    first.file.unlink()
    first.file.symlink_to(tmp_path / "gone")  # listed under its name, but nothing there any more
    again = optimise(source, max_width=1200, cache=cache)
    assert again.file == first.file and not again.file.is_symlink() and again.file.read_bytes() == made


def test_a_project_whose_cache_cannot_be_written_still_builds(project, tmp_path):
    (project / ".broadsheet" / "cache").mkdir(parents=True)
    (project / CACHE_FOLDER).write_text("a file where the cache folder would be")  # mkdir fails, even for root
    gps_photo(project / "issues" / SAMPLE_NAME / "images" / "holiday.jpg", size=(1600, 1200))
    use_image(project, "![The square](../images/holiday.jpg)")
    assert (
        main(
            [
                "--config",
                str(project / "broadsheet.toml"),
                "build",
                str(project / ISSUE),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    with Image.open(next((tmp_path / "out" / SAMPLE_NAME / "images").glob("holiday-*.jpg"))) as photo:
        assert photo.width == 1200 and not photo.getexif()


def noise(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A PNG of random pixels: it cannot be compressed, so it stays heavy after optimisation."""
    generator = random.Random(seed)
    Image.frombytes("RGB", size, generator.randbytes(size[0] * size[1] * 3)).save(path, "PNG")
    return path


def test_lint_warns_about_a_heavy_image_and_a_heavy_issue(project, capsys):
    images = project / "issues" / SAMPLE_NAME / "images"
    noise(images / "static.png", (400, 300), seed=1)  # ~350 KB
    for n in range(3):
        noise(images / f"snow-{n}.png", (400, 300), seed=2 + n)
    use_image(
        project,
        "![Static](../images/static.png)\n\n" + "\n\n".join(f"![Snow {n}](../images/snow-{n}.png)" for n in range(3)),
    )
    capsys.readouterr()
    main(["--config", str(project / "broadsheet.toml"), "lint", str(project / ISSUE), "--no-validator"])
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "image static.png is" in line)
    assert "03-photo.md:6" in line and "over 200 KB" in line
    assert re.search(r"the issue's images weigh 1\.\d MB after optimisation, over 1 MB", out)


def test_lint_names_each_article_that_uses_a_shared_image(project, capsys):
    images = project / "issues" / SAMPLE_NAME / "images"
    Image.new("RGB", (50, 50), (0, 0, 0)).save(images / "shared.png")
    use_image(project, "![Shared](../images/shared.png)", name="03-first.md")
    use_image(project, "![](../images/shared.png)", name="04-second.md")
    capsys.readouterr()
    main(["--config", str(project / "broadsheet.toml"), "lint", str(project / ISSUE), "--no-validator"])
    alt = [line for line in capsys.readouterr().out.splitlines() if "image-alt" in line or "alt text" in line]
    assert alt and all("04-second.md:6" in line for line in alt), alt


def test_a_gif_keeps_its_animation_and_loses_its_comment(project):
    frames = [Image.new("RGB", (60, 40), colour) for colour in ((200, 16, 46), (31, 78, 121), (240, 200, 0))]
    path = project / "issues" / SAMPLE_NAME / "images" / "spinner.gif"
    frames[0].save(
        path,
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
        comment=b"made by Jane Private at home",
    )
    use_image(project, "![Spinner](../images/spinner.gif)")
    assert run_cli(project, "build", ISSUE).returncode == 0
    out = published(project, hashed("spinner.gif"))
    assert b"Jane Private" not in out.read_bytes()
    with Image.open(out) as gif, Image.open(path) as original:
        assert gif.n_frames == 3 and gif.info.get("loop") == 0 and "comment" not in gif.info
        durations = []
        for n in range(3):
            gif.seek(n)
            original.seek(n)
            durations.append(gif.info["duration"])
            assert gif.convert("RGB").tobytes() == original.convert("RGB").tobytes()
        assert durations == [100, 200, 300]


def test_a_rebuild_removes_the_image_it_replaced(project):
    path = project / "issues" / SAMPLE_NAME / "images" / "chart.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(path)
    use_image(project, "![A chart](../images/chart.png)")
    assert run_cli(project, "build", ISSUE).returncode == 0
    first = published(project, hashed("chart.png"))
    Image.new("RGB", (300, 200), (200, 10, 30)).save(path)
    assert run_cli(project, "build", ISSUE).returncode == 0
    second = published(project, hashed("chart.png"))  # exactly one chart: the old one is gone
    assert second.name != first.name and not first.exists()


def test_a_truncated_jpeg_is_one_line_naming_its_markdown(project):
    path = gps_photo(project / "issues" / SAMPLE_NAME / "images" / "cut.jpg", size=(1600, 1200))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # its header reads; its pixels do not
    use_image(project, "![Cut](../images/cut.jpg)")
    result = run_cli(project, "build", ISSUE)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "03-photo.md:6" in line and "image cannot be optimised" in line and "export it again" in line
