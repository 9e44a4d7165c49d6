"""Benchmark: a big campaign with the store and the journal in PostgreSQL, its set-up and each worker's memory.

A throwaway PostgreSQL (started as the tests start it: tests/support/postgres.py, fsync off); ``--rows``
generated subscribers imported with ``broadsheet subscribers import`` (the command, timed, its peak RSS
from ``os.wait4``); then ``--workers`` ``broadsheet send --worker`` processes on the store against the fake
Postmark of bench/workers.py. The first worker alone sets the campaign up (the store's readers streamed
into the journal); its "set up in" line is the set-up, timed from the command's start too. The others join
once it is set up; every worker's RSS is sampled while they send for ``--send-seconds``, then they are
stopped (SIGTERM, as Ctrl-C) and each one's peak RSS comes from ``os.wait4``.

    .venv/bin/python bench/postgres_setup.py [--rows 1000000] [--workers 4] [--send-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import child
from dryrun_million import below, make_project, process_table
from smtp import ISSUE, free_port
from workers import ENV, PostgresJournal

BROADSHEET = str(Path(sys.executable).parent / "broadsheet")
SET_UP = re.compile(r"journal: ([\d,]+) recipients set up in ([\d.]+) s")


def configure(folder: Path, url: str, port: int, connections: int, batch: int, compose_workers: int) -> None:
    """The store's readers (no list file) over Postmark at ``port``, the store and journal at ``url``."""
    text = (folder / "broadsheet.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[(send|smtp|postmark|database)\]\n.*?(?=^\[|\Z)", "", text)
    text += (
        f'\n[database]\nurl = "{url}"\n'
        f'\n[send]\ntransport = "postmark"\nconnections = {connections}\nbatch_size = {batch}\n'
        f"compose_workers = {compose_workers}\n"
        f'\n[postmark]\nbase_url = "http://127.0.0.1:{port}"\n'
    )
    (folder / "broadsheet.toml").write_text(text, encoding="utf-8")


def waited(process: subprocess.Popen[str]) -> tuple[int, float]:
    """Reap ``process``: its exit status and peak RSS in MB (``os.wait4``)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024


class Sampler(threading.Thread):
    """Every half second, each worker's own peak RSS (VmHWM) and the largest of its child processes'."""

    def __init__(self, workers: list[subprocess.Popen[str]]) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.own: dict[int, float] = {}
        self.children: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            table = process_table()
            for worker in list(self.workers):
                if worker.pid in table:
                    self.own[worker.pid] = max(self.own.get(worker.pid, 0.0), table[worker.pid][2])
                for pid in below(table, worker.pid):
                    self.children[worker.pid] = max(self.children.get(worker.pid, 0.0), table[pid][2])


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--send-seconds", type=float, default=60.0)
    parser.add_argument("--api-latency", type=float, default=0.05)
    parser.add_argument("--connections", type=int, default=4, help="per worker")
    parser.add_argument("--batch", type=int, default=50, help="Postmark messages per call")
    parser.add_argument(
        "--compose-workers", type=int, default=0, help="[send] compose_workers (0: broadsheet's choice)"
    )
    args = parser.parse_args()
    print(f"# {platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}", flush=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load()}", flush=True)
    journal = PostgresJournal()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-setup-") as temporary:
            folder = Path(temporary)
            started = time.perf_counter()
            make_project(folder, args.rows, shuffled=True)
            print(f"# wrote {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
            journal.fresh()
            port = free_port()
            configure(folder, journal.url, port, args.connections, args.batch, args.compose_workers)
            run(folder, port, args, {**ENV, "BROADSHEET_DATABASE_PASSWORD": journal.password})
            sent = journal.query("SELECT state, count(*) FROM recipients GROUP BY state")
            print(f"# journal afterwards: {dict(sent)}; load average {load()}")
    finally:
        journal.stop()


def run(folder: Path, port: int, args: argparse.Namespace, env: dict[str, str]) -> None:
    started = time.perf_counter()
    importer = subprocess.Popen(
        [BROADSHEET, "subscribers", "import", "list.csv"], cwd=folder, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    code, peak = waited(importer)
    if code:
        raise SystemExit(importer.stderr.read() if importer.stderr else f"import failed ({code})")
    seconds = time.perf_counter() - started
    print(f"| import {args.rows:,} | {seconds:.1f} s | {args.rows / seconds:,.0f} rows/s | peak RSS {peak:.0f} MB "
          f"| load {load()} |", flush=True)  # fmt: skip
    (folder / "list.csv").unlink()

    receiver = child.start([sys.executable, str(Path(__file__).with_name("workers.py")), "--serve-postmark",
                            str(port), "--wait", str(args.api_latency)])  # fmt: skip
    command = [BROADSHEET, "send", ISSUE, "--yes", "--force", "--worker"]
    workers: list[subprocess.Popen[str]] = []
    sampler = Sampler(workers)
    try:
        started = time.perf_counter()
        first = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)  # fmt: skip
        workers.append(first)
        sampler.start()
        assert first.stdout is not None
        for text in first.stdout:
            found = SET_UP.search(text)
            if found:
                print(f"| set-up (first worker) | {found.group(1)} recipients | set up in {found.group(2)} s "
                      f"| {time.perf_counter() - started:.1f} s from the command's start | peak RSS so far "
                      f"{sampler.own.get(first.pid, 0):.0f} MB | load {load()} |", flush=True)  # fmt: skip
                break
        else:
            raise SystemExit(f"the first worker stopped before its set-up ({first.wait()})")
        workers.extend(
            subprocess.Popen(
                command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
            )
            for _ in range(args.workers - 1)
        )
        draining = subprocess.Popen(["cat"], stdin=first.stdout, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + args.send_seconds
        while time.monotonic() < deadline and any(worker.poll() is None for worker in workers):
            time.sleep(1)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
        peaks = [waited(worker) if worker.returncode is None else (worker.returncode, 0.0) for worker in workers]
        tally = child.stop(receiver).strip().splitlines()[-1]
        sampler.done.set()
    draining.wait()
    for number, (worker, (code, peak)) in enumerate(zip(workers, peaks, strict=True), start=1):
        print(f"| worker {number} | exit {code} | wait4 peak RSS {peak:.0f} MB | own VmHWM "
              f"{sampler.own.get(worker.pid, 0):.0f} MB | largest child {sampler.children.get(worker.pid, 0):.0f} MB |")  # fmt: skip
    print(f"# receiver: {tally}")


if __name__ == "__main__":
    main()
