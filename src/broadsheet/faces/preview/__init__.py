"""Preview: a local page showing the issue as a subscriber gets it, rebuilt and reloaded on every save.

:class:`Preview` ties the builder, the watcher and the server together; ``with Preview(...) as p``
starts them (the first build included) and stops them cleanly.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from .builder import Build, Builder
from .server import HOST, Events, PreviewHTTPServer
from .watcher import Watcher

__all__ = ["Build", "Preview", "HOST"]


class Preview:
    """Builder + watcher + HTTP server for one issue, on 127.0.0.1:``port`` (0 picks a free port)."""

    def __init__(
        self,
        issue_dir: Path,
        *,
        port: int,
        config_path: Path | None = None,
        as_email: str | None = None,
        watch: bool = True,
        report: Callable[[str, Build], None] | None = None,
    ):
        self.issue_dir = Path(issue_dir)
        self.port = port
        self.config_path = config_path
        self.as_email = as_email
        self.watch = watch
        self.report = report or (lambda kind, build: None)
        self.events = Events()
        self.workdir: Path | None = None
        self.builder: Builder | None = None
        self.server: PreviewHTTPServer | None = None
        self.watcher: Watcher | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{HOST}:{self.server.server_address[1]}/"

    @property
    def current(self) -> Build:
        assert self.builder is not None
        return self.builder.current

    def start(self) -> Preview:
        """Bind the port (failing fast if taken), build once, then serve and watch."""
        self.workdir = Path(tempfile.mkdtemp(prefix="broadsheet-preview-"))
        self.builder = Builder(
            self.issue_dir,
            config_path=self.config_path,
            as_email=self.as_email,
            workdir=self.workdir,
            on_change=self._changed,
        )
        try:
            self.server = PreviewHTTPServer(self.port, self.builder, self.events)
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        try:
            self.builder.build()
            self._thread = threading.Thread(
                target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="preview-http", daemon=True
            )
            self._thread.start()
            if self.watch:
                self.watcher = Watcher(self.builder)
                self.watcher.start()
        except BaseException:  # Ctrl-C during the first build included: leave nothing behind
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop watching and validating, close the reload streams and the server, delete the temporary builds."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.builder is not None:
            self.builder.close()
        self.events.close()
        if self.server is not None:
            if self._thread is not None:  # shutdown() would wait forever for a loop that never ran
                self.server.shutdown()
                self._thread.join(timeout=2)
            self.server.server_close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Preview:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _changed(self, kind: str, build: Build) -> None:
        self.events.publish(kind, build.generation)
        self.report(kind, build)
