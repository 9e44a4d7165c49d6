"""The docs' reference pages in Markdown, generated from what the program reads: the argparse parser of
``faces.cli`` (every command and flag) and the config schema of ``core.config`` (every key), so they
cannot drift from the code (docs/hooks.py writes them at build time)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from broadsheet.core import config as schema

USAGE_WIDTH = 100


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """One section per command and subcommand: what it does, its usage, and a table of its arguments."""
    lines = [
        "# Commands",
        "",
        "Generated from the command line's own definitions (`broadsheet.faces.cli`). Every command also takes "
        "`--help`; bad input is one line on stderr naming the file, line and fix, with exit code 2.",
        "",
    ]
    for prog, command, summary in _commands(parser):
        depth = max(prog.count(" "), 1)  # the program's own options, then each command, each subcommand
        lines += [f"{'#' * (depth + 1)} `{prog}`", ""]
        about = command.description or summary
        if about:
            lines += [_text(about), ""]
        lines += ["```text", _usage(command, prog), "```", ""]
        rows = [_argument_row(action) for action in command._actions if _shown(action)]
        if rows:
            lines += ["| argument | meaning | default |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(lines)


def _commands(
    parser: argparse.ArgumentParser, prog: str = "broadsheet"
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """(prog, parser, one-line help) for the parser and every subcommand below it, depth first."""
    yield prog, parser, ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                for child_prog, child, summary in _commands(sub, f"{prog} {name}"):
                    yield child_prog, child, summary or helps.get(name, "")


def _shown(action: argparse.Action) -> bool:
    return action.help is not argparse.SUPPRESS and not isinstance(
        action, (argparse._HelpAction, argparse._SubParsersAction)
    )


def _usage(command: argparse.ArgumentParser, prog: str) -> str:
    formatter = argparse.HelpFormatter(prog, width=USAGE_WIDTH)
    formatter.add_usage(command.usage, command._actions, command._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def _argument_row(action: argparse.Action) -> str:
    if action.option_strings:
        metavar = "" if action.nargs == 0 else " " + _metavar(action)
        name = ", ".join(f"`{option}{metavar}`" for option in action.option_strings)
    else:
        name = f"`{_metavar(action)}`" + (" (optional)" if action.nargs in ("?", "*") else "")
    notes = [_text(_expanded_help(action))]
    if action.choices is not None and not isinstance(action.choices, dict):
        notes.append("one of " + ", ".join(f"`{choice}`" for choice in action.choices))
    if isinstance(action, argparse._AppendAction) and "repeatable" not in notes[0]:
        notes.append("repeatable")
    return f"| {name} | {'; '.join(note for note in notes if note)} | {_default(action)} |"


def _metavar(action: argparse.Action) -> str:
    if isinstance(action.metavar, str):
        return action.metavar
    if action.choices is not None and action.metavar is None:
        return "{" + ",".join(str(choice) for choice in action.choices) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _expanded_help(action: argparse.Action) -> str:
    """The help as ``--help`` prints it (``%(default)s`` and the like filled in)."""
    if not action.help:
        return ""
    return argparse.HelpFormatter("broadsheet")._expand_help(action)


def _default(action: argparse.Action) -> str:
    default = action.default
    if default in (None, argparse.SUPPRESS, [], "") or isinstance(
        action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._VersionAction)
    ):
        return ""
    return f"`{default}`"


def _text(text: str) -> str:
    """Help text as one Markdown table cell or paragraph: no raw HTML, no column break."""
    return " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")


@dataclass(frozen=True)
class ConfigKey:
    """One key of broadsheet.toml as the docs show it."""

    key: str  # dotted TOML name: "smtp.port"
    kind: str  # "integer", "string", …
    default: str  # as TOML writes it
    allowed: str  # a range or the choices, or ""
    description: str


def config_keys() -> list[ConfigKey]:
    """Every key of the schema, tables included, in the dataclasses' order."""
    return list(_keys(schema.Config, schema.Config(), ""))


def _keys(cls: type, defaults: Any, prefix: str) -> Iterator[ConfigKey]:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get("internal"):
            continue
        aliases = {python: toml for toml, python in schema.TOML_ALIASES.items()} if not prefix else {}
        dotted = prefix + aliases.get(field.name, field.name)
        hint = hints[field.name]
        value = getattr(defaults, field.name)
        description = schema.KEY_HELP.get(dotted, "")
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            yield ConfigKey(dotted, "table", "", "", description)
            yield from _keys(hint, value, dotted + ".")
            continue
        yield ConfigKey(dotted, _kind(hint), _toml(value), _allowed(hint, field.name), description)


def _kind(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "string"
    if typing.get_origin(hint) is list:
        return "list of strings"
    if typing.get_origin(hint) is dict:
        return "table of strings"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}[hint]


def _allowed(hint: Any, leaf: str) -> str:
    if typing.get_origin(hint) is Literal:
        return ", ".join(f'`"{choice}"`' for choice in typing.get_args(hint))
    if hint in (int, float) and leaf in schema.MAXIMUM:
        low = "above 0" if hint is float and leaf in schema.NONZERO else str(int(leaf in schema.NONZERO))
        return f"{low} to {schema.MAXIMUM[leaf]:,}" if low != "above 0" else f"above 0, to {schema.MAXIMUM[leaf]:,}"
    return ""


def _toml(value: Any) -> str:
    """A default as it would be written in broadsheet.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TOML form for {value!r}")


def config_reference() -> str:
    """One table per TOML table: key, type, default, allowed values, meaning."""
    lines = [
        "# Configuration",
        "",
        f"Generated from the config schema (`broadsheet.core.config`). `{schema.CONFIG_NAME}` is found in the "
        "current folder or the nearest one above it (or given with `--config FILE`). Every key is typed and "
        "checked on load: an unknown key, a wrong type or a number out of its range stops with the file, line, "
        "key and what is allowed. Secrets are never read from this file, only from environment variables "
        "([Environment variables](environment.md)).",
        "",
    ]
    header = ["| key | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    lines += ["## Top level", "", *header]
    for key in config_keys():
        if key.kind == "table":
            lines += ["", f"## `[{key.key}]`", "", key.description, "", *header]
            continue
        leaf = key.key.rpartition(".")[2]
        default = f"`{key.default}`" if key.default else ""
        lines.append(f"| `{leaf}` | {key.kind} | {default} | {key.allowed} | {key.description} |")
    return "\n".join(lines) + "\n"
