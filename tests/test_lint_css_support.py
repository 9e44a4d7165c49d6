"""The CSS support rule: what Gmail, Outlook for Windows or Apple Mail ignore, from the caniemail data."""

from __future__ import annotations

from pathlib import Path

from test_lint import context, found

from broadsheet.core.lint import rules
from broadsheet.core.lint.css_support import DEGRADES, support_table, unsupported_in_stylesheet
from broadsheet.core.lint.sources import SourceIndex


def slug(finding) -> str:
    """The caniemail feature a finding names (from its link)."""
    return finding.message.split("/features/css-", 1)[1].split("/", 1)[0]


def lint_files(tmp_path: Path, *files: Path):
    ctx = context(tmp_path, sources=SourceIndex(files))
    return found(rules.check_css_support, ctx)


def test_an_articles_inline_css_that_clients_ignore_is_named_with_its_clients_and_line(tmp_path):
    article = tmp_path / "02-cards.md"
    article.write_text(
        "---\ntitle: Cards\n---\nIntro.\n\n"
        '<div style="display: flex; gap: 8px">\n'
        '<p style="box-shadow: 0 0 4px #000; color: #222">One</p>\n'
        '<p style="display:flex">Two</p>\n'
        "</div>\n"
    )
    findings = lint_files(tmp_path, article)
    by_text = {slug(finding): finding for finding in findings}
    assert sorted(by_text) == ["box-shadow", "display-flex", "gap"]  # once each; colour is fine everywhere
    assert len(findings) == 3
    assert by_text["display-flex"].where == f"{article}:6"
    assert "by Outlook for Windows (" in by_text["display-flex"].message
    assert "by Gmail and Outlook for Windows (https://www.caniemail.com/features/css-box-shadow/)" in (
        by_text["box-shadow"].message
    )
    assert by_text["box-shadow"].where == f"{article}:7"
    assert all(finding.severity == "warning" and finding.rule == "css-support" for finding in findings)


def test_a_theme_style_sheet_is_checked_but_enhancements_that_degrade_are_not_named(tmp_path):
    sheet = tmp_path / "style.css"
    sheet.write_text(
        ".prose a:hover { text-decoration: none; }\n"
        ".prose pre { white-space: pre-wrap; overflow-wrap: anywhere; }\n"
        "@media (prefers-color-scheme: dark) { .page > div { box-shadow: none; } }\n"
        "[data-ogsc] .prose * { color: #eee !important; }\n"
        ".badge { position: absolute; top: 0; }\n"
        ".hero { background: linear-gradient(#fff, #eee); }\n"
    )
    findings = lint_files(tmp_path, sheet)
    assert sorted(slug(finding) for finding in findings) == ["left-right-top-bottom", "linear-gradient", "position"]
    position = next(finding for finding in findings if slug(finding) == "position")
    assert position.where == f"{sheet}:5"  # inside the dark-mode query it is read only where that is
    assert "Gmail and Outlook for Windows" in position.message


def test_the_sample_issues_markdown_and_clean_css_give_nothing(tmp_path):
    sheet = tmp_path / "style.css"
    sheet.write_text(".prose p { margin: 0 0 16px; font-size: 16px; color: #222; }\n")
    article = tmp_path / "01-article.md"
    article.write_text("---\ntitle: A\n---\nPlain *Markdown*, no CSS.\n")
    assert lint_files(tmp_path, sheet, article) == []


def test_the_shipped_table_names_its_source_and_every_exemption_is_a_feature_it_knows():
    table = support_table()
    assert table["source"].startswith("caniemail ") and "MIT" in table["licence"]
    assert "Outlook for Windows" in table["features"]["css-display-flex"]["no"]
    degrades = {slug for slug in DEGRADES if slug in table["features"]}
    assert degrades == set(DEGRADES)  # an exemption the data no longer lists is one to drop


def test_a_style_sheet_can_name_what_it_uses_knowingly_and_only_that_is_left_out(tmp_path):
    sheet = tmp_path / "style.css"
    sheet.write_text(
        "/* css-support-ok: css-min-width css-box-sizing; Outlook keeps its fixed 600 px column */\n"
        ".a { min-width: 4em; box-sizing: border-box; min-height: 44px; }\n"
    )
    assert [slug(finding) for finding in lint_files(tmp_path, sheet)] == ["min-height"]


def test_the_shipped_themes_give_no_css_warning():
    import broadsheet.core

    themes = Path(broadsheet.core.__file__).parent / "themes"
    sheets = sorted(themes.glob("*/*.css"))
    assert {sheet.parent.name for sheet in sheets} >= {"default", "letter", "shared"}
    for sheet in sheets:
        assert list(unsupported_in_stylesheet(sheet.read_text(encoding="utf-8"))) == [], sheet
