"""Benchmark: counted-link redirects against a real `broadsheet serve` (waitress) while a campaign runs.

A temporary copy of the sample project with ``[tracking] clicks = true`` mails ``--readers`` subscribers
to the outbox (rate-limited, so that it runs for the whole measurement) while ``--clients`` keep-alive
connections (asyncio, the minimal client of bench/serve.py) GET ``/r/<token>`` for the issue's links as
fast as serve answers (or ``--rate`` a second in all). Prints redirects per second and latency p50/p99,
and checks, once serve has stopped and written what it held, that every click is in the store.

    .venv/bin/python bench/clicks.py [--clicks 20000] [--clients 50] [--readers 3000] [--send-rate 100] [--rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serve as bench
from compose import machine  # bench/compose.py, beside this script
from serve import ISSUE, LIST, ROOT, SECRET

from broadsheet.core.tokens import ClickLink, make_click_token
from broadsheet.data.store import Store

SLUG = Path(ISSUE).name
BROWSER = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def tokens_for(links: int) -> list[str]:
    """One token per link of the campaign (what the send put in every message)."""
    return [
        make_click_token(ClickLink(SLUG, n, f"https://example.org/article/{n}"), LIST, SECRET) for n in range(links)
    ]


async def client(port: int, tokens: list[str], todo: list[int], latencies: list[float], failures: list[str],
                 pace: bench.Pace) -> None:  # fmt: skip
    """One keep-alive connection following counted links, one at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    host = f"127.0.0.1:{port}".encode()
    try:
        while todo:
            n = todo.pop()  # a reader of its own address, through the trusted proxy
            request = (
                b"GET /r/" + tokens[n % len(tokens)].encode() + b" HTTP/1.1\r\nHost: " + host
                + f"\r\nX-Forwarded-For: 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}".encode()
                + b"\r\nUser-Agent: " + BROWSER + b"\r\n\r\n"
            )  # fmt: skip
            started = await pace.next_due()
            writer.write(request)
            head = await bench.read_answer(reader)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 302") or b"\r\nLocation: https://example.org/article/" not in head:
                failures.append(head.split(b"\r\n")[0].decode())
    finally:
        writer.close()


async def load(
    port: int, tokens: list[str], clicks: int, clients: int, rate: float
) -> tuple[float, list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    todo = list(range(clicks))
    pace = bench.Pace(rate)
    started = time.perf_counter()
    await asyncio.gather(*(client(port, tokens, todo, latencies, failures, pace) for _ in range(clients)))
    return time.perf_counter() - started, latencies, failures


def counted(folder: Path) -> tuple[int, int]:
    """(clicks in the store, of which marked as scanners)."""
    with sqlite3.connect(folder / ".broadsheet" / "audience.db") as db:
        total, scanner = db.execute("SELECT count(*), coalesce(sum(scanner), 0) FROM clicks").fetchone()
    return total, scanner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20000)
    parser.add_argument("--links", type=int, default=8, help="links in the issue")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--readers", type=int, default=3000, help="subscribers the running campaign mails")
    parser.add_argument("--threads", type=int, default=4, help="serve's [serve] threads")
    parser.add_argument("--send-rate", type=float, default=100, help="the campaign's messages per second")
    parser.add_argument("--rate", type=float, default=0, help="clicks per second in all (0: as fast as served)")
    args = parser.parse_args()
    env = {**os.environ, "BROADSHEET_SECRET": SECRET, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as name:
        folder, port = Path(name), bench.free_port()
        bench.project(folder, port, args.send_rate, args.threads)
        config = folder / "broadsheet.toml"
        config.write_text(config.read_text(encoding="utf-8") + "\n[tracking]\nclicks = true\n", encoding="utf-8")
        with Store.for_project(folder) as store:
            for n in range(args.readers):
                store.add(f"reader{n}@example.org", name=f"Reader {n}")
        tokens = tokens_for(args.links)
        log = open(folder / "serve.log", "w+")  # noqa: SIM115 - read back below
        serve = subprocess.Popen([sys.executable, "-m", "broadsheet", "serve", "--port", str(port)], cwd=folder,
                                 env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)  # fmt: skip
        send = None
        try:
            bench.wait_listening(port, serve)
            send = subprocess.Popen([sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes", "--force"],
                                    cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(3)  # the campaign is loaded and sending
            running = send.poll() is None
            cpu_before = bench.cpu_seconds(serve.pid)
            seconds, latencies, failures = asyncio.run(load(port, tokens, args.clicks, args.clients, args.rate))
            serve_cpu = bench.cpu_seconds(serve.pid) - cpu_before
            still_running = send.poll() is None
        finally:
            bench.interrupt(send, serve)
        log.seek(0)
        errors = log.read()
        log.close()
        sent = sum(1 for _ in (folder / "outbox").rglob("*.eml"))
        total, scanner = counted(folder)
    p50, p90, p99 = bench.percentiles(latencies)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M')}")
    print(
        f"{args.clicks} redirects from {args.clients} concurrent clients"
        f"{f' paced at {args.rate:.0f}/s' if args.rate else ''}, {args.threads} serve threads, in {seconds:.2f} s: "
        f"{args.clicks / seconds:.0f}/s, latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
    print(f"serve's CPU: {serve_cpu:.2f} s, {serve_cpu / args.clicks * 1e6:.0f} µs per redirect")
    print(f"campaign running during the whole measurement: {running and still_running} ({sent} messages meanwhile)")
    print(f"counted: {total}/{args.clicks} clicks in the store ({scanner} as scanners), {len(failures)} wrong answers")
    errors = "\n".join(line for line in errors.splitlines() if not line.startswith("Task queue depth"))
    if errors.strip():
        print("serve's log:\n" + errors[-3000:])
    if failures or total != args.clicks:
        raise SystemExit("some clicks were not answered or not counted")


if __name__ == "__main__":
    main()
