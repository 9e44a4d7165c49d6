"""The web archive in real headless Chromium, served from a sub-path by a plain static server and from file://."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.archive import SAMPLE, dated_issue, sample_project
from support.browser import browser, wait_for

from broadsheet.faces.cli import main

pytestmark = pytest.mark.browser


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The sample project and an older issue, published under web/news/archive/ (a base path, not the root)."""
    project = sample_project(tmp_path / "project")
    dated_issue(project, 41, dt.date(2021, 5, 1))
    out = tmp_path / "web" / "news" / "archive"
    assert main(["--config", str(project / "broadsheet.toml"), "publish", "--out", str(out)]) == 0
    return out


@pytest.fixture
def static_server(site: Path):
    handler = functools.partial(QuietHandler, directory=str(site.parents[1]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/news/archive/"
    server.shutdown()
    server.server_close()


def images_loaded(driver) -> list[str]:
    """The src of every image on the page that did not load (naturalWidth 0)."""
    return driver.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )


def test_archive_in_chromium_from_a_base_path(static_server: str):
    with browser(width=900, height=900) as driver:
        driver.get(static_server)
        assert driver.title == "BCECC Newsletter"
        wait_for(
            lambda: driver.execute_script("return document.images.length") > 0 and not images_loaded(driver),
            what="the index's images",
        )
        titles = [a.text for a in driver.find_elements("css selector", "article.issue h2 a")]
        assert titles == ["10 Years of Partnership: Chengdu and Flemish Brabant", "Issue number 41"]

        driver.find_element("link text", titles[0]).click()
        wait_for(lambda: driver.title.startswith("10 Years of Partnership"), what="the issue page")
        assert driver.current_url == f"{static_server}{SAMPLE.name}/index.html"
        wait_for(lambda: not images_loaded(driver), what="the issue's images")
        assert driver.execute_script("return document.images.length") >= 2  # the logo and the article's picture
        assert "Dear" not in driver.find_element("tag name", "body").text

        driver.find_element("css selector", 'a[rel="prev"]').click()
        wait_for(lambda: driver.title.startswith("Issue number 41"), what="the older issue")
        wait_for(lambda: not images_loaded(driver), what="the older issue's images")
        driver.find_element("css selector", 'a[rel="index"]').click()
        wait_for(lambda: driver.title == "BCECC Newsletter", what="back to the index")
        icon = driver.execute_script("return document.querySelector('link[rel=icon]').href")
        assert icon == f"{static_server}favicon.png"


def test_archive_in_chromium_from_files(site: Path):
    with browser(width=900, height=900) as driver:
        driver.get((site / "index.html").as_uri())
        driver.find_element("link text", "Issue number 41").click()
        wait_for(lambda: driver.title.startswith("Issue number 41"), what="the issue page from file://")
        wait_for(lambda: not images_loaded(driver), what="its images from file://")
