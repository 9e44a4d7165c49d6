"""One module per command: register(subparsers) declares it, run(args) does it."""

from __future__ import annotations

import argparse

from ..config import Config, load_config


def project_config(args: argparse.Namespace) -> Config:
    """The config named by --config, or the one found upward from the current folder."""
    return load_config(getattr(args, "config", None))
