"""Benchmark: `broadsheet subscribers import` of a generated 1,000,000-row CSV into the subscriber store.

Runs the real command in a fresh process on an empty store and reports rows/s and the peak RSS of that
process (targets: at least 100,000 rows/s, under 150 MB), then imports the same file again (every row
already present), once more with ``--update`` on a smaller slice, and into a second store that already
holds another million addresses (interleaved with the file's in address order; issue 11's target: 200,000
rows/s), alone and while another process records a one-click unsubscribe every 20 ms in the same store,
as serve would (how long one waits is reported).

    .venv/bin/python bench/import.py [--rows 1000000] [--update-rows 100000] [--in-order]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compose import machine  # bench/compose.py


def write_list(path: Path, rows: int, *, in_order: bool = False, domain: str = "example") -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("email,name,status,tags,company\n")
        for i in range(rows):
            status = "unsubscribed" if i % 50 == 0 else ""
            # addresses in no particular order, as real lists are (harder on the UNIQUE index), or sorted
            n = i if in_order else (i * 7_919) % rows
            handle.write(
                f"reader{n:07d}@{domain}{n % 500}.com,Reader {n} Million,{status},members;news,Company {n % 977}\n"
            )


Figures = tuple[float, float, float, float]  # seconds, CPU seconds, peak RSS (MB) of the command, of its largest reader


def run_import(folder: Path, *args: str) -> Figures:
    """The figures of one `subscribers import` in a fresh process (a long list is read by one process per
    core: their CPU is counted, and the peak RSS of the largest is given beside the command's own)."""
    command = [sys.executable, "-c", CHILD, *args]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise SystemExit(result.stderr[-2000:])
    peak, cpu, readers_peak = map(float, result.stderr.strip().splitlines()[-1].split())
    return seconds, cpu, peak, readers_peak


# One-click unsubscribes every 20 ms in another process while an import runs: how long does one wait?
UNSUBSCRIBER = """
import sys, time
from pathlib import Path
from broadsheet.data.store import Store
root = Path(sys.argv[1])
waits = []
with Store.for_project(root) as store:
    (root / "unsubscriber-started").touch()
    i = 0
    while not (root / "unsubscriber-stop").exists():
        started = time.perf_counter()
        store.set_status(f"reader{i:07d}@other{i % 500}.com", "unsubscribed", source="one-click")
        waits.append(time.perf_counter() - started)
        i += 1
        time.sleep(0.02)
waits.sort()
print(len(waits), waits[len(waits) // 2] * 1000, waits[int(len(waits) * 0.99)] * 1000, waits[-1] * 1000)
"""


def with_unsubscriber(folder: Path, *args: str) -> tuple[Figures, str]:
    """An import while another process records a one-click unsubscribe every 20 ms: the import's figures,
    and the unsubscribes' count, median, p99 and longest wait."""
    child = subprocess.Popen([sys.executable, "-c", UNSUBSCRIBER, str(folder)], stdout=subprocess.PIPE, text=True)
    while not (folder / "unsubscriber-started").exists():
        time.sleep(0.01)
    try:
        figures = run_import(folder, *args)
    finally:
        (folder / "unsubscriber-stop").touch()
        out, _ = child.communicate(timeout=60)
    count, p50, p99, longest = out.split()
    waits = f"{count} one-click unsubscribes meanwhile: median {float(p50):.1f} ms, p99 {float(p99):.1f} ms,"
    return figures, waits + f" longest {float(longest):.0f} ms"


# The command in a child that prints its own peak RSS and that of its largest child (the part readers).
CHILD = """
import resource, sys
from broadsheet.faces.cli import main
code = main(["subscribers", "import", *sys.argv[1:]])
usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
print(usage.ru_maxrss / 1024, cpu, children.ru_maxrss / 1024, file=sys.stderr)
sys.exit(code)
"""


def report(label: str, rows: int, figures: Figures) -> None:
    seconds, cpu, peak, readers = figures
    print(
        f"| {label} | {rows:,} | {seconds:.1f} s | {rows / seconds:,.0f} | {cpu:.1f} s | {peak:.0f} MB | {readers:.0f} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--update-rows", type=int, default=100_000)
    parser.add_argument("--in-order", action="store_true", help="addresses in sorted order (easiest on the index)")
    args = parser.parse_args()
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory(prefix="broadsheet-import-") as tmp:
        folder = Path(tmp)
        (folder / "broadsheet.toml").write_text('name = "Bench"\nfrom = "bench@example.org"\n', encoding="utf-8")
        write_list(folder / "list.csv", args.rows, in_order=args.in_order)
        write_list(folder / "slice.csv", args.update_rows, in_order=args.in_order)
        size = (folder / "list.csv").stat().st_size / 1e6
        print(f"list: {args.rows:,} rows, {size:.0f} MB, addresses {'sorted' if args.in_order else 'in no order'}")
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("| run | rows | time | rows/s | CPU (all processes) | peak RSS | largest part reader |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, rows, extra in (("empty store", args.rows, ("list.csv",)),
                                   ("again, all present", args.rows, ("list.csv",)),
                                   ("--update", args.update_rows, ("slice.csv", "--update"))):  # fmt: skip
            report(label, rows, run_import(folder, *extra))
        others = [folder / "other", folder / "other-shared"]
        for other in others:
            other.mkdir()
            (other / "broadsheet.toml").write_text((folder / "broadsheet.toml").read_text(), encoding="utf-8")
            (other / "list.csv").symlink_to(folder / "list.csv")
        write_list(others[0] / "others.csv", args.rows, in_order=args.in_order, domain="other")
        run_import(others[0], "others.csv")
        shutil.copytree(others[0] / ".broadsheet", others[1] / ".broadsheet")
        report(f"into a store holding {args.rows:,} others", args.rows, run_import(others[0], "list.csv"))
        figures, waits = with_unsubscriber(others[1], "list.csv")
        report("the same, with 50 one-click unsubscribes/s", args.rows, figures)
        print(waits)
        database = folder / ".broadsheet" / "audience.db"
        print(
            f"store: {database.stat().st_size / 1e6:.0f} MB; load average after: "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )


if __name__ == "__main__":
    main()
