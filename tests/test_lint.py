"""Unit tests for every lint rule (a failing and a passing case each), the CLI and the sample issue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.installed import missing

from broadsheet.core.lint import rules
from broadsheet.core.lint.colour import contrast, parse_colour
from broadsheet.core.lint.document import parse_email
from broadsheet.core.lint.findings import Finding, summary
from broadsheet.core.lint.rules import LintContext
from broadsheet.core.lint.sources import SourceIndex
from broadsheet.core.lint.validator import find_validator

FOOTER = '<p>Example Org, 1 Main Street, Leuven</p><a href="https://example.org/u/1">Unsubscribe</a>'
GOOD_TEXT = "Hello readers, a long enough text part. https://example.org/a https://example.org/u/1"


def context(tmp_path: Path, html: str = "", **overrides) -> LintContext:
    """A context around an HTML body: good defaults everywhere else."""
    article = tmp_path / "01-article.md"
    if not article.exists():
        article.write_text("---\ntitle: A\n---\nSee [the page](https://example.org/a).\n")
        (tmp_path / "issue.md").write_text("---\nsubject: Weekly news\npreheader: What happened\nid: w-1\n---\n")
    body = html or f'<p>{"Plenty of words here. " * 20}</p><a href="https://example.org/a">the page</a>{FOOTER}'
    values = dict(
        subject="Weekly news",
        preheader="What happened this week",
        html=body,
        text=GOOD_TEXT,
        mjml="",
        document=parse_email(body),
        sources=SourceIndex([tmp_path / "issue.md", article]),
        issue_folder=tmp_path,
        issue_file=tmp_path / "issue.md",
        issue_id="w-1",
        postal_address="Example Org, 1 Main Street",
        unsubscribe_url="https://example.org/u/1",
    )
    values.update(overrides)
    if "html" in overrides and "document" not in overrides:
        values["document"] = parse_email(overrides["html"])
    return LintContext(**values)


def found(rule, ctx: LintContext) -> list[Finding]:
    return list(rule(ctx))


def page(inner: str) -> str:
    return f"<p>{'Plenty of words here. ' * 20}</p>{inner}{FOOTER}"


def test_the_default_context_is_clean(tmp_path):
    ctx = context(tmp_path)
    assert [f for rule in rules.RULES for f in rule(ctx)] == []


def test_size_error_above_gmail_clip_and_warning_near(tmp_path):
    big = page("<p>" + "x" * (103 * 1024) + "</p>")
    near = page("<p>" + "x" * (95 * 1024) + "</p>")
    [error] = found(rules.check_size, context(tmp_path, html=big))
    assert error.severity == "error" and "KB" in error.message
    [warning] = found(rules.check_size, context(tmp_path, html=near))
    assert warning.severity == "warning"
    assert found(rules.check_size, context(tmp_path)) == []


def test_image_alt(tmp_path):
    bad = page(
        '<img src="https://example.org/a.png" width="600"><img src="https://example.org/b.png" alt="" width="6">'
    )
    assert [f.rule for f in found(rules.check_image_alt, context(tmp_path, html=bad))] == ["image-alt"] * 2
    good = page(
        '<img src="https://example.org/a.png" alt="A map" width="600"><img src="https://x.org/p.gif" width="1" height="1">'
    )
    assert found(rules.check_image_alt, context(tmp_path, html=good)) == []


def test_image_width(tmp_path):
    assert found(rules.check_image_width, context(tmp_path, html=page('<img src="https://e.org/a.png" alt="a">')))
    assert not found(
        rules.check_image_width, context(tmp_path, html=page('<img src="https://e.org/a.png" alt="a" width="600">'))
    )


def test_image_url_http_and_relative(tmp_path):
    bad = page('<img src="http://e.org/a.png" alt="a" width="1"><img src="images/b.png" alt="b" width="1">')
    severities = sorted(f.severity for f in found(rules.check_image_url, context(tmp_path, html=bad)))
    assert severities == ["error", "warning"]
    assert not found(rules.check_image_url, context(tmp_path, html=page('<img src="https://e.org/a.png" alt="a">')))


def test_image_missing_local_file(tmp_path):
    ctx = context(
        tmp_path,
        html=page('<img src="images/gone.png" alt="a" width="10">'),
        local_images=(tmp_path / "images" / "also-gone.png",),
    )
    assert [f.message for f in found(rules.check_image_files, ctx)] == [
        "image file images/gone.png does not exist",
        f"image file {tmp_path / 'images' / 'also-gone.png'} does not exist",
    ]
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "gone.png").write_bytes(b"png")
    (tmp_path / "images" / "also-gone.png").write_bytes(b"png")
    assert found(rules.check_image_files, ctx) == []


@pytest.mark.parametrize(
    ("href", "rule", "severity"),
    [
        ("javascript:alert(1)", "link-javascript", "error"),
        ("", "link-empty", "error"),
        ("#", "link-empty", "error"),
        ("http://example.org/a", "link-https", "warning"),
        ("page.html", "link-relative", "error"),
    ],
)
def test_bad_links(tmp_path, href, rule, severity):
    [finding] = found(rules.check_link_urls, context(tmp_path, html=page(f'<a href="{href}">Read</a>')))
    assert (finding.rule, finding.severity) == (rule, severity)


def test_good_links(tmp_path):
    html = page('<a href="https://e.org/">x</a><a href="mailto:a@e.org">m</a><a href="#top">t</a><a id="top">top</a>')
    assert found(rules.check_link_urls, context(tmp_path, html=html)) == []


def test_link_where_points_at_the_markdown_line(tmp_path):
    ctx = context(tmp_path, html=page('<a href="http://example.org/a">the page</a>'))
    (tmp_path / "01-article.md").write_text("---\ntitle: A\n---\nSee [the page](http://example.org/a).\n")
    ctx.sources = SourceIndex([tmp_path / "01-article.md"])
    [finding] = found(rules.check_link_urls, ctx)
    assert finding.where.endswith("01-article.md:4")


def test_image_where_prefers_the_markdown_image_to_the_hero_line(tmp_path):
    src = "https://news.example.org/issue/images/pic.png"
    ctx = context(tmp_path, html=page(f'<img src="{src}" alt="" width="536">'))
    (tmp_path / "01-article.md").write_text(
        "---\ntitle: A\nimage: ../images/pic.png\nimage_alt: Hero\n---\nText\n\n![](../images/pic.png)\n"
    )
    ctx.sources = SourceIndex([tmp_path / "01-article.md"])
    [finding] = found(rules.check_image_alt, ctx)
    assert finding.where.endswith("01-article.md:8"), finding.where


def test_duplicate_link_texts(tmp_path):
    bad = page('<a href="https://e.org/1">Read more</a><a href="https://e.org/2">read  more</a>')
    [finding] = found(rules.check_duplicate_link_texts, context(tmp_path, html=bad))
    assert "2 different URLs" in finding.message
    same = page('<a href="https://e.org/1">Read more</a><a href="https://e.org/1/">Read more</a>')
    assert found(rules.check_duplicate_link_texts, context(tmp_path, html=same)) == []


def test_unsubscribe_link(tmp_path):
    html = f"<p>{'words ' * 50}</p><p>Example Org, 1 Main Street</p>"
    [finding] = found(rules.check_unsubscribe, context(tmp_path, html=html))
    assert finding.severity == "error"
    assert not found(rules.check_unsubscribe, context(tmp_path))
    by_url = html + '<a href="https://example.org/u/1">Manage</a>'
    assert not found(rules.check_unsubscribe, context(tmp_path, html=by_url))


def test_an_unsubscribe_link_the_same_for_every_reader_is_a_warning(tmp_path):
    same = context(tmp_path, unsubscribe_url="https://example.org/unsubscribe", unsubscribe_personal=False)
    [finding] = found(rules.check_unsubscribe_personal, same)
    assert finding.severity == "warning" and "{token}" in finding.message
    assert not found(rules.check_unsubscribe_personal, context(tmp_path, unsubscribe_url="https://example.org/u/AbC"))
    mailto = context(tmp_path, unsubscribe_url="mailto:leave@example.org", unsubscribe_personal=False)
    assert not found(rules.check_unsubscribe_personal, mailto)  # a mail says who sent it


def test_an_address_in_the_unsubscribe_link_is_a_warning(tmp_path):
    leaky = context(tmp_path, unsubscribe_url="https://example.org/unsubscribe?email=reader@example.com&token=x")
    [finding] = found(rules.check_unsubscribe_address, leaky)
    assert finding.severity == "warning" and "public_url" in finding.message
    encoded = context(tmp_path, unsubscribe_url="https://example.org/unsubscribe?e=reader%40example.com")
    assert found(rules.check_unsubscribe_address, encoded)
    assert not found(rules.check_unsubscribe_address, context(tmp_path, unsubscribe_url="https://example.org/u/AbC"))
    assert not found(rules.check_unsubscribe_address, context(tmp_path, unsubscribe_url="mailto:leave@example.org"))


def test_postal_address(tmp_path):
    assert found(rules.check_postal_address, context(tmp_path, postal_address=""))[0].severity == "error"
    hidden = context(tmp_path, postal_address="Somewhere Else 9, Gent")
    assert "not shown" in found(rules.check_postal_address, hidden)[0].message
    assert not found(rules.check_postal_address, context(tmp_path))


def test_preheader(tmp_path):
    [missing] = found(rules.check_preheader, context(tmp_path, preheader=""))
    assert missing.where.endswith("issue.md:3")
    assert found(rules.check_preheader, context(tmp_path, preheader="x" * 101))
    assert not found(rules.check_preheader, context(tmp_path, preheader="x" * 100))


def test_subject(tmp_path):
    assert found(rules.check_subject, context(tmp_path, subject=""))[0].severity == "error"
    assert found(rules.check_subject, context(tmp_path, subject="s" * 79))[0].severity == "warning"
    assert not found(rules.check_subject, context(tmp_path, subject="s" * 78))


def test_subject_in_capitals(tmp_path):
    assert found(rules.check_subject_caps, context(tmp_path, subject="FREE MONEY INSIDE now"))
    assert not found(rules.check_subject_caps, context(tmp_path, subject="News from the EU and NATO"))


def test_text_part_missing(tmp_path):
    assert found(rules.check_text_part, context(tmp_path, text=""))[0].rule == "text-part"


def test_text_part_lacks_a_link(tmp_path):
    [finding] = found(
        rules.check_text_part,
        context(tmp_path, text="Hello readers, this text has no links at all. https://example.org/u/1"),
    )
    assert finding.rule == "text-links" and "https://example.org/a" in finding.message
    assert finding.where.endswith("01-article.md:4")
    assert not found(rules.check_text_part, context(tmp_path))


def test_image_only(tmp_path):
    only = '<img src="https://e.org/a.png" alt="a" width="600"><a href="https://e.org/u">Unsubscribe</a>'
    assert found(rules.check_image_only, context(tmp_path, html=only))[0].severity == "error"
    nearly = (
        '<img src="https://e.org/a.png" alt="a" width="600"><img src="https://e.org/b.png" alt="b" width="600">'
        f"<p>{'word ' * 40}</p>"
    )
    assert found(rules.check_image_only, context(tmp_path, html=nearly))[0].severity == "warning"
    assert not found(rules.check_image_only, context(tmp_path, html=page('<img src="https://e.org/a.png" alt="a">')))


def test_low_contrast_white_on_white(tmp_path):
    html = page('<div style="background-color:#ffffff"><p style="color:#fefefe">Buy cheap pills now</p></div>')
    [finding] = found(rules.check_contrast, context(tmp_path, html=html))
    assert finding.severity == "error" and "#fefefe on #ffffff" in finding.message
    grey = page('<table bgcolor="#f2f4f7"><tr><td style="color:#bbbbbb">Faint footer words</td></tr></table>')
    assert found(rules.check_contrast, context(tmp_path, html=grey))[0].severity == "warning"
    ok = page(
        '<div style="background:#1f4e79 url(x.png)"><p style="color:white">Header</p></div>'
        '<div style="display:none;color:#ffffff">hidden preheader</div>'
    )
    assert not found(rules.check_contrast, context(tmp_path, html=ok))


def test_colours():
    assert parse_colour("#FFF") == (255, 255, 255)
    assert parse_colour("rgb(0, 0, 0)") == (0, 0, 0)
    assert parse_colour("transparent") is None and parse_colour("rgba(0,0,0,0)") is None
    assert round(contrast((0, 0, 0), (255, 255, 255))) == 21


@pytest.mark.node
@pytest.mark.slow
def test_mjml_validator_rule(tmp_path):
    validator = find_validator()
    if validator is None:
        missing("the npm mjml validator", "make validator")
    bad = "<mjml><mj-body><mj-section><mj-text>Hi</mj-text></mj-section></mj-body></mjml>"
    [finding] = found(rules.check_mjml, context(tmp_path, mjml=bad, validator=validator))
    assert finding.rule == "mjml-valid" and "mj-text" in finding.message and "email.mjml:1" in finding.where
    good = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column></mj-section></mj-body></mjml>"
    assert not found(rules.check_mjml, context(tmp_path, mjml=good, validator=validator))


def test_mjml_rule_is_skipped_without_validator(tmp_path):
    assert not found(rules.check_mjml, context(tmp_path, mjml="<mjml><broken>", validator=None))


def test_summary():
    assert summary([]) == "no problems found"
    assert summary([Finding("a", "error", "m", "w"), Finding("b", "warning", "m", "w")]) == "1 error, 1 warning"


SLUG = "2021-06-01-chengdu-flemish-brabant"


def test_lint_command_on_the_sample_issue(project: Path, monkeypatch, capsys):
    from broadsheet.faces.cli import main

    monkeypatch.chdir(project)
    assert main(["lint", f"issues/{SLUG}", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 0 and report["issue"].endswith(SLUG)
    assert all(set(f) == {"rule", "severity", "message", "where"} for f in report["findings"])


def test_lint_command_exits_1_on_errors(project: Path, monkeypatch, capsys):
    from broadsheet.faces.cli import main

    config = project / "broadsheet.toml"
    config.write_text(config.read_text().replace("postal_address =", "# postal_address ="))
    article = project / "issues" / SLUG / "articles" / "02-contact.md"
    article.write_text(article.read_text() + "\n[Click](javascript:alert(1)) and [old](http://example.org/old).\n")
    monkeypatch.chdir(project)
    assert main(["lint", f"issues/{SLUG}", "--no-validator"]) == 1
    out = capsys.readouterr().out
    assert "broadsheet.toml" in out and "[postal-address]" in out
    assert f"issues/{SLUG}/articles/02-contact.md:" in out and "[link-https]" in out
    assert re.search(r": 1 error, \d+ warnings?$", out.strip())


def test_lint_command_missing_folder(project: Path, monkeypatch, capsys):
    from broadsheet.faces.cli import main

    monkeypatch.chdir(project)
    assert main(["lint", "issues/nope"]) == 2
    assert "issues/nope: issue folder not found" in capsys.readouterr().err


def test_build_prints_lint_findings(project: Path, monkeypatch, capsys):
    from broadsheet.faces.cli import main

    config = project / "broadsheet.toml"
    config.write_text(config.read_text().replace("postal_address =", "# postal_address ="))
    monkeypatch.chdir(project)
    assert main(["build", f"issues/{SLUG}", "--out", str(project / "dist")]) == 0
    assert "lint: broadsheet.toml" in capsys.readouterr().err


def test_relative_src_of_an_image_the_build_publishes_is_not_missing(tmp_path):
    logo = tmp_path / "assets" / "logo.png"
    logo.parent.mkdir()
    logo.write_bytes(b"png")
    ctx = context(
        tmp_path,
        html=page('<img src="images/logo-logo.png" alt="a" width="10">'),
        local_images=(logo,),
        published_images={"logo-logo.png": logo},
    )
    assert found(rules.check_image_files, ctx) == []


def test_the_default_theme_without_base_url_has_no_dead_links(tmp_path):
    from dataclasses import replace

    from broadsheet.core.config import load_config
    from broadsheet.core.lint import lint_issue

    root = Path(__file__).resolve().parents[1]
    config = replace(load_config(root / "broadsheet.toml"), base_url="")
    issue = root / "issues" / "2021-06-01-chengdu-flemish-brabant"
    rules_found = {f.rule for f in lint_issue(issue, config, validate_mjml=False)}
    assert "image-url" in rules_found  # relative images: the lint says to set base_url
    assert not rules_found & {"link-empty", "image-missing"}, rules_found


def test_lint_json_reports_a_build_error_as_json(project: Path, monkeypatch, capsys):
    import json

    from broadsheet.faces.cli import main

    article = project / "issues" / SLUG / "articles" / "02-contact.md"
    article.write_text(article.read_text().replace("title:", "title: [unclosed", 1))
    monkeypatch.chdir(project)
    assert main(["lint", f"issues/{SLUG}", "--format", "json", "--no-validator"]) == 2
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["errors"] == 1 and document["findings"][0]["rule"] == "build"
    assert "02-contact.md:2" in document["findings"][0]["where"]
    assert "malformed front matter" in captured.err


def test_an_issue_without_an_id_is_warned_about_and_one_with_an_id_is_not(project: Path, monkeypatch, capsys):
    from broadsheet.faces.cli import main

    monkeypatch.chdir(project)

    def rules_found() -> list[str]:
        main(["lint", f"issues/{SLUG}", "--format", "json", "--no-validator"])
        return [f["rule"] for f in json.loads(capsys.readouterr().out)["findings"]]

    assert "issue-id" not in rules_found()  # the sample has an id
    issue = project / "issues" / SLUG / "issue.md"
    issue.write_text("".join(line for line in issue.read_text().splitlines(True) if not line.startswith("id:")))
    assert rules_found().count("issue-id") == 1


def test_table_width_warns_of_a_table_wider_than_the_theme_shows(tmp_path):
    from broadsheet.core.content.markdown import render_markdown

    (tmp_path / "issue.md").write_text("---\nsubject: Weekly news\n---\n")
    article = tmp_path / "01-article.md"
    narrow = "| Year | Sales |\n|---|---|\n| 2021 | 12 |\n"
    phone = "| Region | 2019 exports | 2020 exports | 2021 exports |\n|---|---|---|---|\n| Antwerp | 5,432 | 4,987 | 6,001 |\n"
    wide = "| A | B | C | D | E |\n|---|---|---|---|---|\n| Internationalisation | Competitiveness | "
    wide += "Responsibilities | Interoperability | Telecommunications |\n"
    cjk = "| 城市 | 合作领域 |\n|---|---|\n| 成都 | 投资、创新、人文交流、健康、物流、食品、清洁技术和创意 |\n"
    article.write_text(f"---\ntitle: A\n---\n{narrow}\n{phone}\n{wide}\n{cjk}", encoding="utf-8")
    html = render_markdown(article.read_text(encoding="utf-8").split("---\n", 2)[2]).html
    findings = found(rules.check_table_width, context(tmp_path, html=page(html)))
    assert [(f.rule, f.severity, f.where) for f in findings] == [
        ("table-width", "warning", f"{article}:8"),
        ("table-width", "warning", f"{article}:12"),
    ]
    phone_width = int(re.search(r"needs about (\d+) px", findings[0].message)[1])
    assert 288 < phone_width <= 536 and "288 px on a 320 px phone" in findings[0].message
    assert "4 columns" in findings[0].message and "5 columns" in findings[1].message
    assert "wider than the 536 px the theme shows on any screen" in findings[1].message
