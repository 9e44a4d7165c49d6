"""The official MJML validator (npm ``mjml``, strict), run when it is installed.

Found, in order: ``$BROADSHEET_MJML``, ``node_modules/.bin/mjml`` in the project root, the current
folder or broadsheet's own checkout (``make validator`` installs mjml@4.15.3 there), then ``mjml``
on PATH. Without node and the package the check is skipped, and the lint says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HOW_TO_INSTALL = "make validator, or npm install mjml@4.15.3"
_CHECKOUT = Path(__file__).resolve().parents[4]
_LINE = re.compile(r"Line (\d+) of .*? \(([\w-]+)\)\s+[—-]+\s+(.*)")


@dataclass(frozen=True)
class Problem:
    line: int
    tag: str
    message: str


def find_validator(root: Path | None = None) -> Path | None:
    """The ``mjml`` command to validate with, or None when it is not installed."""
    if configured := os.environ.get("BROADSHEET_MJML"):
        return Path(configured) if Path(configured).is_file() else None
    for folder in (root, Path.cwd(), _CHECKOUT):
        if folder is not None and (candidate := folder / "node_modules" / ".bin" / "mjml").is_file():
            return candidate
    if shutil.which("node") and (on_path := shutil.which("mjml")):
        return Path(on_path)
    return None


def validate(mjml: str, validator: Path, *, timeout: float = 60.0) -> list[Problem]:
    """Run ``mjml --validate`` (strict: any problem fails) on ``mjml``; one Problem per complaint."""
    with tempfile.TemporaryDirectory(prefix="broadsheet-mjml-") as folder:
        source = Path(folder) / "email.mjml"
        source.write_text(mjml, encoding="utf-8")
        try:
            done = subprocess.run(
                [str(validator), "--validate", str(source)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [Problem(0, "mjml", f"the validator could not run: {exc}")]
    if done.returncode == 0:
        return []
    output = done.stdout + "\n" + done.stderr
    problems = [Problem(int(m[1]), m[2], m[3].strip()) for m in _LINE.finditer(output)]
    return problems or [Problem(0, "mjml", _first_line(output) or f"exit status {done.returncode}")]


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
