"""Benchmark: a 1,000,000-row subscriber CSV through `broadsheet send --dry-run`.

Every message is composed, none is sent, nothing is written (a dry run composes from the list as it
streams by; no journal; the addresses seen go to a temporary ledger file). Reports the peak RSS of the send
process (target < 150 MB whatever --rows), the compose rate and the CPU time per row (steadier than the
wall clock on a shared machine).

    .venv/bin/python bench/dryrun_million.py [--rows 1000000] [--shuffled]
    .venv/bin/python bench/dryrun_million.py --setup-only [--rows 1000000] [--shuffled]
    .venv/bin/python bench/dryrun_million.py --compose-workers 1 2 [--rounds 3] [--rows 1000000]
    .venv/bin/python bench/dryrun_million.py --setup-only --from-store [--rows 1000000] [--shuffled]

``--compose-workers 1 2 …`` runs the dry run once per value of ``[send] compose_workers`` (round after round
with ``--rounds``), and reports for each the wall time, the compose rate, the CPU of the send's process and of
its compose workers, and the peak RSS of each (sampled from /proc while it runs).

``--setup-only --from-store`` imports the list into the subscriber store first and times the set-up of a
send that mails the store (the store's selection loaded into the journal in SQL).

``--setup-only`` times what a real send does before its first message: the list read, validated,
deduplicated and loaded into a new campaign in the journal (target 200,000 rows/s), in a fresh process
that reports its CPU time and that of the processes reading parts of the list, and their peak RSS. ``--shuffled`` writes the addresses in no order (as real
lists are; harder on the indexes) instead of sorted.
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


def make_project(folder: Path, rows: int, *, shuffled: bool = False) -> None:
    copy_sample_project(folder)
    with open(folder / "list.csv", "w", encoding="utf-8") as handle:
        handle.write("email,name,first_name,tags,company\n")
        for i in range(rows):
            n = (i * 7_919) % rows if shuffled else i  # 7,919 is prime: every row once, in no order
            handle.write(
                f"reader{n:07d}@example{n % 500}.com,Reader {n} Million,Reader{n},members;news,Company {n % 977}\n"
            )


# List read + journal set-up in a child that reports rows, seconds, CPU seconds and its own peak RSS.
SETUP_CHILD = """
import resource, sys, time
from pathlib import Path
from broadsheet.core.config import load_config
from broadsheet.usecases.campaign import Journal, prepare_campaign
from broadsheet.data.store.recipients import recipients_for
recipients = recipients_for(load_config(Path("broadsheet.toml")), None if "--from-store" in sys.argv else Path("list.csv"), ())
with Journal.for_project(Path(".")) as journal:  # as a send prepares its campaign
    start_checkpoints = journal.checkpoints_aside()  # as send does: the WAL is copied by a thread of its own
    started = time.perf_counter()
    prepared = prepare_campaign(journal, slug="bench", transport="outbox", issue_dir="issue",
                                fingerprint="fingerprint", subscribers=recipients)
    seconds = time.perf_counter() - started
    start_checkpoints()  # (what send's first messages would run beside)
    rows = prepared.loaded
