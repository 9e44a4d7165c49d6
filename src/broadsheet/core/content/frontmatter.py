"""Front matter: the YAML between the opening and closing ``---`` lines, read with hostile input in mind.

PyYAML's safe loader (libyaml when available), after a first pass over the parser's events that
refuses aliases (a "billion laughs" bomb expands a few lines into gigabytes) and nesting deeper than
front matter ever needs; keys that are not names, repeated keys and timestamps that are no real date
or time are refused while building. Each error names the line of the file it is on.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

BOUNDARY = re.compile(r"^-{3,}[ \t\r]*$", re.MULTILINE)  # as python-frontmatter: a line of three or more dashes
MAX_DEPTH = 16  # nested lists/mappings; front matter needs two


class FrontMatterError(ValueError):
    """Front matter that cannot be read: ``line`` is the line of the file, ``fix`` what to do."""

    def __init__(self, message: str, line: int, fix: str):
        super().__init__(message)
        self.message, self.line, self.fix = message, line, fix


@dataclass(frozen=True)
class Split:
    meta: dict[str, Any]
    body: str  # the Markdown after the front matter, stripped
    body_line: int  # line of the file where the body starts


def split_front_matter(text: str) -> Split:
    """The front matter (``{}`` when the file has none) and the body that follows it."""
    lead = len(text) - len(text.lstrip())
    offset = text[:lead].count("\n")  # blank lines before the opening ---
    stripped = text.strip()
    opening = BOUNDARY.match(stripped)
    if not opening:
        return Split({}, stripped, offset + 1 if stripped else 1)
    closing = BOUNDARY.search(stripped, opening.end())
    if closing is None:
        raise FrontMatterError(
            "front matter is not closed", offset + 1, "end it with a line of three dashes (---) before the text"
        )
    source = stripped[opening.end() : closing.start()]  # starts with the newline ending the opening line
    meta = load_yaml(source, first_line=offset + 1)
    rest = stripped[closing.end() :]
    start = lead + len(stripped) - len(rest.lstrip())  # where the body begins in ``text``
    body = rest.strip()
    return Split(meta, body, text[:start].count("\n") + 1 if body else 1)


def front_matter_value(issue_file: Path, key: str) -> str | None:
    """The plain value of ``key:`` in a front matter, quotes removed, without parsing (or rendering) the
    issue: for looking across many issue folders. None when absent or unreadable."""
    try:
        text = issue_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = re.search(rf"^{re.escape(key)}:[ \t]*(.*?)[ \t]*$", text, re.M)
    return match.group(1).strip("\"'") if match else None


def load_yaml(source: str, *, first_line: int = 1) -> dict[str, Any]:
    """A YAML mapping (``{}`` when empty); FrontMatterError naming the line (``source`` begins on ``first_line``)."""
    try:
        _check_events(source)
        loader = _Loader(source)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except _Refused as exc:
        raise FrontMatterError(exc.message, first_line + exc.mark.line, exc.fix) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark  # where the bad construct starts
        line = first_line + mark.line if mark is not None else first_line
        raise FrontMatterError(
            f"malformed front matter: {exc.problem or 'malformed YAML'}", line, "fix the YAML between the --- lines"
        ) from None
    except yaml.YAMLError:
        raise FrontMatterError("malformed front matter", first_line, "fix the YAML between the --- lines") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be 'key: value' lines", first_line + 1, "write e.g. title: My title")
    return data


class _Refused(yaml.YAMLError):
    def __init__(self, message: str, mark: Any, fix: str):
        super().__init__(message)
        self.message, self.mark, self.fix = message, mark, fix


if TYPE_CHECKING:  # both are SafeConstructor + Resolver; the checker reads the pure-Python one
    _Base = yaml.SafeLoader
else:
    _Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: much faster


def _check_events(source: str) -> None:
    """Refuse aliases and deep nesting while parsing, before anything is built from them."""
    depth = 0
    for event in yaml.parse(source, Loader=_Base):
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                f"YAML alias *{event.anchor} in front matter",
                event.start_mark,
                "write the value out; aliases are not allowed (they can expand without limit)",
            )
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(
                    f"front matter nested more than {MAX_DEPTH} deep",
                    event.start_mark,
                    "flatten the value: front matter holds text, dates, numbers and lists",
                )
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


class _Loader(_Base):
    """The safe loader, with keys that must be names, once each, and dates that must exist."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "[…]"
                raise _Refused(
                    f"front matter key {name or 'null'!r} is not a name",
                    key_node.start_mark,
                    "keys are names such as title: or date:",
                )
            if key_node.value in seen:
                raise _Refused(
                    f"front matter key '{key_node.value}' appears twice", key_node.start_mark, "keep one of them"
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> date:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            raise _Refused(
                f"not a real date or time: {node.value}", node.start_mark, "write it as YYYY-MM-DD or YYYY-MM-DD HH:MM"
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
