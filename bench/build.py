"""Build benchmark: the sample issue and a generated 20-article issue, warm (in-process) and cold (CLI).

Run by hand: .venv/bin/python bench/build.py  — figures go to docs/performance.md.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from broadsheet.core.config import load_config  # noqa: E402
from broadsheet.core.render import build_issue, write_build  # noqa: E402

SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"
PARAGRAPH = (
    "Flemish Brabant harbours a unique concentration of world-leading knowledge institutions and innovative "
    "companies, with [a link](https://www.example.org/{n}) and **bold** words and *emphasis*.\n\n"
)


def generated_issue(root: Path, articles: int = 20) -> Path:
    folder = root / "issues" / "2024-01-01-twenty-articles"
    (folder / "articles").mkdir(parents=True)
    (folder / "issue.md").write_text("---\ntitle: Twenty articles\npreheader: A big issue\n---\nIntro.\n")
    for n in range(articles):
        body = f"## Section {n}\n\n" + PARAGRAPH.format(n=n) * 4 + "- one\n- two\n- three\n\n> A pull quote.\n"
        (folder / "articles" / f"{n:02d}-a.md").write_text(f"---\ntitle: Article {n}\nauthor: Ed\n---\n{body}")
    return folder


def warm(folder: Path, config, runs: int = 30) -> tuple[float, float]:
    build_issue(folder, config)  # warm caches (Jinja templates, parser)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        write_build(build_issue(folder, config), Path(tempfile.mkdtemp()))
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def cold(folder: Path, cwd: Path, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(ROOT / ".venv" / "bin" / "broadsheet"), "build", str(folder), "--out",
                        tempfile.mkdtemp()], cwd=cwd, check=True, capture_output=True)  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name in ("templates", "assets"):
            shutil.copytree(ROOT / name, project / name)
        shutil.copy(ROOT / "broadsheet.toml", project)
        shutil.copytree(SAMPLE, project / "issues" / SAMPLE.name)
        big = generated_issue(project)
        config = load_config(project / "broadsheet.toml")
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        )
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
        for label, folder in (("sample issue", project / "issues" / SAMPLE.name), ("20-article issue", big)):
            median, worst = warm(folder, config)
            html_kb = len(build_issue(folder, config).html.encode()) / 1024
            print(f"{label}: warm build+write median {median * 1000:.1f} ms (max {worst * 1000:.1f} ms), "
                  f"cold CLI {cold(folder, project) * 1000:.0f} ms, HTML {html_kb:.1f} KB")  # fmt: skip


if __name__ == "__main__":
    main()
