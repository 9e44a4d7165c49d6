"""The components written in Markdown (buttons, callouts, figures, image pairs) in both built-in themes, the
brand's colours through the whole theme, dark mode keeping them readable, and lint of their mistakes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import lxml.html
import pytest
from PIL import Image
from support.components import COMPONENTS, build_components, components_project
from support.installed import missing

from broadsheet.core.config import Brand, load_config
from broadsheet.core.errors import ConfigError
from broadsheet.core.lint import lint_rendered
from broadsheet.core.render import read_and_build
from broadsheet.core.render.palette import DARK_SHEET, TEXT_RATIO, palette_of, ratio

ROOT = Path(__file__).resolve().parents[1]
MJML_CLI = ROOT / "node_modules" / ".bin" / "mjml"
THEMES = ("default", "letter")


def document(html: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(html)


def style_of(element: lxml.html.HtmlElement) -> str:
    return (element.get("style") or "").replace(" ", "").lower()


@pytest.mark.parametrize("theme", THEMES)
def test_a_button_is_a_styled_link_in_a_row_with_outlooks_vml_shape(tmp_path, theme):
    _, rendered = build_components(tmp_path, theme=theme)
    page = document(rendered.html)
    [book] = page.cssselect('div.button-row > a.button[href="https://example.org/book"]')
    assert book.text_content() == "Book your seat"
    assert "background-color:#1f4e79" in style_of(book) and "display:inline-block" in style_of(book)
    shapes = re.findall(r"<!--\[if mso\]><v:roundrect[^>]*>.*?</v:roundrect><!\[endif\]-->", rendered.html, re.S)
    assert len(shapes) == 2
    assert 'href="https://example.org/book"' in shapes[0] and 'fillcolor="#1f4e79"' in shapes[0]
    assert ">Book your seat</center>" in shapes[0]
    assert 'fillcolor="#c8102e"' in shapes[1]  # the secondary button: the accent colour
    assert re.search(r'<!--\[if !mso\]><!--><a href="https://example.org/book"[^>]*>Book your seat</a><!--<!\[endif\]-->',
                     rendered.html)  # fmt: skip


@pytest.mark.parametrize("theme", THEMES)
def test_the_text_part_shows_a_button_as_label_and_address(tmp_path, theme):
    _, rendered = build_components(tmp_path, theme=theme)
    assert "Book your seat: https://example.org/book" in rendered.text
    assert "Read the programme: https://example.org/programme" in rendered.text
    assert "[if mso]" not in rendered.text and "roundrect" not in rendered.text


def test_a_button_inside_a_sentence_stays_a_link(tmp_path):
    _, rendered = build_components(
        tmp_path, body="---\ntitle: A\n---\nPlease [book](https://example.org/b){.button} now.\n"
    )
    page = document(rendered.html)
    assert page.cssselect("p > a.button") and not page.cssselect(".button-row")
    assert "roundrect" not in rendered.html


@pytest.mark.parametrize("theme", THEMES)
def test_callout_figure_and_pair(tmp_path, theme):
    _, rendered = build_components(tmp_path, theme=theme)
    page = document(rendered.html)
    [cell] = page.cssselect("table.callout td.callout-body")
    assert "Deadline:" in cell.text_content() and cell.cssselect('a[href="https://example.org/details"]')
    assert "background-color:#fae7ea" in style_of(cell)  # the accent, tinted
    [figure] = page.cssselect("div.figure")
    assert [child.tag for child in figure] == ["img", "p"]
    assert (
        figure[1].get("class") == "caption" and figure[1].text_content() == "The delegation at the Chengdu trade fair."
    )
    items = page.cssselect("div.pair > div.pair-item")
    assert [item.cssselect("img")[0].get("alt") for item in items] == ["Left view", "Right view"]
    assert all(item.cssselect("img")[0].get("width") == "260" for item in items)
    assert all("display:inline-block" in style_of(item) and "max-width:268px" in style_of(item) for item in items)
    assert '<!--[if mso]><table role="presentation"' in rendered.html  # Outlook's two cells
    assert "\n\nThe delegation at the Chengdu trade fair." in rendered.text
    assert "Deadline: registrations close on 1 July." in rendered.text


def test_text_after_a_pair_of_images_is_their_caption(tmp_path):
    body = "---\ntitle: A\n---\n::: pair\n![Old](../images/left.png)\n![New](../images/right.png)\nBefore and after.\n:::\n"
    _, rendered = build_components(tmp_path, body=body)
    [pair] = document(rendered.html).cssselect("div.pair")
    assert [child.get("class") for child in pair if isinstance(child.tag, str)] == ["pair-item", "pair-item", "caption"]
    assert pair.cssselect(".caption")[0].text_content() == "Before and after."


def test_the_brand_colours_reach_every_part_of_the_theme(tmp_path):
    brand = 'primary_color = "#7a1f5c"\naccent_color = "#0b6e4f"\ntext_color = "#222222"\nbackground_color = "#faf6ee"'
    _, rendered = build_components(tmp_path, brand=brand)
    html = rendered.html.lower()
    for fixed in ("#1f4e79", "#c8102e", "#10253f", "#8cc4ff", "#dbe6f2", "#f2f4f7"):  # the old theme's own colours
        assert fixed not in html
    page = document(rendered.html)
    palette = palette_of(Brand(primary_color="#7a1f5c", accent_color="#0b6e4f", text_color="#222222"))
    [anniversary] = page.cssselect('a[href="https://example.org/anniversary"]')
    assert f"color:{palette.link}" in style_of(anniversary)
    assert f"color:{palette.heading}" in style_of(page.cssselect("h2.article-title")[0])
    assert 'fillcolor="#7a1f5c"' in html and 'fillcolor="#0b6e4f"' in html
    assert f"background-color:{palette.callout_background}" in style_of(page.cssselect(".callout-body")[0])


def test_dark_mode_keeps_the_button_colours_and_lightens_links(tmp_path):
    """The issue's case: dark mode painted every content link #8cc4ff, a red button's label too (3.21:1)."""
    _, rendered = build_components(tmp_path, brand='primary_color = "#d21f1f"')
    css = "".join(document(rendered.html).xpath("//style/text()"))
    dark = css[css.index("prefers-color-scheme: dark") :]
    palette = palette_of(Brand(primary_color="#d21f1f"))
    assert re.search(
        r"\.prose a\.button, \.prose a\.button \* \{ background-color: #d21f1f !important; color: #ffffff !important;",
        dark,
    )
    assert f".prose a {{ color: {palette.dark_link} !important; }}" in dark
    assert ratio(palette.dark_link, DARK_SHEET) >= TEXT_RATIO
    assert "[data-ogsc] .prose a.button { color: #ffffff !important; }" in css  # Outlook.com's dark mode


@pytest.mark.parametrize("primary", ["#1f4e79", "#d21f1f", "#ffd700", "#000000", "#ffffff", "hsl(120 60% 25%)", "teal"])
def test_dark_mode_and_derived_colours_reach_their_ratio_whatever_the_brand(primary):
    palette = palette_of(Brand(primary_color=primary, accent_color=primary))
    assert ratio(palette.dark_link, palette.dark_sheet) >= TEXT_RATIO
    assert ratio(palette.dark_link, palette.dark_callout_background) >= TEXT_RATIO
    assert ratio(palette.dark_callout_text, palette.dark_callout_background) >= TEXT_RATIO
    assert ratio(palette.on_button, palette.button) >= TEXT_RATIO
    assert ratio(palette.callout_link, palette.callout_background) >= TEXT_RATIO
    assert ratio(palette.masthead_muted, palette.masthead) >= TEXT_RATIO
    assert ratio(palette.heading, palette.sheet) >= TEXT_RATIO
    assert ratio(palette.muted, palette.page) >= TEXT_RATIO


def test_theme_is_chosen_by_the_theme_table_or_the_old_top_level_key(tmp_path):
    components_project(tmp_path, theme="letter")
    config = load_config(tmp_path / "broadsheet.toml")
    assert config.theme == "letter" and (config.theme_dir / "email.mjml.j2").is_file()
    assert config.theme_dir.parent.name == "themes"  # the one broadsheet ships (and its wheel carries)
    text = (tmp_path / "broadsheet.toml").read_text().replace('[theme]\nname = "letter"\n', "")
    (tmp_path / "broadsheet.toml").write_text('theme = "letter"\n' + text)
    assert load_config(tmp_path / "broadsheet.toml").theme == "letter"
    (tmp_path / "broadsheet.toml").write_text(text + '[theme]\nnam = "letter"\n')
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "broadsheet.toml")
    assert "unknown key 'theme.nam'" in str(error.value) and "broadsheet.toml:" in str(error.value.where)


def test_the_letter_theme_is_its_own_design(tmp_path):
    _, default = build_components(tmp_path / "a")
    _, letter = build_components(tmp_path / "b", theme="letter")
    assert "Georgia" in letter.html and "Georgia" not in default.html
    assert 'class="masthead' not in letter.html and "masthead" in default.html


def test_packaged_themes_match_the_wheels_package_data():
    """pyproject's package-data globs carry every file of every shipped theme (a theme folder one level deep)."""
    themes = ROOT / "src" / "broadsheet" / "core" / "themes"
    files = [p.relative_to(themes) for name in ("letter", "shared") for p in (themes / name).rglob("*") if p.is_file()]
    assert files and all(len(p.parts) == 2 or (len(p.parts) == 3 and p.parts[1] == "partials") for p in files)
    assert '"core/themes/*/*", "core/themes/*/partials/*"' in (ROOT / "pyproject.toml").read_text()


