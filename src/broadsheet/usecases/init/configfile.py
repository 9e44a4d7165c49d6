"""The commented broadsheet.toml ``broadsheet init`` writes: every key of the schema with its default and
why (``config.KEY_HELP``), the given values set, the secrets named by their variables and never written."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from broadsheet import __version__
from broadsheet.core.config import KEY_HELP, MAKE_SIGNING_SECRET, SECRET_HELP, ConfigKey, config_tables

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def config_text(values: Mapping[str, Any]) -> str:
    """broadsheet.toml with ``values`` (dotted TOML keys, e.g. ``footer.postal_address``) set and every other
    key commented out at its default, each under a line saying why it is there."""
    unknown = set(values) - {key.dotted for _, keys in config_tables() for key in keys}
    if unknown:
        raise ValueError(f"not keys of broadsheet.toml: {sorted(unknown)}")
    lines = [*_header(), ""]
    for table, keys in config_tables():
        if table:
            lines += ["", *_table_header(table)]
        for key in keys:
            lines.append(f"# {key.help}")
            value = values.get(key.dotted, key.default)
            lines.append(_assignment(key, value) if key.dotted in values else f"# {_assignment(key, value)}")
    return "\n".join(lines) + "\n"


def _header() -> list[str]:
    general = [(variable, why) for variable, (table, why) in SECRET_HELP.items() if not table]
    width = max(len(variable) for variable, _ in general)
    return [
        f"# broadsheet.toml: the project's settings, written by `broadsheet init` (broadsheet {__version__}).",
        "#",
        '# Every key is here with its default and why. A line "# key = value" is a key left at its default:',
        '# take away the "# " to set it. Commands read this file from this folder or any folder below it.',
        "#",
        "# Secrets are never written here: broadsheet reads them from environment variables only.",
        *(f"#   {variable:<{width}}  {why}" for variable, why in general),
        f"#   (make one with {MAKE_SIGNING_SECRET})",
        "# The others are named in their tables below.",
    ]


def _table_header(table: str) -> list[str]:
    secrets = [(variable, why) for variable, (owner, why) in SECRET_HELP.items() if owner == table]
    return [
        f"# [{table}]: {KEY_HELP[table]}",
        *(f"# secret in the environment: {variable}, {why}" for variable, why in secrets),
        f"[{table}]",
    ]


def _assignment(key: ConfigKey, value: Any) -> str:
    return f"{_toml_key(key.name)} = {toml_value(value)}"


def toml_value(value: Any) -> str:
    """``value`` (a string, number, bool, list of strings or table of strings) written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_key(name: str) -> str:
    return name if BARE_KEY.fullmatch(name) else _toml_string(name)


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's (\\", \\\\, \\n, \\uXXXX), and non-ASCII stays as it is."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
