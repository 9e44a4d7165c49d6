"""Headless Chromium for the preview's browser tests (a missing install fails them: support/installed.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TypeVar

from broadsheet.faces.preview.chromium import chromium, find_chromium
from support.installed import missing

T = TypeVar("T")


def require_chromium() -> None:
    """Fail the calling test unless chromium and chromedriver are installed (see support/installed.py)."""
    if find_chromium() is None:
        missing("chromium/chromedriver", "apt-get install chromium chromium-driver, or make browser")


_shared = ExitStack()
_driver: list = []  # the worker's one Chromium, started by the first browser test


def _session_chromium():
    """This worker's headless Chromium, started once (again if it died) and quit by ``close_browser``."""
    if _driver:
        try:
            _driver[0].window_handles  # noqa: B018 - a dead browser raises here
        except Exception:
            close_browser()
    if not _driver:
        _driver.append(_shared.enter_context(chromium()))
    return _driver[0]


def close_browser() -> None:
    """Quit the shared Chromium (conftest calls this when the session ends)."""
    _driver.clear()
    _shared.close()


@contextmanager
def browser(width: int = 1400, height: int = 1000) -> Iterator:
    """A fresh tab, ``width`` by ``height``, with no cookies, in the worker's one headless Chromium (fails the test
    when absent): starting Chromium costs more than the tests that use it."""
    require_chromium()
    driver = _session_chromium()
    old = driver.window_handles
    driver.switch_to.new_window("tab")
    fresh = driver.current_window_handle
    for handle in old:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(fresh)
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.set_window_size(width, height)
    yield driver


def wait_for(check: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; ignore errors meanwhile (page reloading)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what or check}" + (f" (last error: {last})" if last else "")
    )


def frame_text(driver, frame_id: str) -> str:
    """The visible text inside one of the page's iframes."""
    driver.switch_to.default_content()
    driver.switch_to.frame(driver.find_element("id", frame_id))
    try:
        return driver.execute_script("return document.body ? document.body.innerText : ''")
    finally:
        driver.switch_to.default_content()


def frame_overflows(driver, frame_id: str) -> bool:
    """True when the iframe's document is wider than the frame (it would scroll sideways)."""
    driver.switch_to.default_content()
    driver.switch_to.frame(driver.find_element("id", frame_id))
    try:
        return bool(
            driver.execute_script(
                "var e = document.documentElement; return e.scrollWidth > e.clientWidth || document.body.scrollWidth > e.clientWidth"
            )
        )
    finally:
        driver.switch_to.default_content()
