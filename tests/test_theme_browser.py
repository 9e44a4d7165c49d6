"""The default theme's rough edges, checked in headless Chromium: tables, quotes, padding, footnotes, dark mode."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest
from support.browser import browser, require_chromium

from broadsheet.core.config import load_config
from broadsheet.core.render import build_issue
from broadsheet.faces.preview import Preview

SLUG = "2021-06-01-chengdu-flemish-brabant"
ARTICLE = """---
title: Rough edges
---
Short line.[^1]

Short line.

Bare address: https://example.org/report and again[^1]. Not links: readme.md, Node.js. Mail ann@example.org.

> The partnership opened doors for both regions.
>
> — Geert Regelbrugge, Smart Hub

| Indicator | Change | Commentary |
|---|---|---|
| Exports | Increased | Considerable internationalisation throughout |
| Investments | Decreased | Uncharacteristically disappointing |

[^1]: The province's own figures.
"""

# Every word of every table cell: does any of them run over two lines (broken mid-word)?
BROKEN_WORDS = """
var broken = [];
document.querySelectorAll(".content-table th, .content-table td").forEach(function (cell) {
  var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (var node = walker.nextNode(); node; node = walker.nextNode()) {
    var re = /\\S+/g, m;
    while ((m = re.exec(node.textContent))) {
      var range = document.createRange();
      range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
      var tops = new Set(Array.prototype.map.call(range.getClientRects(), function (r) { return Math.round(r.top); }));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
});
return broken;
"""


@pytest.fixture
def issue(project: Path) -> Path:
    folder = project / "issues" / SLUG
    (folder / "articles" / "03-rough.md").write_text(ARTICLE, encoding="utf-8")
    return folder


def html_of(project: Path, folder: Path) -> str:
    return build_issue(folder, load_config(project / "broadsheet.toml")).html


def test_footnotes_are_plain_references_and_bare_urls_are_links(project, issue):
    document = lxml.html.fromstring(html_of(project, issue))
    assert not [a.get("href") for a in document.iter("a") if (a.get("href") or "").startswith("#")]
    assert [sup.text_content() for sup in document.cssselect("sup.footnote-ref")] == ["[1]", "[1]"]
    hrefs = [a.get("href") for a in document.iter("a")]
    assert "https://example.org/report" in hrefs and "mailto:ann@example.org" in hrefs
    assert not [href for href in hrefs if "readme" in href or "node.js" in href.lower()]


def test_table_cells_carry_the_font_stack_for_outlook(project, issue):
    document = lxml.html.fromstring(html_of(project, issue))
    cells = document.cssselect(".content-table td, .content-table th")
    assert cells and all(
        "font-family:Helvetica, Arial, sans-serif" in (c.get("style") or "").replace(": ", ":") for c in cells
    )


@pytest.mark.slow
def test_on_a_phone_and_in_outlook_dark_mode(project, issue):
    require_chromium()
    with Preview(issue, port=0, config_path=project / "broadsheet.toml", watch=False) as preview, browser() as driver:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True}
        )
        driver.get(preview.url + "email.html")
        assert driver.execute_script(BROKEN_WORDS) == []
        phone_padding = driver.execute_script(
            "return parseFloat(getComputedStyle(document.querySelector('.prose')).paddingLeft)"
        )
        sides = driver.execute_script(  # the article's divider and lead image line up with its text
            "return Array.prototype.map.call(document.querySelectorAll('.side'),"
            " function (e) { return parseFloat(getComputedStyle(e).paddingLeft); });"
        )
        quote, attribution = driver.execute_script(
            "var q = document.querySelector('.pull-quote p'), a = document.querySelector('.quote-attribution');"
            "return [getComputedStyle(q).fontStyle, getComputedStyle(a).fontStyle];"
        )
        heights = driver.execute_script(
            "return Array.prototype.filter.call(document.querySelectorAll('.prose p'),"
            " function (p) { return p.textContent.trim().indexOf('Short line.') === 0; })"
            ".map(function (p) { return p.getBoundingClientRect().height; });"
        )
        driver.execute_script(
            "document.body.setAttribute('data-ogsc', ''); document.body.setAttribute('data-ogsb', '');"
        )
        dark_title = driver.execute_script("return getComputedStyle(document.querySelector('.article-title')).color")
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 800, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        )
        driver.get(preview.url + "email.html")
        desktop_padding = driver.execute_script(
            "return parseFloat(getComputedStyle(document.querySelector('.prose')).paddingLeft)"
        )
    assert phone_padding == 16 and desktop_padding == 32
    assert sides and set(sides) == {16}
    assert quote == "italic" and attribution == "normal"
    assert len(heights) == 2 and heights[0] == heights[1], heights  # the footnote marker does not open its line
    assert dark_title == "rgb(230, 233, 238)"