# -- lint ------------------------------------------------------------------------------------------------


def lint(tmp_path: Path, body: str = COMPONENTS, **options: str) -> list:
    folder = components_project(tmp_path, body=body, **options)
    config = load_config(tmp_path / "broadsheet.toml")
    issue, rendered = read_and_build(folder, config)
    return lint_rendered(rendered, issue, config, validate_mjml=False)


@pytest.mark.parametrize("theme", THEMES)
def test_lint_finds_nothing_wrong_with_the_components(tmp_path, theme):
    assert [str(f) for f in lint(tmp_path, theme=theme)] == []


def test_lint_names_a_button_without_an_address_and_its_line(tmp_path):
    findings = lint(tmp_path, body="---\ntitle: A\n---\nSome text.\n\n[Book your seat](){.button}\n")
    [finding] = [f for f in findings if f.rule == "button-link"]
    assert finding.severity == "error" and "Book your seat" in finding.message
    assert finding.where.endswith("01-components.md:6")


def test_lint_names_a_button_class_after_no_link_and_an_unknown_block(tmp_path):
    body = "---\ntitle: A\n---\nBook now {.button}\n\n::: calout\nThe deadline.\n:::\n"
    findings = [f for f in lint(tmp_path, body=body) if f.rule == "component-syntax"]
    assert [(f.where.rsplit(":", 1)[-1], "calout" in f.message) for f in findings] == [("4", False), ("6", True)]


