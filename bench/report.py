"""Benchmark: `broadsheet report` over a store of 1,000,000 events and a journal of 1,000,000 recipients.

The store gets ``--people`` subscribers and ``--events`` events spread over a
year and over ``--campaigns`` campaigns; the journal gets the campaigns, each with ``--recipients`` divided
among them, all marked sent over a year. The data goes in through the projects' own Store and Journal
(their connections, in one transaction each: a million one-event transactions would take hours). Then the
use case runs in-process (best of ``--repeat``, with the time gathering takes apart from the drawing), and
the command once in a fresh process.

    .venv/bin/python bench/report.py [--events 1000000] [--recipients 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from broadsheet.core.config import load_config
from broadsheet.data.journal.journal import Journal
from broadsheet.data.store import Store
from broadsheet.usecases.report_page import ReportOptions, gather, write_report

DAY = 86400
YEAR_START = 1_764_547_200  # 2025-12-01 00:00 UTC
KINDS = ("bounced_soft", "bounced_hard", "unsubscribed", "complained", "delivered", "confirmed", "subscribed")


def make_project(folder: Path, *, people: int, events: int, campaigns: int, recipients: int) -> None:
    (folder / "broadsheet.toml").write_text(
        'name = "Bench"\n[send]\ntransport = "smtp"\nwarmup = true\nwarmup_start = "2025-12-01"\n', encoding="utf-8"
    )
    with Store.for_project(folder) as store:
        store.db.execute("BEGIN")
        store.db.executemany(
            "INSERT INTO subscribers (email, email_key, status, created, updated) VALUES (?, ?, 'subscribed', ?, ?)",
            ((f"r{n}@example.com", f"r{n}@example.com", "2025-12-01T00:00:00Z", "2025-12-01T00:00:00Z")
             for n in range(people)),
        )  # fmt: skip
        store.db.executemany(
            "INSERT INTO events (subscriber, at, kind, source, campaign) VALUES (?, ?, ?, 'bench', ?)",
            (
                (
                    n % people + 1,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(YEAR_START + n * 365 * DAY // events)),
                    KINDS[n % len(KINDS)],
                    f"issue-{n % campaigns}" if n % 3 else "",
                )
                for n in range(events)
            ),
        )
        store.db.execute("COMMIT")
    with Journal.for_project(folder) as journal:
        each = recipients // campaigns
        for c in range(campaigns):
            record, _ = journal.start_campaign(f"issue-{c}", "smtp", f"issues/issue-{c}", "fp", slug=f"issue-{c}")
            journal.load_recipients(record, "fp", ((f"r{n}@example.com", n, "{}") for n in range(each)))
            start = YEAR_START + c * 365 * DAY // campaigns
            journal.db.execute(
                "UPDATE recipients SET state = 'sent', attempts = 1, updated = ? + (id % ?) * 0.05 WHERE campaign = ?",
                (start, each, record.id),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        began = time.perf_counter()
        make_project(folder, people=args.people, events=args.events, campaigns=args.campaigns,
                     recipients=args.recipients)  # fmt: skip
        print(f"set-up: {time.perf_counter() - began:.1f} s")
        config = load_config(folder / "broadsheet.toml")
        gathered, whole, cpu = [], [], []
        for _ in range(args.repeat):
            began = time.perf_counter()
            gather(config, now=time.time())
            gathered.append(time.perf_counter() - began)
            began, began_cpu = time.perf_counter(), time.process_time()
            write_report(config, ReportOptions(folder / "report.html"))
            whole.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
        began = time.perf_counter()
        subprocess.run([Path(sys.executable).parent / "broadsheet", "--config", str(folder / "broadsheet.toml"),
                        "report"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        cold = time.perf_counter() - began
        size = (folder / "report.html").stat().st_size
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()}")
    print(f"{args.events:,} events, {args.recipients:,} recipients in {args.campaigns} campaigns")
    print(f"gather (SQL): best {min(gathered):.2f} s of {', '.join(f'{t:.2f}' for t in gathered)}")
    print(f"write_report (gather + charts + page): best {min(whole):.2f} s of {', '.join(f'{t:.2f}' for t in whole)}")
    print(f"write_report CPU: best {min(cpu):.2f} s (the wall clock of a shared machine waits for others)")
    print(f"cold `broadsheet report`: {cold:.2f} s; page {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
