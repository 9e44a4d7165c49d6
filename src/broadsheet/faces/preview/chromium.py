"""Headless Chromium through Selenium, using the installed browser and driver (nothing is downloaded).

Debian: ``apt-get install chromium chromium-driver`` (``make browser``). Other places:
``BROADSHEET_CHROMIUM`` and ``BROADSHEET_CHROMEDRIVER`` name the two programs.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from broadsheet.core.errors import BroadsheetError

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# Without these, Chromium on a machine with no network stalls on its first-run and update calls.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> tuple[Path, Path] | None:
    """(browser, driver) when both are installed, else None."""
    browser = os.environ.get("BROADSHEET_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("BROADSHEET_CHROMEDRIVER") or shutil.which("chromedriver")
    if browser and driver and Path(browser).is_file() and Path(driver).is_file():
        return Path(browser), Path(driver)
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile, closed (and its profile deleted) on exit."""
    found = find_chromium()
    if found is None:
        named = os.environ.get("BROADSHEET_CHROMIUM") or os.environ.get("BROADSHEET_CHROMEDRIVER")
        raise BroadsheetError(
            "headless Chromium is not installed",
            where=named or "chromium, chromedriver",
            fix="apt-get install chromium chromium-driver (or make browser); "
            "BROADSHEET_CHROMIUM and BROADSHEET_CHROMEDRIVER name them elsewhere",
        )
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise BroadsheetError(
            "screenshots need selenium, which is not installed",
            where="python -m pip",
            fix="python -m pip install 'selenium>=4.20' (or reinstall broadsheet)",
        ) from None

    browser, driver_path = found
    profile = tempfile.mkdtemp(prefix="broadsheet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(browser)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    except WebDriverException as exc:  # a driver for another Chromium version, a browser that cannot start
        shutil.rmtree(profile, ignore_errors=True)
        first = (exc.msg or str(exc)).strip().splitlines()[0] if (exc.msg or str(exc)).strip() else type(exc).__name__
        raise BroadsheetError(
            f"headless Chromium did not start: {first}",
            where=f"{browser}, {driver_path}",
            fix="install matching chromium and chromium-driver packages",
        ) from None
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass(frozen=True)
class Screenshot:
    """A saved PNG and its real width: wider than asked when the page is wider than the screen."""

    path: Path
    width: int


def capture(driver: WebDriver, out: Path, width: int) -> Screenshot:
    """Save the whole loaded page, ``width`` CSS pixels wide (wider if the page is) and as tall as its content."""
    mobile = width <= 480
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": mobile}
    )
    height = int(
        driver.execute_script(
            "return Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)"
        )
    )
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": max(height, 1), "deviceScaleFactor": 1, "mobile": mobile},
    )
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    data = base64.b64decode(shot["data"])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        raise BroadsheetError(
            f"cannot write the screenshot: {exc.strerror}",
            where=str(out),
            fix="choose a file in a folder you can write to",
        ) from None
    return Screenshot(out, png_width(data))


def png_width(data: bytes) -> int:
    """The width in pixels written in a PNG's header (IHDR, the first chunk)."""
    return int.from_bytes(data[16:20], "big")


def screenshot(url: str, out: Path, width: int = 600) -> Screenshot:
    """Load ``url`` in headless Chromium and save it as a PNG of ``width`` CSS pixels (see Screenshot.width)."""
    with chromium(width=max(width, 400)) as driver:
        driver.get(url)
        driver.execute_script("return document.fonts ? document.fonts.ready : true")
        return capture(driver, Path(out), width)
