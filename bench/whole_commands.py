"""Benchmark: a send's set-up and `subscribers import` of a 1,000,000-row list, timed as whole commands.

Each command runs in a fresh process on fresh state, as ``/usr/bin/time -v`` would see it: wall clock,
user and system CPU, and peak RSS (``os.wait4``: that process alone). Targets (issue 17): the send's
set-up at least 100,000 rows/s, the import at least 80,000 rows/s, peak RSS under 150 MB.

Several checkouts' executables can be compared in one sitting: their runs are interleaved (old, new, old,
new, …), so a machine that gets busier part-way hurts each alike. On a shared machine compare the CPU
seconds; the wall clock of these one-process commands is about their CPU time when the machine is quiet.

    .venv/bin/python bench/whole_commands.py [--rows 1000000] [--repeat 3] [--list FILE]
        [--broadsheet old=/path/to/old/.venv/bin/broadsheet --broadsheet new=.venv/bin/broadsheet]

The send is ``send ISSUE --list list.csv --transport outbox --limit 1 --yes`` on a new journal: the list
read, validated, deduplicated and loaded into the journal, then one message written to the outbox.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dryrun_million import make_project  # bench/dryrun_million.py
from smtp import ISSUE  # bench/smtp.py

SECRET = "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"


@dataclass(frozen=True)
class Run:
    """One whole command's figures."""

    label: str
    command: str
    wall: float
    user: float
    system: float
    peak_mb: float
    load: float  # the 1-minute load average when it started
    setup: str  # the send's own "set up in" figure, when it printed one


def timed(label: str, command: str, argv: list[str], folder: Path) -> Run:
    """``argv`` run in ``folder``; its own rusage (not that of earlier children)."""
    env = {**os.environ, "BROADSHEET_SECRET": SECRET}
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode not in (0, 1):
        raise SystemExit(f"{label} {command} exited {process.returncode}:\n{text[-2000:]}")
    setup = re.search(r"set up in ([\d.]+) s", text)
    return Run(label, command, wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024, load,
               setup.group(1) + " s" if setup else "")  # fmt: skip


def fresh(folder: Path) -> None:
    """No journal, no store (both in .broadsheet), no outbox: each command starts from nothing."""
    for name in (".broadsheet", "outbox"):
        shutil.rmtree(folder / name, ignore_errors=True)


def one_round(label: str, broadsheet: str, folder: Path) -> list[Run]:
    fresh(folder)
    send = [broadsheet, "send", ISSUE, "--list", "list.csv", "--transport", "outbox", "--limit", "1", "--yes"]
    runs = [timed(label, "send set-up", send, folder)]
    fresh(folder)
    runs.append(timed(label, "import", [broadsheet, "subscribers", "import", "list.csv"], folder))
    fresh(folder)
    return runs


def table(runs: list[Run], rows: int) -> None:
    print(
        "| checkout | command | wall | user + sys = CPU | rows/s (wall) | rows/s (CPU) | peak RSS | load | set-up line |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        cpu = run.user + run.system
        print(
            f"| {run.label} | {run.command} | {run.wall:.1f} s | {run.user:.1f} + {run.system:.1f} = {cpu:.1f} s | "
            f"{rows / run.wall:,.0f} | {rows / cpu:,.0f} | {run.peak_mb:.0f} MB | {run.load:.1f} | {run.setup} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated list")
    parser.add_argument("--list", type=Path, help="use this CSV instead of generating one")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (each runs every checkout)")
    parser.add_argument(
        "--broadsheet",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a checkout's broadsheet executable (default: this Python's)",
    )
    args = parser.parse_args()
    executables = [tuple(given.split("=", 1)) if "=" in given else (given, given) for given in args.broadsheet]
    if not executables:
        executables = [("this", str(Path(sys.executable).parent / "broadsheet"))]
    print(
        f"# {platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs · "
        f"Python {platform.python_version()} · {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    with tempfile.TemporaryDirectory(prefix="broadsheet-whole-") as tmp:
        folder = Path(tmp)
        make_project(folder, 0 if args.list else args.rows, shuffled=True)
        if args.list:
            shutil.copy(args.list, folder / "list.csv")
        with open(folder / "list.csv", "rb") as handle:
            rows = sum(1 for _ in handle) - 1
        print(f"# {rows:,} rows, {(folder / 'list.csv').stat().st_size / 1e6:.0f} MB")
        runs: list[Run] = []
        for _ in range(args.repeat):
            for label, broadsheet in executables:
                runs += one_round(label, str(Path(broadsheet).absolute()), folder)
        table(runs, rows)
    print(f"# load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