def test_lint_names_a_caption_without_an_image_and_a_pair_of_one(tmp_path):
    body = "---\ntitle: A\n---\n::: figure\nA caption alone.\n:::\n\n::: pair\n![Only](../images/left.png)\n:::\n"
    findings = {f.rule: f for f in lint(tmp_path, body=body)}
    assert "A caption alone" in findings["caption-image"].message
    assert findings["caption-image"].where.endswith("01-components.md:5")
    assert "1 image" in findings["pair-images"].message and findings["pair-images"].where.endswith(":8")


def test_lint_warns_of_brand_colours_below_wcag(tmp_path):
    findings = [
        f
        for f in lint(tmp_path, brand='primary_color = "#ffd700"\naccent_color = "#f0f0f0"')
        if f.rule == "brand-contrast"
    ]
    messages = " | ".join(f.message for f in findings)
    assert "links are #ffd700 on #ffffff" in messages and "below WCAG's 4.5:1" in messages
    assert "buttons are #ffd700" in messages and "secondary buttons are #f0f0f0" in messages
    assert all(re.search(r"broadsheet\.toml:\d+$", f.where) for f in findings)


def white_logo(path: Path) -> Path:
    image = Image.new("RGBA", (200, 60), (0, 0, 0, 0))
    image.paste((255, 255, 255, 255), (20, 10, 180, 50))
    image.save(path)
    return path


def test_lint_warns_of_a_white_logo_on_a_light_band_and_on_serves_white(tmp_path):
    (tmp_path / "assets").mkdir()
    white_logo(tmp_path / "assets" / "logo.png")
    findings = [
        f
        for f in lint(tmp_path, brand='logo = "assets/logo.png"\nprimary_color = "#dde8f0"')
        if f.rule == "logo-background"
    ]
    assert len(findings) == 2
    assert "hardly shows on the email's masthead (#dde8f0)" in findings[0].message
    assert "serve's pages and confirmation mails" in findings[1].message


def test_a_white_logo_on_a_dark_band_warns_only_of_serves_white(tmp_path):
    (tmp_path / "assets").mkdir()
    white_logo(tmp_path / "assets" / "logo.png")
    findings = [f for f in lint(tmp_path, brand='logo = "assets/logo.png"') if f.rule == "logo-background"]
    assert [("serve's pages" in f.message) for f in findings] == [True]
    (tmp_path / "broadsheet.toml").write_text(
        (tmp_path / "broadsheet.toml").read_text().replace('"default"', '"letter"')
    )
    findings = [
        f for f in lint(tmp_path, brand='logo = "assets/logo.png"', theme="letter") if f.rule == "logo-background"
    ]
    assert any("the email's sheet (#ffffff)" in f.message for f in findings)  # the letter puts it on the sheet


@pytest.mark.node
@pytest.mark.slow
@pytest.mark.parametrize("theme", THEMES)
def test_components_pass_the_official_mjml_validator_in_strict_mode(tmp_path, theme):
    if not MJML_CLI.exists():
        missing("the npm mjml validator", "make validator")
    _, rendered = build_components(tmp_path, theme=theme)
    path = tmp_path / "email.mjml"
    path.write_text(rendered.mjml, encoding="utf-8")
    result = subprocess.run([str(MJML_CLI), "--validate", str(path), "--config.validationLevel=strict"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "v:roundrect" in rendered.mjml and "pair-item" in rendered.mjml  # what the validator read
