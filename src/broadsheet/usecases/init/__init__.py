"""``broadsheet init [DIR]``: a new project in a folder, ready for build, preview and send --test at once.

It writes a commented broadsheet.toml (every key with its default and why: ``configfile``), a .gitignore,
the subscriber list with its header and a first issue that explains itself, and never overwrites a file:
one that exists is kept as it is. The answers (name, from address, postal address, public URL) come in
``InitOptions``; the CLI asks for them on a terminal (``QUESTIONS``, each checked by ``check_answer``).
Until a transport is chosen the project sends to the outbox, which mails no one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broadsheet.core.compose.composer import Sender
from broadsheet.core.config import CONFIG_NAME, Config, load_config, parse_config
from broadsheet.core.errors import ConfigError

from ..new_issue import create_issue, shell_word
from ..report import Reporter
from .configfile import config_text
from .files import gitignore_text, list_header

DEFAULTS = Config()
FIRST_ISSUE = "First issue"


@dataclass(frozen=True)
class InitOptions:
    """Where the project goes and the answers its broadsheet.toml is written with (empty: left out)."""

    folder: Path
    name: str = DEFAULTS.name
    from_address: str = DEFAULTS.from_address
    postal_address: str = ""
    public_url: str = ""  # where `broadsheet serve` and the archive are reached; also base_url
    today: dt.date | None = None  # the first issue's date (default: today)


@dataclass(frozen=True)
class Question:
    """One answer init asks for: the InitOptions field, the command-line flag, the prompt."""

    field: str
    flag: str
    prompt: str


QUESTIONS = (
    Question("name", "--name", "Newsletter name"),
    Question("from_address", "--from", "From address"),
    Question("postal_address", "--postal-address", "Postal address (anti-spam laws want one in every issue)"),
    Question("public_url", "--public-url", "Public URL, where readers unsubscribe and read the archive"),
)


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # there already: left as they were
    issue: Path | None = None  # the first issue, when one was made


def config_values(options: InitOptions) -> dict[str, Any]:
    """The keys broadsheet.toml is written with (dotted TOML names); the rest stays at its default."""
    values: dict[str, Any] = {"name": options.name.strip(), "from": options.from_address.strip()}
    if options.postal_address.strip():
        values["footer.postal_address"] = options.postal_address.strip()
    if options.public_url.strip():
        values["base_url"] = values["serve.public_url"] = options.public_url.strip().rstrip("/")
    values["send.transport"] = "outbox"  # mails no one until a real transport is chosen
    return values


def check_answer(question: Question, value: str, folder: Path) -> None:
    """ConfigError naming the question's flag when ``value`` would not make a broadsheet.toml that works."""
    answer: dict[str, Any] = {question.field: value}
    options = dataclasses.replace(InitOptions(folder), **answer)
    try:
        if question.field == "name" and not value.strip():
            raise ConfigError("the newsletter needs a name", fix='e.g. --name "Weekly News"')
        _checked_config(options)
    except ConfigError as exc:
        raise ConfigError(exc.message, where=question.flag, fix=exc.fix) from None


def _checked_config(options: InitOptions) -> tuple[str, Config]:
    """The text of broadsheet.toml for ``options``, and the config it loads as (ConfigError when it would not)."""
    text = config_text(config_values(options))
    config = parse_config(text, options.folder / CONFIG_NAME)
    Sender.from_config(config)  # the from address as a send reads it
    return text, config


def init_project(options: InitOptions, reporter: Reporter) -> InitResult:
    """Make the project in ``options.folder`` (created when missing); report each file made or kept."""
    root = options.folder.resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError("not a folder", where=str(options.folder), fix="give a folder for the project")
    path = root / CONFIG_NAME
    if path.exists():
        config, text = load_config(path), None  # a project already: its settings stay as they are
    else:
        for question in QUESTIONS:
            check_answer(question, getattr(options, question.field), root)
        text, config = _checked_config(dataclasses.replace(options, folder=root))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder: {exc.strerror}", where=str(options.folder)) from None
    result = InitResult(root)
    files = [
        (path, text),
        (root / ".gitignore", gitignore_text(config)),
        (config.resolve(config.send.list), list_header()),
    ]
    for file, content in files:
        if content is None:
            result.kept.append(file)
        else:
            (result.created if _create(file, content) else result.kept).append(file)
    issues = config.resolve(config.issues_dir)
    if not any(issues.glob("*/issue.md")):
        subject = f"{config.name}: the first issue"
        today = options.today or dt.date.today()
        result = dataclasses.replace(
            result, issue=create_issue(config, FIRST_ISSUE, today, subject=subject, guide=True)
        )
    _report(result, config, reporter)
    return result


def _create(path: Path, content: str) -> bool:
    """Write a new file; False when one is there already (it is never overwritten)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot write the file: {exc.strerror}", where=str(path)) from None
    return True


def _report(result: InitResult, config: Config, reporter: Reporter) -> None:
    root = result.root
    for path in result.created:
        reporter.info(f"created {_relative(path, root)}")
    if result.issue is not None:
        reporter.info(f"created {_relative(result.issue, root)}/ (the first issue, with a guide to replace)")
    for path in result.kept:
        reporter.info(f"kept {_relative(path, root)}: it exists, and is left as it is")
    steps = []
    if root != Path.cwd().resolve():
        steps.append(f"  cd {shell_word(_shown(root))}")
    if result.issue is not None:
        issue = shell_word(_relative(result.issue, root))
        outbox = " (written to outbox/: the transport is outbox)" if config.send.transport == "outbox" else ""
        steps += [
            f"  broadsheet preview {issue}   # the issue in your browser, rebuilt as you save",
            f"  broadsheet send {issue} --test you@example.org   # a [TEST] copy to you{outbox}",
        ]
    else:
        steps.append('  broadsheet new "Title of the next issue"')
    reporter.info("next:\n" + "\n".join(steps))
    reporter.info(
        f"then: subscribers go in {_relative(config.resolve(config.send.list), root)} (or broadsheet subscribers "
        f"import FILE.csv), and [send] transport in {CONFIG_NAME} chooses how mail goes out"
    )


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _shown(folder: Path) -> str:
    """The folder as typed from the current one."""
    here = Path.cwd().resolve()
    return str(folder.relative_to(here)) if folder.is_relative_to(here) else str(folder)


__all__ = ["InitOptions", "InitResult", "QUESTIONS", "Question", "check_answer", "init_project"]
