"""Benchmark: a `send --due` run that finds N subscribers due for a sequence step, against a send of an issue to
the same N subscribers of the store.

Both go through their real use cases (``send_due`` and ``send_issue``) in a fresh process each: the store's
selection loaded into the journal in SQL, every message composed, claimed and recorded in the journal. The
transport is the outbox with its file writing replaced by a discard (N messages of 20 KB would be GBs of
files), so the figures are broadsheet's own work: selection, compose, journal. Reports the wall time,
messages per second, CPU per message and the peak RSS of each (flat memory: the same at 20,000 and 100,000).

    .venv/bin/python bench/sequences.py [--rows 100000]
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

from smtp import ISSUE, copy_sample_project  # bench/smtp.py

STEP = """---
subject: Welcome to the BCECC Newsletter
preheader: What to expect, and who we are
after: 0 days
---
Thank you for subscribing, {{ subscriber.first_name }}. Every month we send news from the chamber: events,
members and trade. Reply to this email any time: a person reads it.
"""

CHILD = """
import resource, sys, time
from pathlib import Path
from broadsheet.core.config import load_config
from broadsheet.delivery.transports.base import Delivery
from broadsheet.delivery.transports.outbox import OutboxTransport
from broadsheet.usecases.due import send_due
from broadsheet.usecases.send import SendOptions, send_issue

sys.path.insert(0, "tests")
from support.reporting import Recorder

OutboxTransport.send_batch = lambda self, messages, batch_key=None: [Delivery(m.recipient, "sent") for m in messages]
config, reporter = load_config(Path("broadsheet.toml")), Recorder()
started = time.perf_counter()
if sys.argv[1] == "step":
    due = send_due(SendOptions(due=True, transport="outbox"), config, reporter)
    assert due.sent, (reporter.infos, reporter.warnings, reporter.problems)
    result = due.sent[0]
else:
    result = send_issue(SendOptions(issue_dir=Path(sys.argv[2]), yes=True, transport="outbox", force=True), config, reporter)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(result.counts.get("sent", 0), seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
"""


def make_project(folder: Path, rows: int) -> None:
    copy_sample_project(folder)
    with open(folder / "list.csv", "w", encoding="utf-8") as handle:
        handle.write("email,name,first_name,tags,company\n")
        for n in range(rows):
            handle.write(f"reader{n:07d}@example{n % 500}.com,Reader {n} Tester,Reader{n},members,Company {n % 977}\n")
    broadsheet = str(Path(sys.executable).parent / "broadsheet")
    subprocess.run([broadsheet, "subscribers", "import", "list.csv"], cwd=folder, check=True, capture_output=True)
    (folder / "list.csv").unlink()
    (folder / "sequences" / "welcome").mkdir(parents=True)
    (folder / "sequences" / "welcome" / "01-hello.md").write_text(STEP, encoding="utf-8")
    subprocess.run(
        [broadsheet, "sequences", "enter", "welcome", "--tag", "members"], cwd=folder, check=True, capture_output=True
    )


def run(folder: Path, scenario: str) -> tuple[int, float, float, float]:
    env = {**os.environ, "BROADSHEET_SECRET": "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0", "PYTHONPATH": str(
        Path(__file__).resolve().parents[1] / "tests")}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", CHILD, scenario, ISSUE], cwd=folder, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    sent, seconds, cpu, peak = result.stdout.split()
    return int(sent), float(seconds), float(cpu), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(
        f"# {platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
        f"{time.strftime('%Y-%m-%d %H:%M')} · load {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print("| send | messages | wall | messages/s | CPU per message | peak RSS |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="broadsheet-sequences-") as tmp:
        folder = Path(tmp)
        make_project(folder, args.rows)
        for scenario, label in (("step", "send --due, one step"), ("issue", "send ISSUE (the sample issue)")):
            sent, seconds, cpu, peak = run(folder, scenario)
            print(
                f"| {label} | {sent:,} | {seconds:.1f} s | {sent / seconds:,.0f} | {cpu / sent * 1e6:.0f} µs "
                f"| {peak:.0f} MB |"
            )
    print(f"# load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
