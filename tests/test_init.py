"""`broadsheet init`: a project from nothing, ready for build, preview and a test copy to the outbox; the
commented broadsheet.toml made from the config schema; never a file overwritten."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import os
import pty
import re
import select
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from support.reporting import Recorder
from test_cli_build import assert_one_line_error, run_cli

from broadsheet.core.config import KEY_HELP, SECRET_HELP, Config, config_tables, load_config, parse_config
from broadsheet.faces.preview import Preview
from broadsheet.usecases.init import InitOptions, init_project
from broadsheet.usecases.init.configfile import config_text

ROOT = Path(__file__).resolve().parents[1]
FLAGS = (
    "--name", "成都 Tea Letter", "--from", "news@tea.example.org",
    "--postal-address", "Teahouse Lane 1, 1000 Brussels", "--public-url", "https://news.tea.example.org/",
)  # fmt: skip


def first_issue(root: Path) -> Path:
    [issue] = (root / "issues").glob("*/issue.md")
    return issue.parent


def test_init_with_flags_makes_a_project_that_builds_and_sends_a_test_copy(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("BROADSHEET_SECRET", raising=False)
    before = dt.date.today()
    result = run_cli(tmp_path, "init", "tea", *FLAGS)
    days = {before.isoformat(), dt.date.today().isoformat()}  # the run may cross midnight
    assert result.returncode == 0, result.stderr
    root = tmp_path / "tea"
    assert sorted(p.name for p in root.iterdir()) == [".gitignore", "broadsheet.toml", "issues", "subscribers.csv"]
    config = load_config(root / "broadsheet.toml")
    assert (config.name, config.from_address) == ("成都 Tea Letter", "news@tea.example.org")
    assert config.footer.postal_address == "Teahouse Lane 1, 1000 Brussels"
    assert config.serve.public_url == config.base_url == "https://news.tea.example.org"
    assert config.unsubscribe_url == "https://news.tea.example.org/u/{token}"
    assert config.send.transport == "outbox"
    assert (root / "subscribers.csv").read_text(encoding="utf-8") == "email,name,first_name,tags\n"
    ignored = (root / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {".broadsheet/", "/outbox/", "/dist/", ".env", "*.pem"} <= set(ignored)
    issue = first_issue(root)
    assert issue.name in {f"{day}-first-issue" for day in days} and (issue / "images").is_dir()
    assert 'subject: "成都 Tea Letter: the first issue"' in (issue / "issue.md").read_text(encoding="utf-8")
    assert "next:\n  cd tea\n" in result.stdout
    assert f"broadsheet send issues/{issue.name} --test you@example.org" in result.stdout

    build = run_cli(root, "build", f"issues/{issue.name}")
    assert build.returncode == 0, build.stderr
    html = (root / "dist" / issue.name / "email.html").read_text(encoding="utf-8")
    assert "How an article is written" in html and "Teahouse Lane 1" in html
    lint = run_cli(root, "lint", f"issues/{issue.name}")  # the guide is to be replaced: an error each, nothing else
    assert lint.returncode == 1 and "4 errors, 0 warnings" in lint.stdout
    assert lint.stdout.count("still the placeholder `broadsheet init` wrote") == 4, lint.stdout

    with Preview(issue, port=0, config_path=root / "broadsheet.toml", watch=False) as preview:
        assert preview.current.error is None and "Dear Sam," in preview.current.email.text

    test = run_cli(root, "send", issue.name, "--test", "editor@example.net")
    assert test.returncode == 0, test.stderr
    [copy] = (root / "outbox" / issue.name / "test").glob("*.eml")
    message = email.message_from_bytes(copy.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "[TEST] 成都 Tea Letter: the first issue"
    assert message["From"] == "成都 Tea Letter <news@tea.example.org>"
    assert "https://news.tea.example.org/u/" in message.get_body(("html",)).get_content()
    real = run_cli(root, "send", issue.name, "--yes")  # the guide never goes out for real
    assert real.returncode == 2 and "lint found 4 error(s)" in real.stderr


def test_init_without_flags_or_a_terminal_takes_the_defaults(tmp_path: Path):
    result = run_cli(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert "cd " not in result.stdout  # made here: nothing to change to
    config = load_config(tmp_path / "broadsheet.toml")
    defaults = Config()
    assert (config.name, config.from_address) == (defaults.name, defaults.from_address)
    assert config.footer == defaults.footer and config.serve == defaults.serve and config.base_url == ""
    issue = first_issue(tmp_path)
    assert run_cli(tmp_path, "build", f"issues/{issue.name}").returncode == 0
    assert run_cli(tmp_path, "send", f"issues/{issue.name}", "--test", "me@example.net").returncode == 0
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 1


def test_init_never_overwrites_a_file(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("node_modules/\n", encoding="utf-8")
    (tmp_path / "subscribers.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    result = run_cli(tmp_path, "init", "--name", "Mine")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == "node_modules/\n"
    assert (tmp_path / "subscribers.csv").read_text(encoding="utf-8") == "email\nann@example.org\n"
    assert "kept .gitignore: it exists" in result.stdout and "kept subscribers.csv" in result.stdout
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    again = run_cli(tmp_path, "init", "--name", "Another name")  # a project already: its files stay
    assert again.returncode == 0, again.stderr
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert "kept broadsheet.toml" in again.stdout and "created" not in again.stdout
    assert "broadsheet.toml exists: --name not applied" in again.stderr
    assert 'broadsheet new "' in again.stdout  # it has an issue: the next one is made with new


def test_an_answer_broadsheet_cannot_use_is_one_line_and_writes_nothing(tmp_path: Path):
    for flag, value, said in [
        ("--public-url", "news.example.org", "--public-url: serve.public_url must be a site's address like https://"),
        ("--from", "not an address", "--from: 'from' is not an address: 'not an address'"),
        ("--name", " ", "--name: the newsletter needs a name"),
        ("--name", "Two\nlines", "--name: 'name' holds a line break"),
    ]:
        assert_one_line_error(run_cli(tmp_path, "init", "project", flag, value), said)
    assert not (tmp_path / "project").exists()


def test_a_file_where_the_folder_should_be_is_one_line(tmp_path: Path):
    (tmp_path / "taken").write_text("a file", encoding="utf-8")
    assert_one_line_error(run_cli(tmp_path, "init", "taken"), "taken: not a folder")


def test_new_outside_a_project_says_to_run_init(tmp_path: Path):
    assert_one_line_error(run_cli(tmp_path, "new", "Hello"), "no broadsheet.toml", "broadsheet init")
    assert not (tmp_path / "issues").exists()


def test_the_use_case_reports_each_file_and_takes_the_date(tmp_path: Path):
    reporter = Recorder()
    options = InitOptions(tmp_path / "p", name="Weekly", today=dt.date(2030, 1, 2))
    result = init_project(options, reporter)
    assert result.issue == tmp_path / "p" / "issues" / "2030-01-02-first-issue"
    assert [path.name for path in result.created] == ["broadsheet.toml", ".gitignore", "subscribers.csv"]
    assert reporter.infos[:4] == [
        "created broadsheet.toml",
        "created .gitignore",
        "created subscribers.csv",
        "created issues/2030-01-02-first-issue/ (the first issue, with a guide to replace)",
    ]


# The commented broadsheet.toml ---------------------------------------------------------------------------


def test_every_secret_the_code_reads_is_named():
    """Each environment variable named in src/ is a secret in SECRET_HELP, or one of the tools' settings."""
    tools = {
        "BROADSHEET_CHROMEDRIVER",
        "BROADSHEET_CHROMIUM",
        "BROADSHEET_DEBUG",
        "BROADSHEET_MJML",
        "BROADSHEET_NAMESERVERS",
    }
    named = set()
    for path in (ROOT / "src" / "broadsheet").rglob("*.py"):
        named |= set(re.findall(r"\"((?:BROADSHEET|AWS)_[A-Z_]+)\"", path.read_text(encoding="utf-8")))
    assert named - tools == set(SECRET_HELP)
    assert {table for table, _ in SECRET_HELP.values()} <= {"", *(table for table, _ in config_tables())}


