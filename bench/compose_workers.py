"""Compose on several cores: in this process against compose workers (usecases.campaign.compose_pool).

    .venv/bin/python bench/compose_workers.py [--recipients 20000] [--processes 2] [--rounds 3] [--issue DIR]

Two paths, each timed in this process alone and on ``--processes`` processes, round after round
(interleaved, so that the load other work puts on the machine falls on every variant alike):

- dry run: each message composed and measured (what ``send --dry-run`` does with a list), by this
  process and ``processes - 1`` workers, this one composing whenever the workers are busy;
- send: whole messages back in this process, without html and text (what the outbox and SMTP get), in
  batches of 100 from 4 threads as the campaign runner asks for them, composed by ``processes`` workers.

Prints messages/s, the ratio to in-process, CPU seconds per 1,000 messages of this process and of the
workers (read from /proc before they stop), the workers' peak RSS, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from compose import config, real_issue, subscribers, synthetic_issue  # bench/compose.py

from broadsheet.core.compose import Composer
from broadsheet.core.compose.workers import compose_chunk
from broadsheet.usecases.campaign.compose_pool import ComposePool

BATCH = 100
THREADS = 4


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def here(composer: Composer, people: list, path: str) -> tuple[float, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    if path == "dry run":
        sum(len(composer.compose(person).raw) for person in people)
    else:
        batches = [people[i : i + BATCH] for i in range(0, len(people), BATCH)]
        with ThreadPoolExecutor(THREADS) as threads:
            list(threads.map(lambda batch: [composer.compose(p, row=1) for p in batch], batches))
    return time.perf_counter() - started, time.process_time() - cpu, 0.0


def pooled(composer: Composer, people: list, path: str, processes: int) -> tuple[float, float, float, float]:
    workers = processes - 1 if path == "dry run" else processes
    with ComposePool(composer.spec, workers, wire=True).started() as pool:
        pool.compose([(people[0], 1)] * 2 * workers)  # each worker's Composer made
        pids = [process.pid for process in pool.processes]
        before = sum(cpu_of(pid) for pid in pids)
        started, cpu = time.perf_counter(), time.process_time()
        if path == "dry run":
            here = partial(compose_chunk, composer, "measure")
            sum(size for _, size in pool.measure(people, lambda items: list(here(items))) if isinstance(size, int))
        else:
            batches = [[(p, 1) for p in people[i : i + BATCH]] for i in range(0, len(people), BATCH)]
            with ThreadPoolExecutor(THREADS) as threads:
                list(threads.map(pool.compose, batches))
        wall, mine = time.perf_counter() - started, time.process_time() - cpu
        theirs = sum(cpu_of(pid) for pid in pids) - before
        peak = max(peak_mb(pid) for pid in pids)
    return wall, mine, theirs, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--issue", type=Path, help="an issue folder to render instead of the synthetic issue")
    args = parser.parse_args()
    os.environ.setdefault("BROADSHEET_SECRET", "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    issue = real_issue(args.issue.resolve()) if args.issue else synthetic_issue()
    composer = Composer(issue, config())
    people = subscribers(args.recipients)
    size = len(composer.compose(people[0]).raw)
    print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, nproc {os.cpu_count()}, message {size:,} bytes")
    print("| round | path | compose | msg/s | × here | CPU/1000 here | CPU/1000 workers | worker peak RSS | load |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    n = len(people)
    for round_ in range(1, args.rounds + 1):
        for path in ("dry run", "send"):
            wall, mine, _ = here(composer, people, path)
            base = n / wall
            load = os.getloadavg()[0]
            print(
                f"| {round_} | {path} | in-process | {base:,.0f} | 1.00 | {mine / n * 1e3:.2f} s | - | - | {load:.1f} |"
            )
            for processes in args.processes:
                wall, mine, theirs, peak = pooled(composer, people, path, processes)
                load = os.getloadavg()[0]
                print(
                    f"| {round_} | {path} | {processes} processes | {n / wall:,.0f} | {n / wall / base:.2f} | "
                    f"{mine / n * 1e3:.2f} s | {theirs / n * 1e3:.2f} s | {peak:.0f} MB | {load:.1f} |"
                )


if __name__ == "__main__":
    main()
