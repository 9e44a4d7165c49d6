"""`broadsheet new`: Unicode titles, images/, the next commands; an untouched scaffold is not sendable."""

from __future__ import annotations

import re
from pathlib import Path

from test_cli_build import assert_one_line_error, run_cli

from broadsheet.faces.cli import main


def scaffold(project: Path, title: str = "成都 and Flemish Brabant") -> tuple[Path, str]:
    result = run_cli(project, "new", title, "--date", "2026-12-04")
    assert result.returncode == 0, result.stderr
    return project / "issues" / f"2026-12-04-{title.lower().replace(' ', '-')}", result.stdout


def test_a_chinese_title_keeps_its_characters_and_the_folder_has_images(project):
    folder, out = scaffold(project)
    assert folder.name == "2026-12-04-成都-and-flemish-brabant" and (folder / "images").is_dir()
    assert f"created {folder}" in out
    assert f"broadsheet preview issues/{folder.name}" in out and f"broadsheet send issues/{folder.name} --test" in out
    assert run_cli(project, "build", f"issues/{folder.name}").returncode == 0
    html = (project / "dist" / folder.name / "email.html").read_text(encoding="utf-8")
    assert "%E6%88%90%E9%83%BD-and-flemish-brabant/" in html  # the view-online address, percent-encoded


def test_accents_are_dropped_from_the_slug(project):
    run_cli(project, "new", "Café Noël", "--date", "2026-12-04")
    assert (project / "issues" / "2026-12-04-cafe-noel" / "issue.md").is_file()


def test_an_untouched_scaffold_is_an_error_for_lint_and_send_and_printed_by_build(project, capsys, monkeypatch):
    folder, _ = scaffold(project, "Winter")
    issue_md = (folder / "issue.md").read_text(encoding="utf-8").splitlines()
    line = {key: n for n, text in enumerate(issue_md, 1) for key in ("preheader:", "A few words") if key in text}
    lint = run_cli(project, "lint", f"issues/{folder.name}", "--no-validator")
    assert lint.returncode == 1
    errors = [text for text in lint.stdout.splitlines() if "[scaffold]" in text]
    assert any(f"issue.md:{line['preheader:']}" in e and "the preheader" in e for e in errors), errors
    assert any(f"issue.md:{line['A few words']}" in e and "the introduction" in e for e in errors)
    assert any("01-first-article.md:2" in e and "an article title" in e for e in errors)
    assert any("01-first-article.md:6" in e and "an article's text" in e for e in errors)
    build = run_cli(project, "build", f"issues/{folder.name}")
    assert build.returncode == 0 and len(re.findall(r"lint: .*\[scaffold\]", build.stderr)) == 4
    monkeypatch.setenv("BROADSHEET_SECRET", "scaffold-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.chdir(project)
    assert main(["send", f"issues/{folder.name}", "--transport", "outbox", "--yes"]) == 2
    assert "lint found 4 error(s)" in capsys.readouterr().err
    assert not (project / "outbox").exists()
    # a test copy of the draft to yourself goes, with the errors shown: a draft is what it is for
    assert main(["send", f"issues/{folder.name}", "--transport", "outbox", "--test", "me@example.org"]) == 0
    assert "a test copy despite 4 lint error(s)" in capsys.readouterr().err
    assert len(list((project / "outbox").rglob("*.eml"))) == 1


def test_a_written_issue_has_no_scaffold_findings(project):
    folder, _ = scaffold(project, "Spring")
    issue_md = folder / "issue.md"
    text = issue_md.read_text(encoding="utf-8")
    text = re.sub(r'preheader: ".*"', 'preheader: "Three stories from the spring fair"', text)
    issue_md.write_text(
        text.replace("A few words from the editor: what this issue is about and why it matters.", "The fair was busy."),
        encoding="utf-8",
    )
    (folder / "articles" / "01-first-article.md").write_text(
        "---\ntitle: The fair\n---\nIt was busy.\n", encoding="utf-8"
    )
    lint = run_cli(project, "lint", f"issues/{folder.name}", "--no-validator")
    assert "[scaffold]" not in lint.stdout
    build = run_cli(project, "build", f"issues/{folder.name}")
    html = (project / "dist" / folder.name / "email.html").read_text(encoding="utf-8")
    assert build.returncode == 0 and "Dear {{ subscriber.first_name | default('reader') }}," in html


def test_an_empty_title_is_one_line(project):
    result = run_cli(project, "new", "  ")
    assert_one_line_error(result, "the issue needs a title")
    assert not [p for p in (project / "issues").iterdir() if p.name.endswith("-issue")]
