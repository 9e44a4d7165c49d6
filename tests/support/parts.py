"""A real command stopped while the part readers of a long list run (audience.parts), and how to see them."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from broadsheet.audience import parts


def write_long_list(path: Path) -> None:
    """A list long enough to be read in parts, addresses in no order."""
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,city\n")
        out.writelines(
            f"reader{(i * 7919) % 420_000}@example{i % 97}.org,Reader {i},{'Gent' * 10}\n" for i in range(420_000)
        )
    assert path.stat().st_size >= parts.SPLIT_BYTES


def running_readers(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (a command and the part readers it forked)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def stopped_while_parts_are_read(
    command: list[str], cwd: Path, marker: str, signum: int = signal.SIGINT, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run ``command`` (whose list file is ``marker``), send ``signum`` once its part readers run: (exit code,
    stderr)."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(running_readers(marker)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)  # the command and its two part readers (or more, on more cores)
    assert len(running_readers(marker)) >= 3, process.communicate()
    process.send_signal(signum)
    _out, err = process.communicate(timeout=30)
    return process.returncode, err
