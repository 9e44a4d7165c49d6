"""The configured journal, on its engine: the SQLite file beside broadsheet.toml, or PostgreSQL when
``[database] url`` is set (the store's database)."""

from __future__ import annotations

from typing import Any

from broadsheet.core.config import Config

from .journal import Journal, journal_path
from .postgres import PostgresJournal, has_journal


def open_journal_for(config: Config, **options: Any) -> Journal:
    """The configured journal; ``options`` are ``Journal``'s."""
    if config.database.url:
        return PostgresJournal(config.database.url, journal_path(config.root), **options)
    return Journal(journal_path(config.root), **options)


def journal_exists(config: Config) -> bool:
    """The configured journal is there (nothing is created): something was sent from this project."""
    if config.database.url:
        return has_journal(config.database.url)
    return journal_path(config.root).is_file()
