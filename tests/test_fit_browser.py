"""Every page a reader sees, in real headless Chromium: never wider than the screen (320 to 1280 px, light and dark,
images on and off, the sample issue and a stress issue), and no WCAG violation axe-core finds, light or dark."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.browser import browser, wait_for
from support.installed import missing
from support.serve import SECRET, serve_process

from broadsheet.core.tokens import make_token
from broadsheet.faces.cli import main
from broadsheet.faces.preview import Preview

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
STRESS_FIXTURE = Path(__file__).parent / "fixtures" / "stress-issue"
SAMPLE = "2021-06-01-chengdu-flemish-brabant"
STRESS = "2024-03-01-stress"
WIDTHS = (320, 375, 600, 1280)
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

# The page's width, the screen's, and the local images that loaded and did not.
LAYOUT = """
var e = document.documentElement, local = Array.from(document.images).filter(function (i) {
  return i.src.indexOf(location.origin) === 0; });
return [Math.max(e.scrollWidth, document.body.scrollWidth), e.clientWidth,
        local.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
        local.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length];
"""
# Each image with width and height attributes: [its src, its box's ratio, the attributes' ratio].
RATIOS = """
return Array.from(document.images).filter(function (i) { return i.getAttribute('height'); }).map(function (i) {
  var r = i.getBoundingClientRect();
  return [i.src.split('/').pop(), r.height / r.width, i.getAttribute('height') / i.getAttribute('width')]; });
"""
# Table cells of CJK text: [characters, lines they take].
CJK_CELLS = """
var out = [];
document.querySelectorAll('.content-table td, .content-table th').forEach(function (cell) {
  var text = cell.textContent.trim();
  if (!/^[\\u3000-\\u9fff\\uff00-\\uffef]+$/.test(text)) return;
  var range = document.createRange(); range.selectNodeContents(cell);
  var tops = new Set(Array.from(range.getClientRects()).map(function (r) { return Math.round(r.top); }));
  out.push([text.length, tops.size]);
});
return out;
"""
# Visible text under 14 px (footnote markers aside), and links of the footer and contents under 44 px high.
SMALL = """
var small = [], short = [];
document.querySelectorAll('body *').forEach(function (e) {
  var own = Array.from(e.childNodes).some(function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (own && e.offsetParent && !e.closest('sup, .preheader') && parseFloat(getComputedStyle(e).fontSize) < 14)
    small.push(e.tagName + ' ' + e.textContent.trim().slice(0, 30) + ' ' + getComputedStyle(e).fontSize);
});
var links = document.querySelectorAll('.footer-text a, .quiet-link, .toc a');
links.forEach(function (a) { if (a.getBoundingClientRect().height < 44) short.push(a.textContent.trim()); });
return [small, short, links.length];
"""
RUN_AXE = """
var done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})
  .then(function (r) { done(r.violations.map(function (v) {
    return v.id + ': ' + v.nodes.map(function (n) { return n.target.join(' '); }).slice(0, 3).join(' | '); })); })
  .catch(function (e) { done(['axe failed: ' + e]); });
