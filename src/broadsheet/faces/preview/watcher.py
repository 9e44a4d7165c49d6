"""Watch the issue, the theme and the config; rebuild once per burst of saves (debounced)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import watchfiles

from .builder import Builder

QUIET_MS = 15  # a burst of events ends after this long without another one (editors save in steps)


class Watcher:
    """Two watchfiles threads (issue + theme recursively, the config's folder flat) feed one rebuild loop.

    When a rebuild changes what to watch (the config named another theme), the watchers restart.
    """

    def __init__(self, builder: Builder, *, on_rebuild: Callable[[], None] | None = None):
        self.builder = builder
        self.on_rebuild = on_rebuild or (lambda: None)
        self.events: queue.Queue[set[Path]] = queue.Queue()
        self.stopped = threading.Event()
        self._watch_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watching: tuple[tuple[Path, ...], Path | None] | None = None

    def start(self) -> None:
        self._start_watchers()
        loop = threading.Thread(target=self._loop, name="preview-rebuild", daemon=True)
        loop.start()
        self._threads.append(loop)

    def stop(self) -> None:
        self.stopped.set()
        self._watch_stop.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def _start_watchers(self) -> None:
        self._watch_stop.set()
        self._watch_stop = stop = threading.Event()
        folders, config_file = self._watching = self.builder.watched()
        targets: list[tuple[tuple[Path, ...], bool, watchfiles.BaseFilter | None]] = [
            (folders, True, watchfiles.DefaultFilter())
        ]
        if config_file is not None and config_file.parent.is_dir():
            targets.append(((config_file.parent,), False, _OnlyFile(config_file)))
        for paths, recursive, only in targets:
            thread = threading.Thread(
                target=self._watch, args=(paths, recursive, only, stop), name="preview-watch", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _watch(
        self, paths: tuple[Path, ...], recursive: bool, only: watchfiles.BaseFilter | None, stop: threading.Event
    ) -> None:
        for changes in watchfiles.watch(
            *paths,
            watch_filter=only,
            recursive=recursive,
            stop_event=stop,
            debounce=400,
            step=20,
            raise_interrupt=False,
            rust_timeout=500,
            yield_on_timeout=False,
        ):
            self.events.put({Path(path) for _, path in changes})

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                changed = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            changed |= self._drain()
            self.builder.build()
            self.on_rebuild()
            if self.builder.watched() != self._watching and not self.stopped.is_set():
                self._start_watchers()

    def _drain(self) -> set[Path]:
        """Collect events until QUIET_MS pass without one: one rebuild per burst."""
        changed: set[Path] = set()
        while True:
            try:
                changed |= self.events.get(timeout=QUIET_MS / 1000)
            except queue.Empty:
                return changed


class _OnlyFile(watchfiles.BaseFilter):
    """Pass events for one file only (the config), whatever else changes in its folder."""

    def __init__(self, path: Path):
        super().__init__()
        self.name = path.name

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return Path(path).name == self.name
