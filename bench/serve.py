"""Benchmark: one-click unsubscribes against a real `broadsheet serve` (waitress) while a campaign runs.

A temporary copy of the sample project gets a store of ``--readers`` subscribed readers. `broadsheet send`
mails them to the outbox (rate-limited, so that it runs for the whole measurement) while 50 clients
(asyncio, keep-alive connections, our own minimal HTTP client so that the client costs little CPU)
post RFC 8058 one-click unsubscribes for ``--unsubscribes`` other readers as fast as serve answers.
Prints unsubscribes per second, latency p50/p99, and checks that every one was recorded in the store.

    .venv/bin/python bench/serve.py [--unsubscribes 5000] [--clients 50] [--readers 3000] [--send-rate 100] [--rate R]

Without ``--rate`` the clients post as fast as serve answers (its throughput; the latency is then mostly
the queue: 50 requests in flight at N/s wait about 50/N s). ``--rate R`` paces them to R a second in all
and counts each latency from when the request was due: the latency at that load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from compose import machine  # noqa: E402 - bench/compose.py, beside this script

from broadsheet.core.tokens import make_token  # noqa: E402
from broadsheet.data.store import Store  # noqa: E402

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
LIST = "newsletter.bcecc.example.org"
SECRET = "bench-serve-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
BODY = b"List-Unsubscribe=One-Click"


def project(folder: Path, port: int, send_rate: float, threads: int) -> None:
    for name in ("broadsheet.toml", "subscribers.example.csv"):
        shutil.copy(ROOT / name, folder / name)
    for name in ("assets", "templates"):
        shutil.copytree(ROOT / name, folder / name)
    shutil.copytree(ROOT / ISSUE, folder / ISSUE)
    config = folder / "broadsheet.toml"
    text = config.read_text(encoding="utf-8").replace(
        'public_url = "https://newsletter.example.org"', f'public_url = "http://127.0.0.1:{port}"'
    )
    text = text.replace("[serve]\n", f"[serve]\nthreads = {threads}\n")
    config.write_text(text.replace("rate_per_second = 0", f"rate_per_second = {send_rate}"), encoding="utf-8")


def fill_store(folder: Path, readers: int, leavers: int) -> list[str]:
    """``readers`` who get the campaign and ``leavers`` who unsubscribe during it; the leavers' tokens."""
    with Store.for_project(folder) as store:
        for n in range(readers):
            store.add(f"reader{n}@example.org", name=f"Reader {n}")
        for n in range(leavers):
            store.add(f"leaver{n}@example.net", name=f"Leaver {n}", tags=("leavers",))
    return [make_token("unsubscribe", f"leaver{n}@example.net", LIST, SECRET) for n in range(leavers)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("serve did not start")


class Pace:
    """When each request is due: as fast as the clients go (``rate`` 0: a closed loop, latency is what a
    saturated server gives), or ``rate`` requests a second in all (an open loop: latency is counted from
    when a request was due, so a server that falls behind is charged for the wait)."""

    def __init__(self, rate: float):
        self.rate = rate
        self.started = time.perf_counter()
        self.issued = 0

    async def next_due(self) -> float:
        if not self.rate:
            return time.perf_counter()
        due = self.started + self.issued / self.rate
        self.issued += 1
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        return due


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    """One HTTP answer off a keep-alive connection: its head (the body, Content-Length long, is read past)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head


def interrupt(*processes: subprocess.Popen | None) -> None:
    """Ctrl-C each process still running, in order, and wait for it (killed after 30 s)."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p90 and p99 of ``latencies`` (seconds) in milliseconds; sorts the list (its last is the max)."""
    latencies.sort()
    return (
        statistics.median(latencies) * 1000,
        latencies[int(len(latencies) * 0.90) - 1] * 1000,
        latencies[int(len(latencies) * 0.99) - 1] * 1000,
    )


async def client(port: int, tokens: list[str], latencies: list[float], failures: list[str], pace: Pace) -> None:
    """One keep-alive connection posting one-click unsubscribes, one at a time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    host = f"127.0.0.1:{port}".encode()
    try:
        while tokens:
            token = tokens.pop()
            n = len(tokens)  # a reader of its own, through the trusted proxy: no client's rate limit is met
            request = (
                b"POST /u/"
                + token.encode()
                + b" HTTP/1.1\r\nHost: "
                + host
                + f"\r\nX-Forwarded-For: 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}".encode()
                + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
                + str(len(BODY)).encode()
                + b"\r\n\r\n"
                + BODY
            )
            started = await pace.next_due()
            writer.write(request)
            head = await read_answer(reader)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                failures.append(head.split(b"\r\n")[0].decode())
    finally:
        writer.close()


async def load(port: int, tokens: list[str], clients: int, rate: float) -> tuple[float, list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    queue = list(tokens)
    pace = Pace(rate)
    started = time.perf_counter()
    await asyncio.gather(*(client(port, queue, latencies, failures, pace) for _ in range(clients)))
    return time.perf_counter() - started, latencies, failures


def recorded(folder: Path) -> tuple[int, int]:
    """(leavers now unsubscribed, one-click events) in the store."""
    with sqlite3.connect(folder / ".broadsheet" / "audience.db") as db:
        unsubscribed = db.execute(
            "SELECT count(*) FROM subscribers WHERE email LIKE 'leaver%' AND status = 'unsubscribed'"
        ).fetchone()[0]
        events = db.execute("SELECT count(*) FROM events WHERE source = 'one-click'").fetchone()[0]
    return unsubscribed, events


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unsubscribes", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--readers", type=int, default=3000, help="subscribers the running campaign mails")
    parser.add_argument("--threads", type=int, default=4, help="serve's [serve] threads")
    parser.add_argument("--send-rate", type=float, default=100, help="the campaign's messages per second")
    parser.add_argument("--rate", type=float, default=0, help="unsubscribes per second in all (0: as fast as served)")
    args = parser.parse_args()
    env = {**os.environ, "BROADSHEET_SECRET": SECRET, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as name:
        folder, port = Path(name), free_port()
        project(folder, port, args.send_rate, args.threads)
        tokens = fill_store(folder, args.readers, args.unsubscribes)
        log = open(folder / "serve.log", "w+")  # noqa: SIM115 - read back below
        serve = subprocess.Popen(
            [sys.executable, "-m", "broadsheet", "serve", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        send = None
        try:
            wait_listening(port, serve)
            send = subprocess.Popen(
                [sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes", "--force"],
                cwd=folder,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(3)  # the campaign is loaded and sending
            running = send.poll() is None
            cpu_before = cpu_seconds(serve.pid)
            seconds, latencies, failures = asyncio.run(load(port, tokens, args.clients, args.rate))
            serve_cpu = cpu_seconds(serve.pid) - cpu_before
            still_running = send.poll() is None
        finally:
            interrupt(send, serve)
        log.seek(0)
        errors = log.read()
        log.close()
        sent = sum(1 for _ in (folder / "outbox").rglob("*.eml"))
        unsubscribed, events = recorded(folder)
    p50, p90, p99 = percentiles(latencies)
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d')}")
    print(
        f"{args.unsubscribes} one-click unsubscribes from {args.clients} concurrent clients"
        f"{f' paced at {args.rate:.0f}/s' if args.rate else ''}, {args.threads} serve threads, in {seconds:.2f} s: "
        f"{args.unsubscribes / seconds:.0f}/s, latency p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms"
    )
    print(
        f"serve's CPU: {serve_cpu:.2f} s, {serve_cpu / args.unsubscribes * 1e6:.0f} µs per unsubscribe "
        f"(one core would answer {args.unsubscribes / serve_cpu:.0f}/s)"
    )
    print(
        f"campaign running during the whole measurement: {running and still_running} "
        f"({sent} messages written to the outbox meanwhile)"
    )
    print(
        f"recorded: {unsubscribed}/{args.unsubscribes} unsubscribed, {events} one-click events, "
        f"{len(failures)} non-200 answers"
    )
    errors = "\n".join(line for line in errors.splitlines() if not line.startswith("Task queue depth"))
    if errors.strip():
        print("serve's log:\n" + errors[-3000:])
    if failures or unsubscribed != args.unsubscribes:
        raise SystemExit("some unsubscribes were not recorded")


if __name__ == "__main__":
    main()
