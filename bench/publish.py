"""Publish benchmark: `broadsheet publish` of 50 generated issues, cold (first run) and warm (in-process).

Run by hand: .venv/bin/python bench/publish.py  — figures go to docs/performance.md.
Warm: publish_site again in the same process into the same folder (imports, Jinja and cssutils warm;
every issue is still read, rendered and compared with what is on disk). Target: warm under 2 s.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from support.archive import many_issues, sample_project  # noqa: E402

from broadsheet.core.config import load_config  # noqa: E402
from broadsheet.usecases.publish import publish_site  # noqa: E402

ISSUES = 50


def cold(project: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "broadsheet"), "publish", "--out", str(out)],
                   cwd=project, check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def warm(project: Path, out: Path, runs: int = 5) -> list[float]:
    config = load_config(project / "broadsheet.toml")
    publish_site(config, out)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        publish_site(config, out)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = sample_project(Path(tmp) / "project")
        many_issues(project, ISSUES - 1)  # and the sample: 50
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        )
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        first = cold(project, Path(tmp) / "site-cold")
        times = warm(project, Path(tmp) / "site")
        files = sum(1 for p in (Path(tmp) / "site").rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in (Path(tmp) / "site").rglob("*") if p.is_file()) / 1024 / 1024
        print(f"{ISSUES} issues → {files} files, {size:.1f} MB")
        print(f"cold `broadsheet publish` (new process, empty folder): {first:.2f} s")
        print(f"warm publish_site: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}), "
              f"{statistics.median(times) / ISSUES * 1000:.0f} ms per issue")  # fmt: skip


if __name__ == "__main__":
    main()
