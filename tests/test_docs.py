"""The docs site says what the code does: the reference pages cover every command, flag and config key,
the quick start runs as written, every page is in the navigation, and the README stays short.

The strict site build (`mkdocs build --strict`, broken links and nav entries fail) is a step of `make
test` of its own, before the suite: built here as well it would cost the suite a second build for
nothing it does not already catch."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from broadsheet.core import config as schema
from broadsheet.core.providers import PROVIDERS
from broadsheet.faces import cli
from broadsheet.faces.reference import cli_reference, config_reference

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_LIMIT = 12 * 1024
BASH = shutil.which("bash") or "/bin/bash"  # the quick start's commands are shell commands


def sections(markdown: str) -> dict[str, str]:
    """Each heading's text (without #s and backticks) -> the lines under it, up to the next heading."""
    found: dict[str, str] = {}
    heading, body = "", []
    for line in markdown.splitlines():
        if line.startswith("#"):
            found[heading] = "\n".join(body)
            heading, body = line.lstrip("#").strip().replace("`", ""), []
        else:
            body.append(line)
    found[heading] = "\n".join(body)
    return found


def parsers(parser: argparse.ArgumentParser, prog: str = "broadsheet") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{prog} {name}")


def test_the_command_reference_has_every_command_flag_and_help_text():
    parser = cli.build_parser()
    page = sections(cli_reference(parser))
    commands = list(parsers(parser))
    assert len(commands) > len(cli.COMMANDS)  # the subscribers actions too
    for prog, command in commands:
        assert prog in page, f"no section for {prog}"
        body = page[prog]
        text = " ".join(body.replace("&lt;", "<").replace("&amp;", "&").replace("\\|", "|").split())
        if command.description:
            assert " ".join(command.description.split()) in text, prog
        for action in command._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            if isinstance(action, argparse._HelpAction):
                continue
            names = action.option_strings or [action.metavar or action.dest]
            for name in names:
                assert f"`{name}" in body, f"{prog}: {name} is missing from the reference"
            if action.help:
                shown = argparse.HelpFormatter(prog)._expand_help(action)  # %(default)s and the like filled in
                assert " ".join(shown.split()) in text, f"{prog} {names[0]}: its help is missing"


def schema_keys(cls: type = schema.Config, prefix: str = "") -> Iterator[tuple[str, typing.Any, typing.Any]]:
    """(dotted TOML key, type, default) of every key and table of broadsheet.toml, read from the dataclasses."""
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for field in dataclasses.fields(cls):
        if field.metadata.get("internal"):
            continue
        name = {v: k for k, v in schema.TOML_ALIASES.items()}.get(field.name, field.name) if not prefix else field.name
        hint, default = hints[field.name], getattr(defaults, field.name)
        yield prefix + name, hint, default
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            yield from schema_keys(hint, prefix + name + ".")


def test_every_config_key_has_a_description_and_no_description_is_stale():
    keys = {key for key, _, _ in schema_keys()}
    assert "smtp.data_timeout" in keys and "from" in keys
    assert sorted(keys - schema.KEY_HELP.keys()) == [], "add these keys to core/config.py KEY_HELP"
    assert sorted(schema.KEY_HELP.keys() - keys) == [], "these KEY_HELP name no key"
    assert all(text.strip() for text in schema.KEY_HELP.values())


def test_the_config_reference_has_every_key_with_its_default_and_description():
    page = sections(config_reference())
    for key, hint, default in schema_keys():
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            assert f"[{key}]" in page, f"no section for [{key}]"
            continue
        table, _, leaf = key.rpartition(".")
        body = page[f"[{table}]" if table else "Top level"]
        row = next((line for line in body.splitlines() if line.startswith(f"| `{leaf}` |")), None)
        assert row is not None, f"{key} is missing from the configuration reference"
        assert schema.KEY_HELP[key] in row
        if isinstance(default, bool):
            assert f"`{str(default).lower()}`" in row, key
        elif isinstance(default, int | float | str):
            assert f"`{json.dumps(default, ensure_ascii=False)}`" in row, key


def test_every_environment_variable_the_code_reads_is_documented():
    names = set()
    for path in (ROOT / "src" / "broadsheet").rglob("*.py"):
        names |= set(re.findall(r"\b(?:BROADSHEET|AWS)_[A-Z][A-Z_]*[A-Z]\b", path.read_text(encoding="utf-8")))
    assert {"BROADSHEET_SECRET", "BROADSHEET_SMTP_PASSWORD", "AWS_SESSION_TOKEN"} <= names
    page = (DOCS / "reference" / "environment.md").read_text(encoding="utf-8")
    assert sorted(name for name in names if f"`{name}`" not in page) == []


