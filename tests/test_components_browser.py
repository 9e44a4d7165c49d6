"""Contrast as Chromium computes it: every visible text (buttons' labels too) in both themes, in light mode,
in dark mode (prefers-color-scheme) and in Outlook.com's (data-ogsc / data-ogsb), for two brands."""

from __future__ import annotations

import re

import pytest
from support.archive import sample_project
from support.browser import browser
from support.components import build_components

from broadsheet.core.render.palette import LARGE_RATIO, TEXT_RATIO, ratio
from broadsheet.faces.cli import main

pytestmark = pytest.mark.browser

# Each visible element with text of its own: [text, colour, the colour behind it, large?, a button?]
TEXTS = """
function behind(element) {
  for (var e = element; e; e = e.parentElement) {
    var colour = getComputedStyle(e).backgroundColor;
    if (colour && colour !== 'transparent' && !/rgba\\(.*, 0\\)$/.test(colour)) return colour;
  }
  return 'rgb(255, 255, 255)';
}
var found = [];
document.querySelectorAll('body *').forEach(function (e) {
  var own = Array.prototype.filter.call(e.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (!own.length || !e.getClientRects().length) return;
  var style = getComputedStyle(e);
  if (style.visibility === 'hidden' || parseFloat(style.opacity) === 0 || style.display === 'none') return;
  if (e.closest('.preheader')) return;
  var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
  found.push([own[0].textContent.trim().slice(0, 40), style.color, behind(e), size >= 24 || (bold && size >= 18.66),
              !!e.closest('a.button')]);
});
return found;
"""
MODES = ("light", "dark", "outlook")


def rgb(css: str) -> str:
    red, green, blue = (int(n) for n in re.findall(r"\d+", css)[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


def measure(driver, url: str, mode: str) -> list[list]:
    scheme = "dark" if mode == "dark" else "light"
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    driver.get(url)
    if mode == "outlook":  # what Outlook.com adds to an email it shows in dark mode
        driver.execute_script(
            "document.body.setAttribute('data-ogsc', ''); document.body.setAttribute('data-ogsb', '');"
        )
    return driver.execute_script(TEXTS)


@pytest.mark.parametrize("theme", ["default", "letter"])
@pytest.mark.parametrize("primary", ["#1f4e79", "#d21f1f"])
def test_every_text_and_button_reads_in_light_and_dark(tmp_path, theme, primary):
    _, rendered = build_components(tmp_path, theme=theme, brand=f'primary_color = "{primary}"')
    page = tmp_path / "web.html"
    page.write_text(rendered.web_html, encoding="utf-8")
    results = {}
    with browser(800, 1000) as driver:
        try:
            for mode in MODES:
                results[mode] = measure(driver, page.as_uri(), mode)
        finally:
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    for mode, texts in results.items():
        assert len(texts) >= 15, (mode, texts)
        poor = [
            (text, rgb(colour), rgb(background), round(ratio(rgb(colour), rgb(background)), 2))
            for text, colour, background, large, _ in texts
            if ratio(rgb(colour), rgb(background)) < (LARGE_RATIO if large else TEXT_RATIO)
        ]
        assert poor == [], mode
        buttons = {text: (rgb(colour), rgb(background)) for text, colour, background, _, button in texts if button}
        assert buttons["Book your seat"] == ("#ffffff", primary), mode  # the author's colours, in dark mode too
        assert buttons["Read the programme"] == ("#ffffff", "#c8102e"), mode
    dark_sheet = {rgb(background) for text, _, background, _, _ in results["dark"] if text.startswith("Join us")}
    assert dark_sheet == {"#1b232e"}  # dark mode applied at all


def test_the_archive_index_has_dark_mode_as_its_issue_pages_have(tmp_path):
    project = sample_project(tmp_path / "project")
    out = tmp_path / "web"
    assert main(["--config", str(project / "broadsheet.toml"), "publish", "--out", str(out)]) == 0
    results = {}
    with browser(800, 1000) as driver:
        try:
            for mode in ("light", "dark"):
                results[mode] = measure(driver, (out / "index.html").as_uri(), mode)
        finally:
            driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    for mode, texts in results.items():
        assert texts
        poor = [
            (text, rgb(c), rgb(b))
            for text, c, b, large, _ in texts
            if ratio(rgb(c), rgb(b)) < (LARGE_RATIO if large else TEXT_RATIO)
        ]
        assert poor == [], mode
    assert {rgb(b) for _, _, b, _, _ in results["dark"]} >= {"#1b232e", "#0f1419"}  # the dark sheet and page
