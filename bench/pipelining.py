"""Benchmark: SMTP pipelining (RFC 2920) and CHUNKING (RFC 3030) over real network latency, against the
same sender without either.

A TCP proxy on 127.0.0.1 (bench/latency_proxy.py, its own process) holds every chunk 10 ms each way in
front of an aiosmtpd sink (its own process) that answers at once and advertises PIPELINING, and for the
CHUNKING rows CHUNKING too (BDAT from tests/support/bdat.py). Without pipelining a message on an open
connection costs four round trips (MAIL, RCPT, DATA, the final "."), with it two (MAIL+RCPT+DATA in one
write, then the content), with CHUNKING one (MAIL+RCPT+BDAT LAST and the content in one write), so the
bound is connections / (4, 2 or 1 × 20 ms). mailmerge 2.3.0 goes through the same proxy (a connection
per message).

    .venv/bin/pip install mailmerge==2.3.0
    .venv/bin/python bench/pipelining.py [--latency 0.01] [--per-connection 150] [--skip-mailmerge]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from smtp import copy_sample_project, prepare, run_broadsheet, run_mailmerge, write_list


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        ),
        "?",
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.machine()} · {model} · nproc {os.cpu_count()} · Python {platform.python_version()} · "
        f"load {load} · {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.01, help="seconds each chunk is held, each way")
    parser.add_argument("--per-connection", type=int, default=150, help="recipients per connection")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--mailmerge-recipients", type=int, default=150)
    parser.add_argument("--skip-mailmerge", action="store_true")
    args = parser.parse_args()
    rtt = 2 * args.latency
    print(f"# {machine()}")
    print(
        f"# proxy latency {args.latency * 1000:.0f} ms each way (round trip {rtt * 1000:.0f} ms), sink answers at once"
    )
    print(
        "| sender | connections | received | send time | messages/s | of bound | × without pipelining | CPU per message |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    modes = [("broadsheet, pipelining = false", False, False, 4), ("broadsheet, pipelining", True, False, 2)]
    modes += [("broadsheet, pipelining + CHUNKING", True, True, 1)]
    with tempfile.TemporaryDirectory(prefix="broadsheet-bench-") as tmp:
        folder = Path(tmp)
        copy_sample_project(folder)
        prepare(folder)
        for connections in args.connections:
            write_list(folder, args.per_connection * connections)
            plain = None
            for label, pipelining, chunking, trips in modes:
                result = run_broadsheet(
                    folder, connections, 0.0, pipelining=pipelining, latency=args.latency, chunking=chunking
                )
                plain = plain or result
                bound = connections / (trips * rtt)
                ratio = f"{result['rate'] / plain['rate']:.2f}×"
                print(
                    f"| {label} | {connections} | {result['received']:,} | {result['seconds']:.1f} s "
                    f"| {result['rate']:.1f} | {result['rate'] / bound:.0%} of {bound:.0f}/s | {ratio} "
                    f"| {result['cpu'] / result['sent'] * 1000:.2f} ms |",
                    flush=True,
                )
        if not args.skip_mailmerge:
            write_list(folder, args.mailmerge_recipients)
            result = run_mailmerge(folder, args.mailmerge_recipients, 0.0, latency=args.latency)
            print(
                f"| mailmerge 2.3.0 (connection per message) | 1 | {result['received']:,} | {result['seconds']:.1f} s "
                f"| {result['rate']:.1f} | - | - | - |"
            )


if __name__ == "__main__":
    main()