def test_the_transport_table_matches_the_providers():
    guide = (DOCS / "guides" / "sending.md").read_text(encoding="utf-8")
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)` \|(.*)\|$", guide, re.M)}
    assert sorted(rows) == sorted(PROVIDERS)
    for name, provider in PROVIDERS.items():
        cells = [cell.strip() for cell in rows[name].split("|")]
        assert cells[-1].replace(",", "") == str(provider.max_batch), name
        assert (provider.secret_env or "none") in cells[-2], name


def nav_pages(entries: list[typing.Any]) -> Iterator[str]:
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from nav_pages(value)
        else:
            yield value


def test_every_page_is_in_the_navigation_and_every_entry_is_a_page():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = set(nav_pages(config["nav"]))
    generated = {"reference/commands.md", "reference/configuration.md"}  # written by docs/hooks.py
    written = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert sorted(written - listed) == [], "add these pages to mkdocs.yml's nav"
    assert sorted(listed - written - generated) == [], "these nav entries have no page"
    assert not generated & written, "a generated page is also written by hand"
    assert config["theme"]["font"] is False  # the site fetches nothing from other hosts


def test_the_readme_is_short_and_points_to_the_docs():
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) <= README_LIMIT, f"README.md is {len(readme):,} bytes; keep it under {README_LIMIT:,}"
    text = readme.decode("utf-8")
    assert "make demo" in text and "make test" in text
    assert "](docs/index.md)" in text and "](docs/quickstart.md)" in text
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).exists(), link


# The quick start, as written: each `$ ` line of its console blocks (a here-document with its lines).
def quickstart_commands(markdown: str) -> list[str]:
    commands = []
    for block in re.finditer(r"^```console\n(.*?)^```", markdown, re.M | re.S):
        lines = iter(block.group(1).splitlines())
        for line in lines:
            if not line.startswith("$ "):
                continue  # what the command prints
            command = line[2:]
            while command.endswith("\\"):  # continued on the next line
                command += "\n" + next(lines)
            if heredoc := re.search(r"<<\s*'?(\w+)'?", command):
                body = []
                for more in lines:
                    body.append(more)
                    if more == heredoc[1]:
                        break
                command = "\n".join([command, *body])
            commands.append(command)
    return commands


SERVERS = re.compile(r"broadsheet (preview|serve)\b")


def run_server_briefly(command: str, cwd: Path, env: dict[str, str]) -> None:
    """A command that serves until Ctrl-C: started on a port of its choosing (``--port 0``, the one change to
    what the page says), its page fetched once it says where it listens, then stopped with Ctrl-C."""
    process = subprocess.Popen([BASH, "-c", f"exec {command} --port 0"], cwd=cwd, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert process.stdout is not None
        line = ""
        while "http://127.0.0.1:" not in line:
            line = process.stdout.readline()
            assert line, f"{command} stopped before serving: {process.communicate()[1]}"
        url = re.search(r"http://127\.0\.0\.1:\d+/?", line)
        assert url is not None
        public = re.search(r" for https?://([^\s/]+)", line)
        if SERVERS.search(command)[1] == "serve":  # type: ignore[index]
            assert public is not None, line
            answer = requests.get(url[0].rstrip("/") + "/subscribe", headers={"Host": public[1]}, timeout=30)
            assert answer.status_code == 200 and "<form" in answer.text, answer.text[:300]
        else:
            answer = requests.get(url[0], timeout=30)
            assert answer.status_code == 200, answer.text[:300]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0 and "Traceback" not in err, err


@pytest.mark.slow
def test_the_quick_start_runs_as_written(tmp_path: Path):
    page = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    commands = quickstart_commands(page)
    assert commands[0].startswith("broadsheet init ") and any(c.startswith("broadsheet serve") for c in commands)
    env = {name: value for name, value in os.environ.items() if not name.startswith("BROADSHEET_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path),
               PYTHONUNBUFFERED="1")  # fmt: skip
    cwd = tmp_path
    for command in commands:
        if moved := re.fullmatch(r"cd (\S+)", command):
            cwd = cwd / moved[1]
            assert cwd.is_dir(), command
        elif exported := re.fullmatch(r"export (\w+)=(.+)", command):
            shown = subprocess.run([BASH, "-c", f'{command}; printf %s "${exported[1]}"'], cwd=cwd, env=env,
                                   capture_output=True, text=True, check=True)  # fmt: skip
            env[exported[1]] = shown.stdout
        elif SERVERS.match(command):
            run_server_briefly(command, cwd, env)
        else:
            done = subprocess.run([BASH, "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    for message in re.findall(r"`(outbox/\S+\.eml)`", page):  # the files the page says are there
        assert (cwd / message).is_file(), message
    sent = subprocess.run([sys.executable, "-m", "broadsheet", "status", "2026-01-15-first-issue"], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert "sent 1 " in sent.stdout, sent.stdout
