"""Preview and lint benchmark on the sample issue (a temporary copy; nothing in the repo is touched).

- save → refreshed page: write a new article title to disk, then poll the page in headless Chromium
  until the mobile frame shows it (watch + debounce + build + SSE + page and frame reload);
- lint: the rules alone (warm, in-process), with the npm MJML validator, and `broadsheet lint` cold.

Run by hand: .venv/bin/python bench/preview.py [--saves 20]  — figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
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
from broadsheet.core.content.reader import read_issue  # noqa: E402
from broadsheet.core.lint import find_validator, lint_rendered  # noqa: E402
from broadsheet.core.render import build_issue  # noqa: E402
from broadsheet.faces.preview import Preview  # noqa: E402
from broadsheet.faces.preview.chromium import chromium, find_chromium  # noqa: E402

SLUG = "2021-06-01-chengdu-flemish-brabant"
TITLE = "A 10-year partnership between Chengdu and Flemish Brabant"
SHOWS = (
    "var f = document.getElementById('frame-mobile'); "
    "return !!(f && f.contentDocument && f.contentDocument.body && f.contentDocument.body.innerText.includes(arguments[0]))"
)


def copy_project(target: Path) -> Path:
    for name in ("broadsheet.toml", "subscribers.example.csv"):
        shutil.copy(ROOT / name, target / name)
    for folder in ("templates", "assets"):
        shutil.copytree(ROOT / folder, target / folder)
    shutil.copytree(ROOT / "issues" / SLUG, target / "issues" / SLUG)
    return target / "issues" / SLUG


def save_to_page(issue: Path, config: Path, saves: int) -> tuple[list[float], list[float], list[float]]:
    """Seconds from each save to the refreshed page, to the finished rebuild, and each build's own time."""
    article = issue / "articles" / "01-chengdu-flemish-brabant.md"
    source = article.read_text(encoding="utf-8")
    totals, rebuilt, builds = [], [], []
    with Preview(issue, port=0, config_path=config) as preview, chromium() as driver:
        driver.get(preview.url)
        wait(lambda: driver.execute_script(SHOWS, TITLE))
        for n in range(saves + 1):
            marker = f"Edited title {n}"
            started = time.perf_counter()
            generation = preview.current.generation
            article.write_text(source.replace(TITLE, marker), encoding="utf-8")
            wait(lambda generation=generation: preview.current.generation > generation, interval=0.001)
            built = time.perf_counter() - started
            wait(lambda marker=marker: driver.execute_script(SHOWS, marker))
            if n:  # the first save warms caches
                totals.append(time.perf_counter() - started)
                rebuilt.append(built)
                builds.append(preview.current.seconds)
            time.sleep(0.3)
    return totals, rebuilt, builds


def wait(check, timeout: float = 10.0, interval: float = 0.005) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("the page did not refresh")
        time.sleep(interval)


def lint_times(issue: Path, config_path: Path, runs: int = 20) -> dict[str, float]:
    config = load_config(config_path)
    parsed = read_issue(issue, config)
    rendered = build_issue(issue, config, issue=parsed)
    rules = timed(lambda: lint_rendered(rendered, parsed, config, validate_mjml=False), runs)
    figures = {"rules (warm, median)": rules}
    if find_validator(config.root) or find_validator(ROOT):
        os.environ.setdefault("BROADSHEET_MJML", str(find_validator(ROOT)))
        figures["rules + MJML validator (median)"] = timed(lambda: lint_rendered(rendered, parsed, config), 5)
    cli = [sys.executable, "-m", "broadsheet", "lint", f"issues/{SLUG}"]
    figures["`broadsheet lint` cold, with validator (median)"] = timed(
        lambda: subprocess.run(cli, cwd=issue.parents[1], capture_output=True, check=False), 5
    )
    return figures


def timed(action, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=20)
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="broadsheet-bench-") as folder:
        issue = copy_project(Path(folder))
        config = Path(folder) / "broadsheet.toml"
        if find_chromium():
            totals, rebuilt, builds = save_to_page(issue, config, args.saves)
            ms = sorted(t * 1000 for t in totals)
            print(
                f"save → refreshed page ({len(ms)} saves): median {statistics.median(ms):.0f} ms, "
                f"p90 {ms[int(len(ms) * 0.9) - 1]:.0f} ms, max {ms[-1]:.0f} ms"
            )
            print(
                f"  save → rebuild done: median {statistics.median(rebuilt) * 1000:.0f} ms "
                f"(the build itself: median {statistics.median(builds) * 1000:.0f} ms)"
            )
        else:
            print("save → refreshed page: skipped (no chromium/chromedriver)")
        for name, seconds in lint_times(issue, config).items():
            print(f"lint {name}: {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
