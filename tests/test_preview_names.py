"""The preview of an issue whose folder and images are named in another script (成都茶馆…): the logo, the
hero and the article's images load from the preview server, over real HTTP and in headless Chromium."""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from support.browser import browser, require_chromium, wait_for
from support.issues import write_image

from broadsheet.faces.preview import Preview

SLUG = "2021-06-01-chengdu-flemish-brabant"
NAME = "2021-06-01-成都茶馆-文化"


def chinese_named(project: Path) -> Path:
    """The sample issue moved to a folder named in Chinese, with one more image named in Chinese."""
    folder = project / "issues" / NAME
    (project / "issues" / SLUG).rename(folder)
    write_image(folder / "images" / "茶馆 一角.png", size=(120, 60))
    article = folder / "articles" / "01-chengdu-flemish-brabant.md"
    text = article.read_text(encoding="utf-8")
    article.write_text(text + "\n![A tea house](<../images/茶馆 一角.png>)\n", encoding="utf-8")
    return folder


def get(port: int, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type") or "", body


@pytest.mark.parametrize("page", ["/email.html", "/web.html"])
def test_every_image_of_a_chinese_named_issue_is_served_by_the_preview(project: Path, page: str):
    folder = chinese_named(project)
    with Preview(folder, port=0, config_path=project / "broadsheet.toml", watch=False) as preview:
        assert preview.current.error is None, preview.current.error
        port = preview.server.server_address[1]
        status, _, html = get(port, page)
        sources = re.findall(r'<img[^>]*\ssrc="([^"]+)"', html.decode("utf-8"))
        assert status == 200 and len(sources) == 3, sources  # the logo, the hero, the tea house
        assert all(src.startswith("/images/") for src in sources), sources  # none left pointing at base_url
        names = [unquote(src) for src in sources]
        assert any(name.startswith("/images/logo-") for name in names)
        assert any(name.startswith("/images/茶馆 一角-") for name in names), names
        for src in sources:
            status, kind, body = get(port, src)
            assert (status, kind) == (200, "image/png") and body.startswith(b"\x89PNG"), src


@pytest.mark.browser
def test_chromium_loads_every_image_of_a_chinese_named_issue(project: Path):
    require_chromium()
    folder = chinese_named(project)
    loaded = "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    with Preview(folder, port=0, config_path=project / "broadsheet.toml", watch=False) as preview, browser() as driver:
        driver.get(preview.url + "email.html")
        images = wait_for(
            lambda: (found := driver.execute_script(loaded)) and all(ok for _, ok in found) and found,
            timeout=20,
            what="every image loaded",
        )
        assert len(images) == 3


@pytest.mark.browser
def test_the_screenshot_of_a_chinese_named_issue_shows_its_images(project: Path, tmp_path: Path, monkeypatch):
    """The same issue under a Latin and a Chinese folder name gives the same picture: no broken image."""
    require_chromium()
    from PIL import Image, ImageChops

    from broadsheet.faces.cli import main

    monkeypatch.chdir(project)
    latin = tmp_path / "latin.png"
    assert main(["preview", f"issues/{SLUG}", "--screenshot", str(latin)]) == 0
    (project / "issues" / SLUG).rename(project / "issues" / NAME)
    chinese = tmp_path / "chinese.png"
    assert main(["preview", f"issues/{NAME}", "--screenshot", str(chinese)]) == 0
    with Image.open(latin) as one, Image.open(chinese) as other:
        assert one.size == other.size
        assert ImageChops.difference(one.convert("RGB"), other.convert("RGB")).getbbox() is None
