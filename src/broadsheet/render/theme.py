"""A theme is a folder: email.mjml.j2 (+ partials), email.txt.j2, optional theme.toml."""

from __future__ import annotations

import datetime as dt
import textwrap
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePath
from typing import Any

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..config import read_utf8
from ..errors import ConfigError, TemplateError

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
PATH_ATTRIBUTES = {"name", "stem", "suffix"}  # all a theme may read of a path


@dataclass(frozen=True)
class Theme:
    folder: Path
    environment: jinja2.Environment  # autoescaping, for MJML
    text_environment: jinja2.Environment  # no escaping, for the plain-text part
    fonts: dict[str, str] = field(default_factory=dict)  # name -> CSS URL, given to MRML


def load_theme(folder: Path) -> Theme:
    """The theme in ``folder``, its Jinja2 environments cached (templates reload when files change)."""
    folder = Path(folder).resolve()
    if not (folder / HTML_TEMPLATE).is_file() or not (folder / TEXT_TEMPLATE).is_file():
        raise ConfigError(
            f"theme folder has no {HTML_TEMPLATE} and {TEXT_TEMPLATE}", where=str(folder),
            fix="set theme in broadsheet.toml to a folder under templates/ or a path",
        )  # fmt: skip
    fonts = _theme_fonts(folder)
    return _cached_theme(folder, tuple(sorted(fonts.items())))


@lru_cache(maxsize=8)
def _cached_theme(folder: Path, fonts: tuple[tuple[str, str], ...]) -> Theme:
    return Theme(folder, _environment(folder, autoescape=True), _environment(folder, autoescape=False), dict(fonts))


class ThemeSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox (no ``__class__`` and the like, no changing the values given), and no file
    access either: a path's methods (``read_text``, ``open``…) are out of reach, its name is not."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, PurePath) and attr not in PATH_ATTRIBUTES:
            return False
        return super().is_safe_attribute(obj, attr, value)


class ThemeLoader(jinja2.FileSystemLoader):
    """Templates from the theme folder only: a symbolic link out of it (to the subscriber list, say,
    which would then be mailed to everyone) or to a device is refused."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        folder = Path(self.searchpath[0])
        written = folder.joinpath(*split_template_path(template))
        path = written.resolve()
        escapes = not path.is_relative_to(folder.resolve()) or not path.is_file()
        if (written.is_symlink() or written.exists()) and escapes:  # checked before Jinja reads it
            raise TemplateError(
                f"theme template {template} leads to {path}",
                where=str(written),
                fix="keep the theme's templates as files inside the theme folder",
            )
        return super().get_source(environment, template)


def _environment(folder: Path, *, autoescape: bool) -> jinja2.Environment:
    environment = ThemeSandbox(
        loader=ThemeLoader(str(folder)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["longdate"] = long_date
    environment.filters["wrap"] = lambda text, width=78: textwrap.fill(
        str(text), width, break_long_words=False, break_on_hyphens=False
    )
    return environment


def _theme_fonts(folder: Path) -> dict[str, str]:
    path = folder / "theme.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(read_utf8(path, TemplateError))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"invalid theme.toml: {exc}", where=str(path)) from None
    fonts = data.get("fonts", {})
    if not isinstance(fonts, dict) or not all(isinstance(v, str) for v in fonts.values()):
        raise TemplateError("[fonts] must map font names to CSS URLs", where=str(path))
    return fonts


def long_date(value: dt.date | None) -> str:
    """1 June 2021."""
    return f"{value.day} {value:%B %Y}" if value else ""
