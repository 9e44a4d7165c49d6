"""The preview in real headless Chromium: frames, text tab, live reload, errors shown and recovered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.browser import browser, frame_overflows, frame_text, require_chromium, wait_for

from broadsheet.faces.preview import Preview

pytestmark = pytest.mark.browser

SLUG = "2021-06-01-chengdu-flemish-brabant"
TITLE = "10 Years of Partnership: Chengdu and Flemish Brabant"
ARTICLE_TITLE = "A 10-year partnership between Chengdu and Flemish Brabant"


def test_preview_page_live_reload_and_errors(project: Path, tmp_path: Path):
    require_chromium()
    issue = project / "issues" / SLUG
    article = issue / "articles" / "01-chengdu-flemish-brabant.md"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with Preview(issue, port=0, config_path=project / "broadsheet.toml") as preview, browser() as driver:
        driver.get(preview.url)
        assert driver.find_element("id", "subject").text.startswith("BCECC Newsletter")
        for frame in ("frame-desktop", "frame-mobile"):
            wait_for(lambda f=frame: TITLE in frame_text(driver, f), what=f"the title in {frame}")
            wait_for(lambda f=frame: ARTICLE_TITLE in frame_text(driver, f), what=f"the article in {frame}")
        assert driver.find_element("id", "frame-mobile").size["width"] == 377  # 375 px + borders
        assert not frame_overflows(driver, "frame-mobile"), "the mobile frame scrolls sideways"
        driver.save_screenshot(str(shots / "1-email.png"))

        driver.find_element("css selector", 'a[data-tab="text"]').click()
        text = driver.find_element("id", "text-part")
        assert text.is_displayed() and "Dear Sam," in text.text
        assert text.text.strip().splitlines()[0] == preview.current.email.text.strip().splitlines()[0]
        driver.find_element("css selector", 'a[data-tab="headers"]').click()
        assert "Subject" in driver.find_element("id", "headers").text
        driver.save_screenshot(str(shots / "2-headers.png"))
        driver.find_element("css selector", 'a[data-tab="email"]').click()

        # Save a new article title: the page shows it within a few seconds.
        source = article.read_text(encoding="utf-8")
        article.write_text(source.replace(ARTICLE_TITLE, "A decade of Chengdu and Flemish Brabant"), encoding="utf-8")
        wait_for(
            lambda: "A decade of Chengdu and Flemish Brabant" in frame_text(driver, "frame-mobile"),
            timeout=30,
            what="the edited title",
        )
        driver.save_screenshot(str(shots / "3-edited.png"))

        # Break the front matter: the error shows with file and line, the last good build stays.
        article.write_text("---\ntitle: [unclosed\n---\nBody\n", encoding="utf-8")
        banner = wait_for(lambda: driver.find_element("id", "build-error"), what="the build error")
        assert re.search(r"01-chengdu-flemish-brabant\.md:\d+", banner.text), banner.text
        assert "front matter" in banner.text
        assert "A decade of Chengdu" in frame_text(driver, "frame-mobile")
        driver.save_screenshot(str(shots / "4-error.png"))

        # Fix it: the preview comes back without the banner.
        article.write_text(source, encoding="utf-8")
        wait_for(
            lambda: (
                not driver.find_elements("id", "build-error") and ARTICLE_TITLE in frame_text(driver, "frame-mobile")
            ),
            what="the preview to recover",
        )
        driver.save_screenshot(str(shots / "5-fixed.png"))
    assert all((shots / name).stat().st_size > 1000 for name in ("1-email.png", "4-error.png", "5-fixed.png"))


def test_screenshot_command(project: Path, tmp_path: Path, monkeypatch, capsys):
    """The PNG is as wide as asked and says so; a page wider than the screen is reported at its real width."""
    require_chromium()
    from PIL import Image

    from broadsheet.faces.cli import main

    monkeypatch.chdir(project)
    out = tmp_path / "mobile.png"
    assert main(["preview", f"issues/{SLUG}", "--screenshot", str(out), "--width", "375"]) == 0
    with Image.open(out) as image:
        assert image.size[0] == 375 and image.size[1] > 1000
    assert capsys.readouterr().out.strip() == f"saved {out} (375 px wide)"

    (project / "issues" / SLUG / "articles" / "03-wide.md").write_text(
        '---\ntitle: Wide\n---\n<div style="width:700px">A box 700 px wide.</div>\n', encoding="utf-8"
    )
    assert main(["preview", f"issues/{SLUG}", "--screenshot", str(out), "--width", "375"]) == 0
    with Image.open(out) as image:
        width = image.size[0]
    assert width > 375
    assert f"({width} px wide: the email is wider than the 375 px screen asked for)" in capsys.readouterr().out


# Each element with text of its own: its computed colour and the first opaque background behind it.
TEXT_COLOURS = """
function opaque(c) { var m = c.match(/[\\d.]+/g); return m && (m.length < 4 || Number(m[3]) > 0.5); }
var out = [];
document.querySelectorAll("body *").forEach(function (e) {
  var own = Array.prototype.some.call(e.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (!own || !e.offsetParent && e.tagName !== "BODY") return;
  var bg = null;
  for (var a = e; a && !bg; a = a.parentElement) {
    var c = getComputedStyle(a).backgroundColor;
    if (opaque(c)) bg = c;
  }
  out.push([e.textContent.trim().slice(0, 40), getComputedStyle(e).color, bg || "rgb(255, 255, 255)"]);
});
return out;
"""


def test_email_in_dark_mode_and_on_a_small_screen(project: Path, tmp_path: Path):
    """Dark mode keeps every text readable; a long code line does not make the mobile email scroll sideways."""
    require_chromium()
    from broadsheet.core.lint.colour import contrast, parse_colour

    issue = project / "issues" / SLUG
    (issue / "articles" / "03-code.md").write_text(
        "---\ntitle: Code\n---\nRun this:\n\n```\nresult = some_function(argument_one, argument_two, "
        "argument_three, argument_four)\n```\n\n| a | b |\n|---|---|\n| `x` | y |\n\n> A quote with a [link](https://example.org/q).\n",
        encoding="utf-8",
    )
    with Preview(issue, port=0, config_path=project / "broadsheet.toml", watch=False) as preview, browser() as driver:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True}
        )
        driver.get(preview.url + "email.html")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375, f"the email is {width} px wide on a 375 px screen"
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
        )
        driver.get(preview.url + "email.html")
        driver.save_screenshot(str(tmp_path / "dark.png"))
        runs = driver.execute_script(TEXT_COLOURS)
    assert any(text == ARTICLE_TITLE[:40] for text, _, _ in runs)
    unreadable = [
        (text, colour, background)
        for text, colour, background in runs
        if contrast(parse_colour(colour), parse_colour(background)) < 3.0
    ]
    assert not unreadable, f"text hard to read in dark mode: {unreadable[:5]}"


def test_screenshot_bad_width_or_unwritable_file_is_a_clear_error(project: Path, tmp_path: Path, monkeypatch, capsys):
    require_chromium()
    from broadsheet.faces.cli import main

    monkeypatch.chdir(project)
    assert main(["preview", f"issues/{SLUG}", "--screenshot", str(tmp_path / "a.png"), "--width", "0"]) == 2
    assert "--width" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["preview", f"issues/{SLUG}", "--screenshot", str(blocker / "shot.png")]) == 2
    assert "cannot write the screenshot" in capsys.readouterr().err


@pytest.mark.parametrize("variable", ["BROADSHEET_CHROMIUM", "BROADSHEET_CHROMEDRIVER"])
def test_screenshot_without_chromium_is_one_line(project: Path, tmp_path: Path, monkeypatch, capsys, variable):
    from broadsheet.faces.cli import main

    monkeypatch.chdir(project)
    monkeypatch.delenv("BROADSHEET_DEBUG", raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "not-installed"))
    assert main(["preview", f"issues/{SLUG}", "--screenshot", str(tmp_path / "shot.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "headless Chromium is not installed" in err[0] and "not-installed" in err[0]
    assert "apt-get install chromium chromium-driver" in err[0] and not (tmp_path / "shot.png").exists()


def test_screenshot_is_a_feature_of_the_installed_package():
    """selenium is a dependency of broadsheet itself, not only of its tests (`make demo` installs no extras)."""
    from importlib.metadata import requires

    assert any(r.split(">")[0].split("=")[0].strip() == "selenium" and "extra" not in r for r in requires("broadsheet"))
