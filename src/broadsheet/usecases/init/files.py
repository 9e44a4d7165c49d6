"""The small files of a new project besides broadsheet.toml: the .gitignore and the subscriber list's header."""

from __future__ import annotations

from pathlib import PurePosixPath

from broadsheet.core.config import Config
from broadsheet.core.content.optimise import CACHE_FOLDER

LIST_COLUMNS = ("email", "name", "first_name", "tags")  # tags: separated by ";"; any other column is a field


def gitignore_text(config: Config) -> str:
    """What broadsheet makes or keeps private, never committed: the journal and store, outputs, secrets."""
    return (
        "\n".join(
            [
                "# Written by `broadsheet init`: what broadsheet makes, and what must stay private.",
                f"# The send journal, the subscriber store and the image cache ({PurePosixPath(CACHE_FOLDER)}/).",
                f"{PurePosixPath(CACHE_FOLDER).parts[0]}/",
                "# What the outbox transport and test copies write, `broadsheet build` and `broadsheet publish` make.",
                f"/{_folder(config.send.outbox_dir)}/",
                f"/{_folder(config.output_dir)}/",
                "/site/",
                "# Secrets live in the environment; files that hold them never go into git.",
                ".env",
                ".env.*",
                "*.pem",
                "*.key",
                "# The subscriber list holds personal data: take away the # to keep it out of git too.",
                f"# /{_folder(config.send.list)}",
            ]
        )
        + "\n"
    )


def list_header() -> str:
    """The subscriber list with its header and nobody on it yet."""
    return ",".join(LIST_COLUMNS) + "\n"


def _folder(relative: str) -> str:
    return PurePosixPath(relative).as_posix().strip("/")
