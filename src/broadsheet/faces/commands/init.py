"""broadsheet init [DIR]: a new project (usecases/init); asks for the answers not given as flags on a terminal."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from broadsheet.core.config import CONFIG_NAME
from broadsheet.core.errors import ConfigError
from broadsheet.usecases.init import QUESTIONS, InitOptions, check_answer, init_project

from . import Subparsers
from .terminal import TerminalReporter


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "init",
        help="make a new project: broadsheet.toml, .gitignore, subscribers.csv and a first issue",
        description="Make a project in DIR (default: here): a commented broadsheet.toml, a .gitignore, "
        "subscribers.csv and a first issue. On a terminal it asks for what the flags do not give; "
        "it never overwrites a file.",
    )
    parser.add_argument("folder", nargs="?", default=".", type=Path, metavar="DIR", help="the project's folder")
    parser.add_argument("--name", help="the newsletter's name")
    parser.add_argument("--from", dest="from_address", metavar="ADDRESS", help="the address issues come from")
    parser.add_argument("--postal-address", help="your postal address, shown in every issue's footer")
    parser.add_argument("--public-url", metavar="URL", help="where readers reach the archive and unsubscribe")
    parser.add_argument("--no-input", action="store_true", help="ask nothing: flags and defaults only")
    return parser


def run(args: argparse.Namespace) -> int:
    options = InitOptions(args.folder)
    given: dict[str, Any] = {q.field: getattr(args, q.field) for q in QUESTIONS if getattr(args, q.field) is not None}
    options = dataclasses.replace(options, **given)
    if (args.folder / CONFIG_NAME).exists():  # a project already: its settings are not asked for or changed
        if given:
            flags = ", ".join(q.flag for q in QUESTIONS if q.field in given)
            print(f"{CONFIG_NAME} exists: {flags} not applied (edit the file instead)", file=sys.stderr)
    elif not args.no_input and sys.stdin.isatty():
        options = _ask(options, given)
    init_project(options, TerminalReporter())
    return 0


def _ask(options: InitOptions, given: dict[str, Any]) -> InitOptions:
    """Each answer the flags did not give, asked until it is one broadsheet can use; Enter keeps the default."""
    print(f"A new broadsheet project in {options.folder.resolve()} (Enter keeps the value in brackets).")
    answers: dict[str, Any] = {}
    for question in QUESTIONS:
        if question.field in given:
            continue
        default = getattr(options, question.field)
        while True:
            try:
                answer = input(f"{question.prompt} [{default}]: ").strip() or default
            except EOFError:  # input ended: the defaults for the rest
                print()
                return dataclasses.replace(options, **answers)
            try:
                check_answer(question, answer, options.folder)
            except ConfigError as exc:
                print(f"  {exc.message}" + (f" ({exc.fix})" if exc.fix else ""), file=sys.stderr)
                continue
            answers[question.field] = answer
            break
    return dataclasses.replace(options, **answers)