usage = resource.getrusage(resource.RUSAGE_SELF)
children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the processes that read parts of a long list
cpu = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
print(rows, seconds, cpu, usage.ru_maxrss / 1024, children.ru_maxrss / 1024)
"""


def setup_only(folder: Path, rows: int, *, from_store: bool = False) -> None:
    (folder / ".broadsheet").mkdir(exist_ok=True)
    if from_store:  # the list imported into the subscriber store first; the send then mails the store
        broadsheet = str(Path(sys.executable).parent / "broadsheet")
        subprocess.run([broadsheet, "subscribers", "import", "list.csv"], cwd=folder, check=True, capture_output=True)
        (folder / "list.csv").unlink()
    command = [sys.executable, "-c", SETUP_CHILD, *(["--from-store"] if from_store else [])]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    loaded, seconds, cpu, peak, child_peak = result.stdout.split()
    print("| rows | list read + journal set-up | rows/s | CPU per row (all processes) | peak RSS | of a part reader |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {int(loaded):,} | {float(seconds):.1f} s | {rows / float(seconds):,.0f} | "
        f"{float(cpu) / rows * 1e6:.1f} µs | {float(peak):.0f} MB | {float(child_peak):.0f} MB |"
    )
    print(f"# load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def process_table() -> dict[int, tuple[int, float, float]]:
    """Every process: pid → (parent pid, CPU seconds, peak RSS in MB), from /proc."""
    table = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            hwm = next(x for x in (entry / "status").read_text().splitlines() if x.startswith("VmHWM"))
        except (OSError, StopIteration):
            continue
        table[int(entry.name)] = (int(stat[1]), (int(stat[11]) + int(stat[12])) / tick, int(hwm.split()[1]) / 1024)
    return table


def below(table: dict[int, tuple[int, float, float]], pid: int) -> set[int]:
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def dry_run_with_workers(folder: Path, rows: int, workers: int, env: dict[str, str], command: list[str]) -> str:
    """One dry run with ``compose_workers = workers``: a table row."""
    toml = folder / "broadsheet.toml"
    text = re.sub(r"(?m)^compose_workers = .*\n", "", toml.read_text(encoding="utf-8"))
    toml.write_text(text.replace("[send]\n", f"[send]\ncompose_workers = {workers}\n", 1), encoding="utf-8")
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, tuple[float, float]] = {}  # pid → (CPU, peak RSS), last sampled
    while process.poll() is None:
        table = process_table()
        for pid in {process.pid} | below(table, process.pid):
            if pid in table:
                seen[pid] = table[pid][1:]
        time.sleep(0.2)
    out, err = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise SystemExit(err[-2000:])
    rate = re.search(r"\(([\d,]+)/s", out)
    own_cpu, own_peak = seen.get(process.pid, (0.0, 0.0))
    others = [value for pid, value in seen.items() if pid != process.pid]
    worker_cpu = sum(cpu for cpu, _ in others)
    worker_peak = max((peak for _, peak in others), default=0.0)
    return (
        f"| {rows:,} | {workers} | {wall:.1f} s | {rate.group(1) if rate else '-'} | {own_cpu / rows * 1e6:.0f} µs | "
        f"{worker_cpu / rows * 1e6:.0f} µs | {own_peak:.0f} MB | {worker_peak:.0f} MB | {os.getloadavg()[0]:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shuffled", action="store_true", help="addresses in no order instead of sorted")
    parser.add_argument("--setup-only", action="store_true", help="time the list read + journal set-up alone")
    parser.add_argument(
        "--from-store",
        action="store_true",
        help="with --setup-only: import the list, then set up a send from the store",
    )
    parser.add_argument("--compose-workers", type=int, nargs="+", help="dry runs with these compose_workers")
    parser.add_argument("--rounds", type=int, default=1, help="with --compose-workers: rounds of them")
    args = parser.parse_args()
    print(
        f"# {platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    with tempfile.TemporaryDirectory(prefix="broadsheet-million-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        make_project(folder, args.rows, shuffled=args.shuffled)
        print(
            f"# wrote {args.rows:,} rows ({(folder / 'list.csv').stat().st_size / 1e6:.0f} MB, "
            f"{'in no order' if args.shuffled else 'sorted'}) in {time.perf_counter() - started:.1f} s"
        )
        if args.setup_only:
            return setup_only(folder, args.rows, from_store=args.from_store)
        env = {**os.environ, "BROADSHEET_SECRET": "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"}
        command = [
            str(Path(sys.executable).parent / "broadsheet"),
            "send",
            ISSUE,
            "--list",
            "list.csv",
            "--transport",
            "outbox",
            "--dry-run",
        ]
        if args.compose_workers:
            print("| rows | compose_workers | command | compose msg/s | CPU/row send | CPU/row workers | peak RSS send "
                  "| peak RSS worker | load |")  # fmt: skip
            print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for _ in range(args.rounds):
                for workers in args.compose_workers:
                    print(dry_run_with_workers(folder, args.rows, workers, env, command), flush=True)
            return None
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
        print(
            f"| {args.rows:,} | {wall:.0f} s | {cpu / args.rows * 1e6:.0f} µs | {setup_time} | {peak_mb:.0f} MB | {size} |"
        )
        print(f"# load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
