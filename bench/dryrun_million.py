"""Benchmark: a 1,000,000-row subscriber CSV through `broadsheet send --dry-run`.

Every message is composed, none is sent, nothing is written (a dry run composes from the list as it
streams by; no journal; the addresses seen go to a temporary ledger file). Reports the peak RSS of the send
process (target < 150 MB whatever --rows), the compose rate and the CPU time per row (steadier than the
wall clock on a shared machine).

    .venv/bin/python bench/dryrun_million.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smtp import ISSUE, copy_sample_project  # bench/smtp.py


def make_project(folder: Path, rows: int) -> None:
    copy_sample_project(folder)
    with open(folder / "list.csv", "w", encoding="utf-8") as handle:
        handle.write("email,name,first_name,tags,company\n")
        for i in range(rows):
            handle.write(f"reader{i:07d}@example{i % 500}.com,Reader {i} Million,Reader{i},members;news,Company {i % 977}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"# {platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory(prefix="broadsheet-million-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        make_project(folder, args.rows)
        print(f"# wrote {args.rows:,} rows ({(folder / 'list.csv').stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s")
        env = {**os.environ, "BROADSHEET_SECRET": "bench-secret"}
        command = [str(Path(sys.executable).parent / "broadsheet"), "send", ISSUE, "--list", "list.csv",
                   "--transport", "outbox", "--dry-run"]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = usage.ru_maxrss / 1024
        cpu = usage.ru_utime + usage.ru_stime
        print(result.stdout.strip())
        if result.returncode not in (0, 1):
            raise SystemExit(result.stderr[-2000:])
        setup = re.search(r"set up in ([\d.]+) s", result.stdout)
        database = folder / ".broadsheet" / "state.db"
        print("| rows | command | CPU per row | journal set-up | peak RSS | journal size |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        size = f"{database.stat().st_size / 1e6:.0f} MB" if database.exists() else "none written"
        setup_time = setup.group(1) + " s" if setup else "-"
        print(f"| {args.rows:,} | {wall:.0f} s | {cpu / args.rows * 1e6:.0f} µs | {setup_time} | {peak_mb:.0f} MB | {size} |")
        print(f"# load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
