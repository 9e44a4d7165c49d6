"""A theme is a folder: email.mjml.j2 (+ partials), email.txt.j2, optional theme.toml."""

from __future__ import annotations

import datetime as dt
import textwrap
import tomllib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from pathlib import Path, PurePath
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..config import read_utf8
from ..errors import ConfigError, TemplateError

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
PATH_ATTRIBUTES = {"name", "stem", "suffix"}  # all a theme may read of a path
MAX_STEPS = 1_000_000  # loop steps and calls in one render of a theme (an email needs a few thousand)
MAX_SIZE = 1_000_000  # characters or items a theme's * may make, and the largest number a filter is given
SHARED = Path(__file__).resolve().parents[1] / "themes" / "shared"  # "shared/…" in any theme: components, colours
LOGO_BACKGROUNDS = ("masthead", "sheet", "page")  # palette colours a theme may put its logo on
MAX_BITS = 100_000  # the largest whole number a theme's ** may make

_steps: ContextVar[list[int] | None] = ContextVar("theme_steps", default=None)


class ThemeLimit(Exception):
    """A theme went past what rendering one email may take (loop steps, calls, sizes)."""


@contextmanager
def limited() -> Iterator[None]:
    """Count the loop steps and calls of the theme renders inside against MAX_STEPS."""
    token = _steps.set([MAX_STEPS])
    try:
        yield
    finally:
        _steps.reset(token)


def _step() -> None:
    left = _steps.get()
    if left is not None:
        left[0] -= 1
        if left[0] < 0:
            raise ThemeLimit(f"more than {MAX_STEPS:,} loop steps and calls")


@dataclass(frozen=True)
class Theme:
    folder: Path
    environment: jinja2.Environment  # autoescaping, for MJML
    text_environment: jinja2.Environment  # no escaping, for the plain-text part
    fonts: dict[str, str] = field(default_factory=dict)  # name -> CSS URL, given to MRML
    logo_background: str = "masthead"  # the palette colour the logo sits on (theme.toml), for lint's logo check


def load_theme(folder: Path) -> Theme:
    """The theme in ``folder``, its Jinja2 environments cached (templates reload when files change)."""
    folder = Path(folder).resolve()
    if not (folder / HTML_TEMPLATE).is_file() or not (folder / TEXT_TEMPLATE).is_file():
        raise ConfigError(
            f"theme folder has no {HTML_TEMPLATE} and {TEXT_TEMPLATE}", where=str(folder),
            fix='set [theme] name in broadsheet.toml to "default", "letter", a folder under templates/ or a path',
        )  # fmt: skip
    settings = _theme_settings(folder)
    fonts = settings.get("fonts", {})
    if not isinstance(fonts, dict) or not all(isinstance(v, str) for v in fonts.values()):
        raise TemplateError("[fonts] must map font names to CSS URLs", where=str(folder / "theme.toml"))
    logo_background = settings.get("logo_background", "masthead")
    if logo_background not in LOGO_BACKGROUNDS:
        raise TemplateError(
            f"logo_background must be one of {', '.join(LOGO_BACKGROUNDS)}, not {logo_background!r}",
            where=str(folder / "theme.toml"),
        )
    return _cached_theme(folder, tuple(sorted(fonts.items())), logo_background)


@lru_cache(maxsize=8)
def _cached_theme(folder: Path, fonts: tuple[tuple[str, str], ...], logo_background: str) -> Theme:
    environments = _environment(folder, autoescape=True), _environment(folder, autoescape=False)
    return Theme(folder, *environments, dict(fonts), logo_background)


class _CountedLoops(CodeGenerator):
    """Compiles each ``{% for %}`` to iterate through ``ThemeSandbox.counted``, so every step counts."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(nodes.EnvironmentAttribute("counted"), [node.iter], [], None, None, lineno=node.lineno)
        super().visit_For(node, frame)


class ThemeSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox (no ``__class__`` and the like, no changing the values given), and no file
    access either: a path's methods (``read_text``, ``open``…) are out of reach, its name is not.
    Within ``limited()``, loop steps and calls are counted and ``*``, ``**`` and filters bounded."""

    code_generator_class = _CountedLoops
    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, PurePath) and attr not in PATH_ATTRIBUTES:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if (
            operator == "**"
            and _whole(left)
            and _whole(right)
            and abs(left) > 1
            and left.bit_length() * right > MAX_BITS
        ):
            raise ThemeLimit(f"{left} ** {right} is a number of more than {MAX_BITS:,} bits")
        if operator == "*":
            sized, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(sized, (str, list, tuple)) and _whole(times) and len(sized) * times > MAX_SIZE:
                raise ThemeLimit(f"a value {len(sized):,} long times {times} is more than {MAX_SIZE:,} long")
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def counted(iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``, each step counted (what each ``{% for %}`` of a theme goes through)."""
        for item in iterable:
            _step()
            yield item


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A filter that refuses a number above MAX_SIZE among its arguments (``center(10**9)``)."""

    first = 2 if getattr(function, "jinja_pass_arg", None) else 1  # after the context and the value filtered

    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[first:], *kwargs.values()):
            if _whole(value) and abs(value) > MAX_SIZE:
                raise ThemeLimit(f"the filter {name} was given {value}, more than {MAX_SIZE:,}")
        return function(*args, **kwargs)

    return bounded


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
        loader=jinja2.ChoiceLoader(
            [ThemeLoader(str(folder)), jinja2.PrefixLoader({"shared": ThemeLoader(str(SHARED))})]
        ),
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
    for name, function in environment.filters.items():
        environment.filters[name] = _bounded(function, name)
    return environment


def _theme_settings(folder: Path) -> dict[str, Any]:
    path = folder / "theme.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(read_utf8(path, TemplateError))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"invalid theme.toml: {exc}", where=str(path)) from None


def long_date(value: dt.date | None) -> str:
    """1 June 2021."""
    return f"{value.day} {value:%B %Y}" if value else ""