"""


COMPONENTS = """
const count = (selector) => document.querySelectorAll(selector).length;
return {button: count('a.button'), callout: count('.callout'), caption: count('.caption'), pair: count('.pair')};
"""


@pytest.fixture
def issues(project: Path) -> list[Path]:
    """The sample issue and the stress issue (tests/fixtures/stress-issue) in a copy of the sample project."""
    shutil.copytree(STRESS_FIXTURE, project / "issues" / STRESS)
    return [project / "issues" / SAMPLE, project / "issues" / STRESS]


def screen(driver, width: int, *, dark: bool = False, images: bool = True) -> None:
    """A ``width`` px screen (a phone's up to 480), light or dark, with images loading or blocked."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width <= 480},
    )
    scheme = "dark" if dark else "light"
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": [] if images else ["*/images/*"]})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})


def screens(driver, url: str) -> Iterator[tuple[int, bool, bool]]:
    """Show ``url`` on every screen: loaded once with images on and once with them blocked, then laid out again at
    each width, light and dark (a page in a browser answers a new screen size or colour scheme without a reload)."""
    for images in (True, False):
        screen(driver, WIDTHS[0], images=images)
        driver.get(url)
        for width in WIDTHS:
            for dark in (False, True):
                screen(driver, width, dark=dark, images=images)
                yield width, dark, images


def axe_violations(driver, url: str | None) -> dict[str, list[str]]:
    """axe-core's WCAG A/AA violations of ``url`` (None: the page shown), light and dark ({} when there are none):
    the page is loaded and axe injected once, then checked in each colour scheme."""
    found = {}
    screen(driver, 1280)
    if url is not None:
        driver.get(url)
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    for dark in (False, True):
        screen(driver, 1280, dark=dark)
        if violations := driver.execute_async_script(RUN_AXE, WCAG):
            found[f"{url or driver.current_url} ({'dark' if dark else 'light'})"] = violations
    return found


def require_axe() -> None:
    if not AXE.is_file():
        missing("axe-core (npm)", "make install-test, or npm install --no-save axe-core@4.x")


# Each issue a test of its own: xdist runs them side by side.
@pytest.mark.parametrize("issue_name", [SAMPLE, STRESS])
def test_the_email_and_its_web_version_are_never_wider_than_the_screen(
    project: Path, issues: list[Path], issue_name: str
):
    config = project / "broadsheet.toml"
    wide: list[str] = []
    issue = project / "issues" / issue_name
    with browser() as driver, Preview(issue, port=0, config_path=config, watch=False) as preview:
        for page in ("email.html", "web.html"):
            for width, dark, images in screens(driver, preview.url + page):
                page_width, screen_width, loaded, blocked = driver.execute_script(LAYOUT)
                assert screen_width == width
                assert (loaded > 0 and blocked == 0) if images else (loaded == 0 and blocked > 0), issue.name
                if page_width > width:
                    wide.append(f"{issue.name}/{page} at {width} px ({'dark' if dark else 'light'}, images "
                                f"{'on' if images else 'off'}): {page_width} px wide")  # fmt: skip
                if page == "email.html" and width in (375, 1280) and not dark:
                    for name, box, attributes in driver.execute_script(RATIOS):  # the space is kept
                        assert box == pytest.approx(attributes, abs=0.02), (name, width, images)
                if width == 375 and not dark and images:
                    small, short, links = driver.execute_script(SMALL)
                    assert (small, short) == ([], []) and links >= 3  # the footer's (and the contents') links
                if issue.name == STRESS and width == 320 and page == "email.html":
                    shown = driver.execute_script(COMPONENTS)  # every component is in what was measured
                    assert shown == {"button": 2, "callout": 1, "caption": 2, "pair": 1}, shown
                    cells = driver.execute_script(CJK_CELLS)
                    assert cells and all(lines < characters for characters, lines in cells if characters > 1)
    assert not wide, "\n".join(wide)


def test_the_archive_is_never_wider_than_the_screen(project: Path, issues: list[Path], tmp_path: Path):
    out = tmp_path / "site"
    assert main(["--config", str(project / "broadsheet.toml"), "publish", "--out", str(out)]) == 0
    wide = []
    with browser() as driver:
        for page in (out / "index.html", out / STRESS / "index.html"):
            for width, _dark, _images in screens(driver, page.as_uri()):
                page_width = driver.execute_script(LAYOUT)[0]
                if page_width > width:
                    wide.append(f"{page.relative_to(out)} at {width} px: {page_width} px wide")
    assert not wide, "\n".join(wide)


# The email and web version of each issue, and the archive: three tests, which xdist runs side by side.
@pytest.mark.parametrize("pages", [SAMPLE, STRESS, "archive"])
def test_axe_finds_no_wcag_violation_in_the_email_web_version_and_archive(
    project: Path, issues: list[Path], tmp_path: Path, pages: str
):
    require_axe()
    found: dict[str, list[str]] = {}
    with browser() as driver:
        driver.set_script_timeout(60)
        if pages == "archive":
            out = tmp_path / "site"
            assert main(["--config", str(project / "broadsheet.toml"), "publish", "--out", str(out)]) == 0
            for page in (out / "index.html", *(out / issue.name / "index.html" for issue in issues)):
                found |= axe_violations(driver, page.as_uri())
        else:
            with Preview(
                project / "issues" / pages, port=0, config_path=project / "broadsheet.toml", watch=False
            ) as preview:
                for page in ("email.html", "web.html"):
                    found |= axe_violations(driver, preview.url + page)
    assert not found, found


def test_axe_finds_no_wcag_violation_in_serves_pages(project: Path, monkeypatch):
    require_axe()
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    found: dict[str, list[str]] = {}
    with serve_process(project) as base, browser() as driver:
        driver.set_script_timeout(60)
        token = make_token("unsubscribe", "reader@example.org", "newsletter.bcecc.example.org", SECRET)
        for path in ("/subscribe", f"/u/{token}", "/u/not-a-token", "/c/not-a-token"):
            found |= axe_violations(driver, base + path)
            for width in WIDTHS:  # the page axe checked, laid out again at each width
                screen(driver, width)
                assert driver.execute_script(LAYOUT)[0] <= width, (path, width)
        driver.get(f"{base}/u/{token}")
        driver.find_element("css selector", "button[type=submit]").click()
        wait_for(lambda: driver.find_element("tag name", "h1").text, what="the page after unsubscribing")
        found |= axe_violations(driver, None)  # the answer to a POST: not loaded again
    assert not found, found
