"""Compose on several cores: in this process against compose workers (usecases.campaign.compose_pool).

    .venv/bin/python bench/compose_workers.py [--recipients 20000] [--workers 1 2] [--rounds 3] [--issue DIR]

Two paths, each timed in this process and through pools of ``--workers`` processes, round after round
(interleaved, so that the load other work puts on the machine falls on every variant alike):

- dry run: each message composed and measured (what ``send --dry-run`` does with a list);
- send: whole messages back in this process, without html and text (what the outbox and SMTP get), in
  batches of 100 from 4 threads, as the campaign runner asks for them.

Prints messages/s, the ratio to in-process, and CPU seconds per 1,000 messages of this process and of the
workers (read from /proc before they stop), with the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from compose import config, real_issue, subscribers, synthetic_issue  # bench/compose.py

from broadsheet.core.compose import Composer
from broadsheet.usecases.campaign.compose_pool import ComposePool

BATCH = 100
THREADS = 4


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def here(composer: Composer, people: list, path: str) -> tuple[float, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    if path == "dry run":
        sum(len(composer.compose(person).raw) for person in people)
    else:
        batches = [people[i : i + BATCH] for i in range(0, len(people), BATCH)]
        with ThreadPoolExecutor(THREADS) as threads:
            list(threads.map(lambda batch: [composer.compose(p, row=1) for p in batch], batches))
    return time.perf_counter() - started, time.process_time() - cpu, 0.0


def pooled(composer: Composer, people: list, path: str, workers: int) -> tuple[float, float, float]:
    with ComposePool(composer.spec, workers, wire=True) as pool:
        pool.compose([(people[0], 1)] * 2 * workers)  # started, each worker's Composer made
        pids = [process.pid for process in pool.processes]
        before = sum(cpu_of(pid) for pid in pids)
        started, cpu = time.perf_counter(), time.process_time()
        if path == "dry run":
            sum(size for _, size in pool.measure(people) if isinstance(size, int))
        else:
            batches = [[(p, 1) for p in people[i : i + BATCH]] for i in range(0, len(people), BATCH)]
            with ThreadPoolExecutor(THREADS) as threads:
                list(threads.map(pool.compose, batches))
        wall, mine = time.perf_counter() - started, time.process_time() - cpu
        theirs = sum(cpu_of(pid) for pid in pids) - before
    return wall, mine, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--issue", type=Path, help="an issue folder to render instead of the synthetic issue")
    args = parser.parse_args()
    os.environ.setdefault("BROADSHEET_SECRET", "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    issue = real_issue(args.issue.resolve()) if args.issue else synthetic_issue()
    composer = Composer(issue, config())
    people = subscribers(args.recipients)
    size = len(composer.compose(people[0]).raw)
    print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, nproc {os.cpu_count()}, message {size:,} bytes")
    print("| round | path | compose | msg/s | × here | CPU/1000 here | CPU/1000 workers | load (1 min) |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    n = len(people)
    for round_ in range(1, args.rounds + 1):
        for path in ("dry run", "send"):
            wall, mine, _ = here(composer, people, path)
            base = n / wall
            load = os.getloadavg()[0]
            print(f"| {round_} | {path} | in-process | {base:,.0f} | 1.00 | {mine / n * 1e3:.2f} s | - | {load:.1f} |")
            for workers in args.workers:
                wall, mine, theirs = pooled(composer, people, path, workers)
                load = os.getloadavg()[0]
                print(
                    f"| {round_} | {path} | {workers} worker(s) | {n / wall:,.0f} | {n / wall / base:.2f} | "
                    f"{mine / n * 1e3:.2f} s | {theirs / n * 1e3:.2f} s | {load:.1f} |"
                )


if __name__ == "__main__":
    main()
