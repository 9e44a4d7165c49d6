"""One module per command: register(subparsers) declares it, run(args) does it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TypeAlias

from ..config import Config, load_config

# What register() receives: argparse's sub-command action (generic only to the type checker).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def project_config(args: argparse.Namespace) -> Config:
    """The config named by --config, or the one found upward from the current folder."""
    return load_config(getattr(args, "config", None))


def issue_folder(argument: str | Path, config: Config) -> Path:
    """ISSUE_DIR as given, or the folder of that name under the config's issues_dir.

    When neither exists the argument comes back as given, for the content room to report.
    """
    for candidate in (Path(argument), config.resolve(config.issues_dir) / argument):
        if candidate.is_dir():
            return candidate
    return Path(argument)
