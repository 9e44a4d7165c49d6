"""Map what the lint finds in the HTML back to a line in the issue's own files."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from ..config import MAX_TEXT_BYTES

THEME_SUFFIXES = {".mjml", ".html", ".j2", ".jinja", ".txt", ".css"}


def display(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class SourceIndex:
    """The lines of the issue's Markdown files, then the theme's files, then the config.

    :meth:`locate` names the first ``file:line`` holding a piece of text (a URL, a sentence).
    """

    def __init__(self, files: Iterable[Path]):
        self.files: list[tuple[Path, list[str]]] = []
        seen: set[Path] = set()
        for path in files:
            if path in seen or not path.is_file() or path.stat().st_size > MAX_TEXT_BYTES:  # not /dev/zero
                continue
            seen.add(path)
            try:
                self.files.append((path, path.read_text(encoding="utf-8", errors="replace").splitlines()))
            except OSError:
                continue

    @classmethod
    def for_issue(
        cls, folder: Path, articles: Iterable[Path] = (), theme: Path | None = None, config: Path | None = None
    ) -> SourceIndex:
        """Index the issue's ``issue.md`` and articles, the theme folder and the config file."""
        markdown = [folder / "issue.md", *articles, *sorted(folder.rglob("*.md"))]
        theme_files = (
            sorted(
                (p for p in theme.rglob("*") if p.suffix in THEME_SUFFIXES),
                key=lambda p: (p.suffix == ".txt" or p.name.endswith(".txt.j2"), p),
            )
            if theme
            else []
        )
        # the HTML's templates before the text part's: a link or a sentence found in both is the HTML's
        return cls([*markdown, *theme_files, *([config] if config else [])])

    def locate(self, *needles: str) -> str | None:
        """``file:line`` of the first line containing any needle (tried in order), else None."""
        for needle in needles:
            needle = needle.strip()
            if len(needle) < 3:
                continue
            variants = dict.fromkeys((needle, html.escape(needle, quote=False), needle.replace("&", "&amp;")))
            for path, lines in self.files:
                for number, line in enumerate(lines, 1):
                    if any(v in line for v in variants):
                        return f"{display(path)}:{number}"
        return None

    def locate_nth(self, needle: str, n: int) -> str | None:
        """``file:line`` of the ``n``-th (from 0) line holding ``needle``, or of the last one when fewer."""
        found = None
        for path, lines in self.files:
            for number, line in enumerate(lines, 1):
                if needle in line:
                    found = f"{display(path)}:{number}"
                    if n == 0:
                        return found
                    n -= 1
        return found

    def locate_key(self, path: Path | None, key: str) -> str | None:
        """``file:line`` where ``key:`` or ``key =`` starts a line of ``path`` (front matter, TOML)."""
        for known, lines in self.files:
            if path is not None and known != path:
                continue
            for number, line in enumerate(lines, 1):
                stripped = line.lstrip()
                if stripped.startswith((f"{key}:", f"{key} =", f"{key}=")):
                    return f"{display(known)}:{number}"
        return None


def text_needles(text: str) -> list[str]:
    """Search strings for a run of visible text, longest first: rendering may change the ends."""
    words = text.split()
    candidates = [" ".join(words[:8]), " ".join(words[:4]), " ".join(words[:2])]
    return [c for c in dict.fromkeys(candidates) if len(c) >= 6]
