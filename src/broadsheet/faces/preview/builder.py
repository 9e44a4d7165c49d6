"""Builds the previewed issue into a fresh temporary folder; keeps the last good build when one fails."""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from broadsheet.core.config import Config, load_config
from broadsheet.core.content.model import Issue
from broadsheet.core.errors import BroadsheetError
from broadsheet.core.lint import Finding, find_validator, lint_mjml, lint_rendered, ordered
from broadsheet.core.render.build import read_and_build, write_build
from broadsheet.core.render.model import RenderedIssue
from broadsheet.data.store.recipients import audience_fields, find_subscriber

from .personal import PersonalEmail, personalise, sample_subscriber

VALIDATE_AFTER_SECONDS = 1.0  # let the browser reload first: node's start-up competes for the CPU


@dataclass(frozen=True)
class Build:
    """One state of the preview. ``error`` is the latest attempt's failure; the rest is the last good build."""

    generation: int
    config: Config | None = None
    issue: Issue | None = None
    rendered: RenderedIssue | None = None
    email: PersonalEmail | None = None
    folder: Path | None = None  # the written outputs: email.html, web.html, images/, …
    findings: tuple[Finding, ...] = ()
    validated: bool = False  # the MJML validator has run (or is not installed)
    error: BroadsheetError | None = None
    seconds: float = 0.0
    images: dict[str, Path] = field(default_factory=dict)  # name under images/ -> file

    @property
    def ok(self) -> bool:
        return self.rendered is not None


class Builder:
    """Rebuilds on demand, one build at a time; tells ``on_change`` of each new state."""

    def __init__(
        self,
        issue_dir: Path,
        *,
        config_path: Path | None = None,
        as_email: str | None = None,
        workdir: Path,
        on_change: Callable[[str, Build], None] | None = None,
    ):
        self.issue_dir = Path(issue_dir).resolve()
        self.config_path = config_path
        self.as_email = as_email
        self.workdir = workdir
        self.on_change = on_change or (lambda kind, build: None)
        self.current = Build(generation=0)
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self._closed = threading.Event()  # the preview has stopped: no validator is started any more

    def close(self) -> None:
        """Start no more MJML validator runs (one already running finishes)."""
        self._closed.set()

    def load_config(self) -> Config:
        if self.config_path is not None:
            return load_config(self.config_path)
        return load_config(start=self.issue_dir)

    def build(self) -> Build:
        """Build once; on failure keep the last good build and record the error. Never raises."""
        with self._building:
            generation = self.current.generation + 1
            started = time.perf_counter()
            try:
                build = self._build(generation, started)
            except BroadsheetError as exc:
                build = replace(self.current, generation=generation, error=exc, seconds=time.perf_counter() - started)
            except Exception as exc:  # a bug must not stop the preview: show it, keep serving
                error = BroadsheetError(f"{type(exc).__name__}: {exc}", where=_innermost(exc))
                build = replace(self.current, generation=generation, error=error, seconds=time.perf_counter() - started)
            self._publish("build", build)
            if build.error is None and not build.validated:
                threading.Thread(target=self._validate, args=(build,), daemon=True).start()
            return build

    def _build(self, generation: int, started: float) -> Build:
        config = self.load_config()
        issue, rendered = read_and_build(self.issue_dir, config)
        folder = write_build(rendered, self.workdir / f"build-{generation}")
        subscriber = find_subscriber(config, self.as_email) if self.as_email else sample_subscriber(config)
        email = personalise(rendered, config, subscriber)
        findings = lint_rendered(
            rendered,
            issue,
            config,
            html=email.html,
            text=email.text,
            unsubscribe_url=email.unsubscribe_url,
            validate_mjml=False,
            subscriber_fields=audience_fields(config),
        )
        return Build(
            generation=generation,
            config=config,
            issue=issue,
            rendered=rendered,
            email=email,
            folder=folder,
            findings=tuple(findings),
            validated=find_validator(config.root) is None,
            seconds=time.perf_counter() - started,
            images=_images(folder),
        )

    def _validate(self, build: Build) -> None:
        """Run the (slow, external) MJML validator once the page has reloaded and no newer build came."""
        assert build.config is not None and build.rendered is not None and build.issue is not None
        if self._closed.wait(VALIDATE_AFTER_SECONDS) or self.current.rendered is not build.rendered:
            return
        extra = lint_mjml(build.rendered, build.issue, build.config)
        with self._lock:
            if self.current.rendered is not build.rendered:
                return
            self.current = replace(
                self.current, findings=tuple(ordered([*self.current.findings, *extra])), validated=True
            )
            updated = self.current
        self.on_change("findings", updated)

    def _publish(self, kind: str, build: Build) -> None:
        with self._lock:
            previous, self.current = self.current, build
        if previous.folder and previous.folder != build.folder:
            _remove_older(self.workdir, keep={f.parent for f in (build.folder, previous.folder) if f})
        self.on_change(kind, build)

    def watched(self) -> tuple[tuple[Path, ...], Path | None]:
        """(folders to watch recursively, the config file) for the current config."""
        config = self.current.config
        content = self.issue_dir.parent if self.issue_dir.is_file() else self.issue_dir  # a step: its sequence
        if config is None:
            try:
                config = self.load_config()
            except BroadsheetError:
                return (content,), self.config_path
        folders = tuple(p for p in dict.fromkeys([content, config.theme_dir.resolve()]) if p.is_dir())
        return folders, config.path


def _images(folder: Path) -> dict[str, Path]:
    images = folder / "images"
    if not images.is_dir():
        return {}
    return {p.relative_to(images).as_posix(): p for p in images.rglob("*") if p.is_file()}


def _remove_older(workdir: Path, keep: set[Path]) -> None:
    """Delete build folders but the current and the previous one (a page may still be loading it)."""
    for folder in workdir.glob("build-*"):
        if folder not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def _innermost(exc: BaseException) -> str | None:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
