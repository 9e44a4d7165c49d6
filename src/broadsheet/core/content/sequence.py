"""A sequence folder (sequences/<name>/NN-slug.md) → its steps; a step file → the Issue model.

A step is a short email: front matter ``subject``, optional ``preheader`` and ``greeting``, and ``after``
(``0 days``, ``2 days``, ``1 week``); its Markdown body is read as an issue's introduction, so it is
built, linted, previewed and sent with the issue's theme, merge tags and components.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from ..config import Config
from ..errors import ContentError
from .mergetags import to_markers
from .model import Issue, Step
from .optimise import CACHE_FOLDER
from .reader import (
    DEFAULT_GREETING,
    _check_keys,
    _Document,
    _ImageCollector,
    _read_document,
    _render_body,
    _required_text,
    _text,
    _where,
    read_issue,
)
from .text import LinkRegistry

STEP_KEYS = {"subject", "preheader", "after", "greeting"}
STEP_NAME = re.compile(r"(\d+)-[A-Za-z0-9][A-Za-z0-9_-]*")
SEQUENCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,59}")
AFTER = re.compile(r"(\d{1,4})\s*(minute|hour|day|week)s?", re.IGNORECASE)
AFTER_FIX = "write after: 0 days, 2 days, 1 week (or minutes, hours)"
UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def read_content(path: Path, config: Config) -> Issue:
    """An issue folder, or a sequence's step file (a ``.md`` file): what build, lint, preview and send read."""
    path = Path(path)
    if path.suffix == ".md" and not path.is_dir():
        return read_step(path, config)
    return read_issue(path, config)


def read_step(path: Path, config: Config) -> Issue:
    """The step file ``path`` as a one-part Issue: its body is the introduction, its subject the title."""
    path = Path(path)
    if not path.is_file():
        raise ContentError("step file not found", where=str(path), fix="give a file sequences/<name>/NN-slug.md")
    step = _step_of(path, config)
    folder = path.parent
    roots = (config.root.resolve(), folder.resolve())
    document = _read_document(path, roots)
    links = LinkRegistry()
    images = _ImageCollector(config.base_url, step.slug, roots, config.root / CACHE_FOLDER)
    notes: list[str] = []
    intro_html, intro_text = _render_body(document, images, links, notes, top_heading=2)
    return Issue(
        folder=folder,
        slug=step.slug,
        title=step.subject,
        subject=step.subject,
        preheader=_text(document, "preheader"),
        greeting=to_markers(_text(document, "greeting") if "greeting" in document.meta else DEFAULT_GREETING),
        intro_html=intro_html,
        intro_text=intro_text,
        images=tuple(images.images.values()),
        links=tuple(links.urls),
        notes=tuple(notes),
        id=step.key,
        file=path,
    )


def read_sequence(folder: Path, config: Config) -> tuple[Step, ...]:
    """The steps of the sequence in ``folder``, in the order of their numbers (front matter only)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ContentError("sequence folder not found", where=str(folder), fix="create sequences/<name>/01-….md")
    steps = [_step_of(path, config) for path in sorted(folder.glob("*.md")) if not path.name.startswith(".")]
    numbers: dict[int, Path] = {}
    for step in steps:
        number = int(step.name.split("-", 1)[0])
        if number in numbers:
            raise ContentError(
                f"two steps are numbered {number}: {numbers[number].name} and {step.path.name}",
                where=str(step.path), fix="give each step its own number",
            )  # fmt: skip
        numbers[number] = step.path
    return tuple(sorted(steps, key=lambda step: int(step.name.split("-", 1)[0])))


def sequence_names(config: Config) -> list[str]:
    """The sequences of the project: the folders under ``[sequences] folder`` holding a step file."""
    root = config.resolve(config.sequences.folder)
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if path.is_dir() and any(path.glob("*.md")))


def sequence_folder(name: str, config: Config) -> Path:
    """The folder of the sequence ``name``; ContentError for a name that is no folder name."""
    if not SEQUENCE_NAME.fullmatch(name):
        raise ContentError(
            f"not a sequence name: {name!r}",
            fix="use letters, digits, '-' and '_' (the folder's name under sequences/)",
        )
    return config.resolve(config.sequences.folder) / name


def _step_of(path: Path, config: Config) -> Step:
    """The step's name, sequence, ``after`` and subject, from its file name and front matter."""
    if not STEP_NAME.fullmatch(path.stem):
        raise ContentError(
            f"a step file is named NN-slug.md, not {path.name}", where=str(path), fix="rename it, e.g. 01-welcome.md"
        )
    if not SEQUENCE_NAME.fullmatch(path.parent.name):
        raise ContentError(
            f"not a sequence folder name: {path.parent.name!r}", where=str(path.parent),
            fix="name the folder with letters, digits, '-' and '_'",
        )  # fmt: skip
    document = _read_document(path, (config.root.resolve(), path.parent.resolve()))
    _check_keys(document, STEP_KEYS)
    return Step(
        sequence=path.parent.name,
        path=path,
        name=path.stem,
        after=_after(document),
        subject=_required_text(document, "subject"),
    )


def _after(document: _Document) -> dt.timedelta:
    value = document.meta.get("after")
    where = _where(document, "after:") if "after" in document.meta else f"{document.path}:1"
    if value is None:
        raise ContentError("missing after", where=where, fix=AFTER_FIX)
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return dt.timedelta(0)
    match = AFTER.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise ContentError(f"'after' is not a delay: {value!r}", where=where, fix=AFTER_FIX)
    return dt.timedelta(seconds=int(match.group(1)) * UNITS[match.group(2).lower()])
