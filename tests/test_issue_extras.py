"""summary, toc, tags and reading time: shown in the email; build prints every lint finding."""

from __future__ import annotations

import lxml.html
from support.issues import write_issue
from test_cli_build import run_cli

from broadsheet.core.config import load_config
from broadsheet.core.content import read_issue
from broadsheet.core.render import build_issue
from broadsheet.usecases.publish.reader import summary

WORDS = " ".join(["word"] * 700)  # ~3 minutes at 230 words a minute


def build(project, front: str = "", article_front: str = ""):
    folder = write_issue(
        project,
        issue=f"---\ntitle: Extras\n{front}---\nIntro.\n",
        articles={
            "01-one.md": f"---\ntitle: First story\n{article_front}---\n{WORDS}\n",
            "02-two.md": "---\ntitle: Second story\n---\nShort.\n",
        },
    )
    config = load_config(project / "broadsheet.toml")
    return folder, read_issue(folder, config), build_issue(folder, config)


def test_the_summary_is_the_preheader_when_there_is_none_and_the_archive_summary(project):
    _, issue, rendered = build(project, front="summary: Three stories from the fair\n")
    assert rendered.preheader == "Three stories from the fair"
    assert '<div class="preheader"' in rendered.html and "Three stories from the fair" in rendered.html
    assert summary(issue) == "Three stories from the fair"
    _, _, rendered = build(project, front="summary: S\npreheader: Own preheader\n")
    assert rendered.preheader == "Own preheader"


def test_reading_time_tags_and_table_of_contents(project):
    _folder, issue, rendered = build(project, front="toc: true\n", article_front="tags: [trade, events]\n")
    assert issue.reading_minutes == 3
    document = lxml.html.fromstring(rendered.web_html)
    assert "3 MIN READ" in document.text_content() and "3 min read" in rendered.text
    assert [p.text_content() for p in document.cssselect("p.tags")] == ["trade · events"]
    assert "Tags: trade, events" in rendered.text
    toc = document.cssselect("ol.toc li a")
    assert [a.text_content() for a in toc] == ["First story", "Second story"]
    slug_hrefs = [a.get("href") for a in toc]
    assert all(href.startswith("https://newsletter.example.org/2024-01-02-test-issue/#") for href in slug_hrefs)
    targets = {h.get("id") for h in document.cssselect("h2.article-title")}
    assert {href.split("#")[1] for href in slug_hrefs} <= targets  # each entry leads to its article
    assert (  # the text part's contents list its links too
        "In this issue:\n1. First story\n   {{ view_online_url }}#one\n2. Second story\n   {{ view_online_url }}#two"
        in rendered.text
    )
    _, _, plain = build(project)
    assert 'ol class="toc"' not in plain.html and "In this issue" not in plain.text


def test_build_prints_every_finding_lint_prints(project):
    folder, _, _ = build(project, front="preheader: " + "p" * 120 + "\n")
    (folder / "articles" / "02-two.md").write_text(
        "---\ntitle: Second story\n---\n![](http://example.org/a.png)\n"
        "\n[here](https://a.example) and [here](https://b.example)\n",
        encoding="utf-8",
    )
    lint = run_cli(project, "lint", f"issues/{folder.name}", "--no-validator")
    build_run = run_cli(project, "build", f"issues/{folder.name}")
    findings = [line for line in lint.stdout.splitlines() if line.rstrip().endswith("]")]
    assert len(findings) >= 4, lint.stdout
    for finding in findings:
        assert f"lint: {finding}" in build_run.stderr, finding
