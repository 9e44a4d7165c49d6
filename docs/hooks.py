"""MkDocs hook: the reference pages for the commands and the configuration, generated at build time from
broadsheet's own argparse parser and config schema (broadsheet.faces.reference), so they cannot drift."""

from __future__ import annotations

from typing import Any

from mkdocs.structure.files import File, Files

from broadsheet.faces.cli import build_parser
from broadsheet.faces.reference import cli_reference, config_reference


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "reference/commands.md", content=cli_reference(build_parser())))
    files.append(File.generated(config, "reference/configuration.md", content=config_reference()))
    return files
