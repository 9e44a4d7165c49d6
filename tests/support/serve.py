"""`broadsheet serve` as a real process (waitress on 127.0.0.1) over a copy of the sample project."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SECRET = "serve-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    project: Path, *, extra_config: str = "", env: dict[str, str] | None = None, timeout: float = 15.0
) -> Iterator[str]:
    """Run `broadsheet serve` in ``project`` until the block ends; yields its base URL."""
    port = free_port()
    base = configure(project, port, extra_config)
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 -- closed by the fixture; not a pipe: a full pipe would block the server
    process = subprocess.Popen(
        [sys.executable, "-m", "broadsheet", "serve", "--port", str(port)],
        cwd=project,
        env=env or environment(),
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"serve exited {process.returncode}: {log.read()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("serve did not start listening")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