def test_the_written_file_holds_every_key_at_its_default_and_names_every_secret(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", "hunter2-never-written")
    run_cli(tmp_path, "init", "--no-input")
    text = (tmp_path / "broadsheet.toml").read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert all(variable in text for variable in SECRET_HELP)
    assert all(why in text for why in KEY_HELP.values())
    # Taking the "# " away from every key gives the defaults: the file and the schema cannot drift apart.
    uncommented = re.sub(r"^# ([A-Za-z_]+ = .*)$", r"\1", text, flags=re.M)
    everything = parse_config(uncommented, tmp_path / "broadsheet.toml")
    data = tomllib.loads(uncommented)
    tables = {table for table, _ in config_tables()}
    assert sum(len(v) if k in tables else 1 for k, v in data.items()) == sum(len(keys) for _, keys in config_tables())
    assert everything == dataclasses.replace(Config(), root=tmp_path.resolve(), path=everything.path)


def test_values_are_written_as_toml_that_reads_back_the_same():
    values = {
        "name": 'Quote " and \\ backslash, 成都, tab\there',
        "footer.postal_address": "Line one\nLine two",
        "footer.links": {"Our site": "https://example.org", "plain": "https://example.org/b"},
        "serve.form_origins": ["https://a.example.org", "https://b.example.org"],
        "send.warmup": True,
        "send.rate_per_second": 2.5,
    }
    data = tomllib.loads(config_text(values))
    assert data["name"] == values["name"] and data["footer"]["postal_address"] == "Line one\nLine two"
    assert (
        data["footer"]["links"] == values["footer.links"]
        and data["serve"]["form_origins"] == values["serve.form_origins"]
    )
    assert data["send"] == {"warmup": True, "rate_per_second": 2.5}
    with pytest.raises(ValueError, match=r"not keys of broadsheet\.toml"):
        config_text({"send.nonsense": 1})


# The real command on a terminal ----------------------------------------------------------------------


class Terminal:
    """A child process on a pseudo-terminal: read what it shows until a text appears, then type."""

    def __init__(self, args: list[str], cwd: Path):
        self.master, child = pty.openpty()
        self.process = subprocess.Popen(args, cwd=cwd, stdin=child, stdout=child, stderr=child, close_fds=True)
        os.close(child)
        self.seen = ""

    def expect(self, text: str, timeout: float = 30) -> str:
        while text not in self.seen:
            ready, _, _ = select.select([self.master], [], [], timeout)
            assert ready, f"waited for {text!r}; the terminal shows:\n{self.seen}"
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the child has gone and closed its side
                chunk = b""
            assert chunk, f"the command ended before {text!r}:\n{self.seen}"
            self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        shown, _, self.seen = self.seen.partition(text)
        return shown + text

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def close(self) -> int:
        code = self.process.wait(timeout=30)
        os.close(self.master)
        return code


@pytest.mark.slow
def test_init_asks_on_a_terminal_and_asks_again_after_a_wrong_answer(tmp_path: Path):

    terminal = Terminal([sys.executable, "-m", "broadsheet", "init", "news", "--name", "Tea Letter"], tmp_path)
    try:
        terminal.expect("From address [newsletter@example.org]: ")  # --name given: not asked
        terminal.type("no address")
        terminal.expect("'from' is not an address")
        terminal.expect("From address [newsletter@example.org]: ")
        terminal.type("news@tea.example.org")
        terminal.expect("]: ")  # the postal address
        terminal.type("Teahouse Lane 1, Brussels")
        terminal.expect("Public URL, where readers unsubscribe and read the archive []: ")
        terminal.type("")  # Enter: the default, none
        terminal.expect("next:")
    finally:
        code = terminal.close()
    assert code == 0
    config = load_config(tmp_path / "news" / "broadsheet.toml")
    assert (config.name, config.from_address) == ("Tea Letter", "news@tea.example.org")
    assert config.footer.postal_address == "Teahouse Lane 1, Brussels" and config.serve.public_url == ""
