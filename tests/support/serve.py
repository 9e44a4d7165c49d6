"""`broadsheet serve` as a real process (waitress on 127.0.0.1) over a copy of the sample project."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from waitress import wasyncore
from waitress.server import BaseWSGIServer

from broadsheet.core.config import Config
from broadsheet.faces.serve.app import App
from broadsheet.faces.serve.server import create
from support.ports import PortTaken, on_free_port, take

SECRET = "serve-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"


def configure(project: Path, port: int, extra: str = "") -> str:
    """Point the sample config's [serve] public_url at 127.0.0.1:port; the base URL."""
    config = project / "broadsheet.toml"
    base = f"http://127.0.0.1:{port}"
    text = re.sub(r'public_url = "[^"]*"', f'public_url = "{base}"', config.read_text(encoding="utf-8"))
    text = text.replace("[serve]\n", f"[serve]\n{extra}", 1)
    config.write_text(text, encoding="utf-8")
    return base


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "BROADSHEET_SECRET": SECRET, **extra}
    env.pop("BROADSHEET_SECRET_PREVIOUS", None)
    env.pop("BROADSHEET_DEBUG", None)
    return env


@contextmanager
def serve_process(
    project: Path,
    *,
    extra_config: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
    log: IO[str] | None = None,
) -> Iterator[str]:
    """Run `broadsheet serve` in ``project`` until the block ends; yields its base URL. Its stderr goes to
    ``log`` when given (a file, never a pipe: a full pipe would block the server)."""
    config = project / "broadsheet.toml"
    original = config.read_text(encoding="utf-8")
    own_log = log is None
    log = tempfile.TemporaryFile(mode="w+") if log is None else log  # noqa: SIM115 -- closed below

    def start(port: int) -> tuple[subprocess.Popen[str], str]:
        config.write_text(original, encoding="utf-8")
        base = configure(project, port, extra_config)
        log.seek(0)
        log.truncate()
        process = subprocess.Popen(
            [sys.executable, "-m", "broadsheet", "serve", "--port", str(port)],
            cwd=project,
            env=env or environment(),
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                error = log.read()
                if "already in use" in error:
                    raise PortTaken(error)
                raise AssertionError(f"serve exited {process.returncode}: {error}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return process, base
            except OSError:
                time.sleep(0.05)
        stop_process(process)
        raise AssertionError("serve did not start listening")

    try:
        process, base = on_free_port(start)
        try:
            yield base
        finally:
            stop_process(process)
    finally:
        if own_log:
            log.close()


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Terminate the child and wait for it (killed if it will not end)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serving(app: App, config: Config, port: int, **options: Any) -> Iterator[BaseWSGIServer]:
    """serve's waitress server (``create``) in a thread of this process until the block ends, on the socket
    ``free_port`` holds for ``port``; stopped from its own loop, then joined (closing it from another thread
    pulls its sockets from under its poll)."""
    server = create(app, config, host="127.0.0.1", port=port, sock=take(port), **options)
    loop = threading.Thread(target=server.run, name="waitress-loop", daemon=True)
    loop.start()
    try:
        yield server
    finally:
        # the workers first (one still answering would pull the trigger once it is closed: EBADF), then the
        # trigger's thunk in the loop: with every socket closed, its map is empty and the loop returns
        server.task_dispatcher.shutdown()
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))  # type: ignore[attr-defined]
        loop.join(timeout=10)
        app.close()
        assert not loop.is_alive(), "the waitress loop did not stop"
