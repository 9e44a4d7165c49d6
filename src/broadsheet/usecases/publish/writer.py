"""Writer: puts the site's files in the output folder, and nowhere else.

Every path is checked to resolve inside the folder (a slug, an image name or a symlink cannot lead out).
A file whose bytes are unchanged is left alone. The folder's manifest lists what publish wrote, so that
the next run removes the pages of issues that are gone, and never touches a folder publish did not make.
"""

from __future__ import annotations

import os
from pathlib import Path

from broadsheet.core.errors import PublishError

MANIFEST = ".broadsheet-site"


class SiteWriter:
    def __init__(self, out: Path):
        self.root = Path(out).resolve()
        self.written: set[str] = set()
        self._check_folder()

    def write(self, relative: str, data: bytes | str) -> None:
        """Write ``data`` (text as UTF-8) to ``relative`` under the output folder."""
        target = self._target(relative)
        content = data.encode("utf-8") if isinstance(data, str) else data
        try:
            if not (target.is_file() and target.stat().st_size == len(content) and target.read_bytes() == content):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        except OSError as exc:
            raise PublishError(
                f"cannot write the site: {exc.strerror}",
                where=str(exc.filename or target),
                fix="choose another --out folder, or make this one writable",
            ) from None
        self.written.add(relative)

    def copy(self, relative: str, source: Path) -> None:
        """Publish the file ``source`` as ``relative``."""
        self.write(relative, source.read_bytes())

    def finish(self) -> list[str]:
        """Remove what an earlier run wrote and this one did not; record this run's files. Returns the removed."""
        removed = sorted(self._previous() - self.written)
        for relative in removed:
            target = self._target(relative)
            if target.is_file():
                target.unlink()
                _remove_empty_parents(target.parent, self.root)
        self.write(MANIFEST, "".join(f"{name}\n" for name in sorted(self.written | {MANIFEST})))
        return removed

    def _target(self, relative: str) -> Path:
        target = (self.root / relative).resolve()
        if target == self.root or not target.is_relative_to(self.root):
            raise PublishError(
                f"refusing to write outside the output folder: {relative}",
                where=str(self.root),
                fix="rename the issue folder or image so that its name has no path in it",
            )
        return target

    def _previous(self) -> set[str]:
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            return set()
        return {line for line in manifest.read_text(encoding="utf-8").splitlines() if line and line != MANIFEST}

    def _check_folder(self) -> None:
        """The folder must be new, empty, or one publish made (it has our manifest)."""
        if self.root.exists() and not self.root.is_dir():
            raise PublishError("the output is a file, not a folder", where=str(self.root), fix="choose another --out")
        if self.root.is_dir() and any(self.root.iterdir()) and not (self.root / MANIFEST).is_file():
            raise PublishError(
                "the output folder is not empty and was not made by broadsheet publish",
                where=str(self.root),
                fix="choose a new or empty folder with --out",
            )


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.parent
