import io
import os
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from support.issues import hashed

from broadsheet import __version__
from broadsheet.faces.cli import COMMANDS, main

SAMPLE_NAME = "2021-06-01-chengdu-flemish-brabant"


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``broadsheet …`` in ``cwd`` through ``cli.main`` in this process, as the console script calls it (no
    child process to start): stdin empty and not a terminal, output captured, BROADSHEET_DEBUG unset."""
    out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True) for _ in range(2))
    debug = os.environ.pop("BROADSHEET_DEBUG", None)
    before, stdin = Path.cwd(), sys.stdin
    os.chdir(cwd)
    sys.stdin = io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's --help and usage errors
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin = stdin
        os.chdir(before)
        if debug is not None:
            os.environ["BROADSHEET_DEBUG"] = debug
    output, errors = (stream.buffer.getvalue().decode("utf-8") for stream in (out, err))  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(["broadsheet", *args], code, output, errors)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_build_writes_outputs_and_reports_size(project):
    result = run_cli(project, "build", f"issues/{SAMPLE_NAME}")
    assert result.returncode == 0, result.stderr
    assert "of Gmail's 102 KB clipping limit" in result.stdout
    target = project / "dist" / SAMPLE_NAME
    assert (target / "email.html").is_file()
    assert any(re.fullmatch(hashed("chengdu-flemish-brabant.png"), p.name) for p in (target / "images").iterdir())


def test_build_out_option(project, tmp_path):
    assert main(["--config", str(project / "broadsheet.toml"), "build", str(project / "issues" / SAMPLE_NAME),
                 "--out", str(tmp_path / "elsewhere")]) == 0  # fmt: skip
    assert (tmp_path / "elsewhere" / SAMPLE_NAME / "web.html").is_file()


def break_file(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "breakage, fragments",
    [
        (lambda p: None, ("issues/missing", "issue folder not found")),
        (
            lambda p: break_file(p / "issues" / SAMPLE_NAME / "issue.md", "number: 42", "number: [42"),
            ("issue.md:6", "malformed front matter"),
        ),
        (
            lambda p: break_file(p / "issues" / SAMPLE_NAME / "articles" / "02-contact.md", "title:", "titel:"),
            ("02-contact.md:2", "unknown front matter key 'titel'"),
        ),
        (
            lambda p: break_file(
                p / "issues" / SAMPLE_NAME / "articles" / "02-contact.md", 'title: "Need more information?"\n', ""
            ),
            ("02-contact.md:1", "missing title"),
        ),
        (
            lambda p: (p / "issues" / SAMPLE_NAME / "articles" / "03-latin.md").write_bytes(
                b"---\ntitle: caf\xe9\n---\n"
            ),
            ("03-latin.md:2", "not UTF-8", "save it as UTF-8"),
        ),
        (
            lambda p: break_file(p / "broadsheet.toml", "[send]\n", "[send]\nconections = 2\n"),
            ("broadsheet.toml:", "unknown key 'send.conections'", "did you mean 'connections'"),
        ),
        (
            lambda p: break_file(
                p / "templates" / "default" / "partials" / "footer.mjml.j2", "{% endif %}", "{% endfi %}"
            ),
            ("footer.mjml.j2:", "template syntax error"),
        ),
        (
            lambda p: break_file(p / "templates" / "default" / "email.mjml.j2", "</mj-body>", ""),
            ("email.mjml.j2", "MJML does not compile"),
        ),
        (
            lambda p: (p / "issues" / SAMPLE_NAME / "images" / "chengdu-flemish-brabant.png").unlink(),
            ("01-chengdu-flemish-brabant.md:", "image not found"),
        ),
    ],
    ids=[
        "missing-folder",
        "bad-yaml",
        "unknown-key",
        "missing-title",
        "not-utf8",
        "config-key",
        "template-syntax",
        "mjml",
        "missing-image",
    ],
)
def test_bad_input_is_one_line_exit_2(project, breakage, fragments):
    breakage(project)
    issue = "issues/missing" if fragments[0] == "issues/missing" else f"issues/{SAMPLE_NAME}"
    result = run_cli(project, "build", issue)
    assert_one_line_error(result, *fragments)
    assert not (project / "dist" / SAMPLE_NAME / "email.html").exists()


def test_warnings_exit_0(project):
    break_file(project / "issues" / SAMPLE_NAME / "issue.md", "preheader:", "note:")
    break_file(project / "issues" / SAMPLE_NAME / "issue.md", "note:", "#note:")
    result = run_cli(project, "build", f"issues/{SAMPLE_NAME}")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "no preheader" in result.stderr


def test_new_scaffolds_an_issue_that_builds(project, monkeypatch):
    monkeypatch.chdir(project)
    assert main(["new", "Spring Trade Mission: Ghent → Shanghai", "--date", "2024-03-01"]) == 0
    folder = project / "issues" / "2024-03-01-spring-trade-mission-ghent-shanghai"
    assert (folder / "issue.md").is_file() and (folder / "articles" / "01-first-article.md").is_file()
    assert "number: 43" in (folder / "issue.md").read_text(encoding="utf-8")
    assert main(["build", str(folder)]) == 0
    assert main(["new", "Spring Trade Mission: Ghent → Shanghai", "--date", "2024-03-01"]) == 2


def test_version_and_help_on_every_command(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0 and __version__ in capsys.readouterr().out
    for command in COMMANDS:
        with pytest.raises(SystemExit) as raised:
            main([command, "--help"])
        assert raised.value.code == 0
        assert "usage: broadsheet " + command in capsys.readouterr().out


def test_build_reports_each_problem_once(project):
    article = project / "issues" / SAMPLE_NAME / "articles" / "02-contact.md"
    article.write_text(
        article.read_text(encoding="utf-8") + "\n![](../images/chengdu-flemish-brabant.png)\n", encoding="utf-8"
    )
    result = run_cli(project, "build", f"issues/{SAMPLE_NAME}")
    assert result.returncode == 0, result.stderr
    alt_lines = [line for line in result.stderr.splitlines() if "alt" in line]
    assert len(alt_lines) == 1, result.stderr


def test_unwritable_out_folder_is_one_line_exit_2(project):
    (project / "taken").write_text("a file, not a folder")
    result = run_cli(project, "build", f"issues/{SAMPLE_NAME}", "--out", "taken")
    assert_one_line_error(result, "taken", "cannot write")


def test_new_where_issues_is_not_a_folder_is_one_line_exit_2(project):
    shutil.rmtree(project / "issues")
    (project / "issues").write_text("a file")
    assert_one_line_error(run_cli(project, "new", "Hello"), "issues", "cannot create")


def test_build_send_and_status_take_the_issue_name_too(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    monkeypatch.setenv("BROADSHEET_SECRET", "s3cret-for-tests-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    assert main(["build", SAMPLE_NAME, "--out", "elsewhere"]) == 0
    assert (project / "elsewhere" / SAMPLE_NAME / "email.html").is_file()
    assert main(["send", SAMPLE_NAME, "--transport", "outbox", "--yes"]) == 0
    capsys.readouterr()
    assert main(["status", SAMPLE_NAME]) == 0
    assert "sent 9" in capsys.readouterr().out


def test_a_new_project_without_templates_uses_the_shipped_default_theme(tmp_path, monkeypatch, capsys):
    (tmp_path / "broadsheet.toml").write_text('name = "Fresh"\nbase_url = "https://news.example.org"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["new", "First issue", "--date", "2025-01-01"]) == 0
    assert main(["build", "2025-01-01-first-issue"]) == 0
    html = (tmp_path / "dist" / "2025-01-01-first-issue" / "email.html").read_text(encoding="utf-8")
    assert "First issue" in html and "Fresh" in html


def test_the_cli_runs_where_the_platform_has_no_sighup(project):
    """Windows has no SIGHUP (waitress and the part readers' spawn are there for it): nothing may need one."""
    code = "import signal, sys; del signal.SIGHUP; from broadsheet.faces.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "build", f"issues/{SAMPLE_NAME}"], cwd=project,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (project / "dist" / SAMPLE_NAME / "email.html").is_file()


@pytest.mark.parametrize(
    ("args", "fragment", "command"),
    [
        (["subscribers", "forget", "x@example.org", "--yes"], "unrecognized arguments: --yes", "subscribers"),
        (["preview", "issues/x", "--width", "50"], "not a width from 100 to 4000 pixels", "preview"),
        (["subscribers"], "the following arguments are required: ACTION", "subscribers"),
        (["bogus"], "invalid choice: 'bogus'", ""),
    ],
)
def test_a_command_line_argparse_cannot_read_is_one_line(project, args, fragment, command):
    result = run_cli(project, *args)
    assert_one_line_error(result, fragment, f"(see broadsheet {command} --help)".replace("  ", " "))
    assert "usage:" not in result.stderr
