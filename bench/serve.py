"""Benchmark: one-click unsubscribes against a real `broadsheet serve` (waitress) while a campaign runs.

A temporary copy of the sample project gets a store of ``--readers`` subscribed readers. `broadsheet send`
mails them to the outbox (rate-limited, so that it runs for the whole measurement) while 50 clients post RFC
8058 one-click unsubscribes for other readers (each token once) as fast as serve answers. Prints
unsubscribes per second, latency p50/p90/p99, serve's CPU, and checks that every one answered 200 was
recorded in the store.

Two serves are measured side by side, ``--rounds`` times each, alternating: this tree's (group commit: one
writer thread commits many requests' changes at once, and waitress's event loop answers each one-click once
its group is committed, no request thread waiting) and the anchor, ``--anchor REV`` of this repository
(default: main before the group writer, where each one-click waits for a commit of its own behind one write
lock). ``--anchor ''`` measures this tree only.

    .venv/bin/python bench/serve.py [--client wrk|python] [--seconds 4] [--rounds 3] [--anchor REV]
                                    [--unsubscribes N] [--clients 50] [--readers 3000] [--send-rate 100] [--rate R]

``--client wrk`` (the default when `wrk` is installed: `apt-get install wrk`) runs wrk with
bench/serve_wrk.lua for ``--seconds``, from ``--unsubscribes`` tokens (default 30,000: more than it can
use); requests still in flight when wrk stops may be recorded without their answer being counted, so the
check is answered-200 <= recorded <= sent. ``--client python`` posts exactly ``--unsubscribes`` (default
5,000) from asyncio keep-alive connections (our own minimal HTTP client), recorded == answered; ``--rate
R`` paces them to R a second in all and counts each latency from when the request was due. Without
``--rate`` the latency is mostly the queue: 50 requests in flight at N/s wait about 50/N s.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from compose import machine  # noqa: E402 - bench/compose.py, beside this script

from broadsheet.core.tokens import make_token  # noqa: E402

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
LIST = "newsletter.bcecc.example.org"
SECRET = "bench-serve-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
BODY = b"List-Unsubscribe=One-Click"
ANCHOR = "a1f4981"  # main before the group writer: each one-click commits on its own
WRK_THREADS = 2


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


FILL = """
import contextlib, sys
from pathlib import Path
from broadsheet.data.store import Store
folder, readers, leavers = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
with Store.for_project(folder) as store, getattr(store, "grouped", contextlib.nullcontext)():
    for n in range(readers):
        store.add(f"reader{n}@example.org", name=f"Reader {n}")
    for n in range(leavers):
        store.add(f"leaver{n}@example.net", name=f"Leaver {n}", tags=("leavers",))
"""


def fill_store(folder: Path, readers: int, leavers: int, code: Path) -> list[str]:
    """``readers`` who get the campaign and ``leavers`` who unsubscribe during it (one transaction), written
    by the measured tree's own code (an older tree may not open a newer store); the leavers' tokens."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run([sys.executable, "-c", FILL, str(folder), str(readers), str(leavers)], env=env, check=True)
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


@dataclass
class Result:
    """One measurement: the rate, the latency (ms), serve's CPU per one-click, and what was recorded."""

    seconds: float
    answered: int  # one-clicks answered 200
    others: list[str]  # status lines of the other answers
    sent: int
    p50: float
    p90: float
    p99: float
    top: float
    cpu: float  # serve's CPU seconds over the measurement
    unsubscribed: int
    events: int
    running: bool  # the campaign ran throughout
    messages: int  # written to the outbox meanwhile
    log: str

    @property
    def rate(self) -> float:
        return self.answered / self.seconds

    def line(self) -> str:
        return (
            f"{self.rate:,.0f}/s, p50 {self.p50:.1f} ms, p90 {self.p90:.1f} ms, p99 {self.p99:.1f} ms, max "
            f"{self.top:.0f} ms; serve's CPU {self.cpu / max(self.answered, 1) * 1e6:,.0f} µs a one-click; "
            f"{self.answered:,} answered 200, {self.events:,} recorded, {self.sent:,} sent, {len(self.others)} "
            f"other answers; campaign running throughout: {self.running} ({self.messages} messages meanwhile)"
        )

    def problem(self) -> str:
        """What is wrong with the run ("" for nothing): an answer other than 200, or one answered 200 and not
        recorded (or recorded more than once)."""
        if self.others:
            return f"answers other than 200: {sorted(set(self.others))[:5]}"
        if not self.answered <= self.events == self.unsubscribed <= self.sent:
            return f"{self.answered} answered 200, {self.unsubscribed} unsubscribed, {self.events} events, {self.sent} sent"
        return ""


def anchor_code(revision: str, folder: Path) -> Path:
    """The ``src`` folder of ``revision`` of this repository, written out under ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def python_load(port: int, tokens: list[str], args: argparse.Namespace) -> tuple[float, list[float], list[str]]:
    return asyncio.run(load(port, tokens, args.clients, args.rate))


def wrk_load(port: int, tokens: list[str], folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """wrk with bench/serve_wrk.lua for ``--seconds``: its RESULT figures (sent, ok, other, exhausted,
    seconds, p50, p90, p99, max)."""
    paths = folder / "paths.txt"
    paths.write_text("".join(f"/u/{token}\n" for token in tokens), encoding="ascii")
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{args.clients}", f"-d{args.seconds}s", "--timeout", "10s", "-s",
               str(ROOT / "bench" / "serve_wrk.lua"), f"http://127.0.0.1:{port}", "--", str(paths), str(WRK_THREADS)]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures = {name: float(value) for name, value in re.findall(r"(\w+) ([\d.]+)", " ".join(
        line for line in output.splitlines() if line.startswith("RESULT")
    ))}  # fmt: skip
    if figures.get("exhausted"):
        raise SystemExit(f"wrk used every token before {args.seconds} s: raise --unsubscribes")
    return figures


def measure(code: Path, args: argparse.Namespace) -> Result:
    """One serve (its code from ``code``, a src folder) under load while a campaign runs."""
    env = {**os.environ, "BROADSHEET_SECRET": SECRET, "PYTHONPATH": str(code)}
    with tempfile.TemporaryDirectory() as name:
        folder, port = Path(name), free_port()
        project(folder, port, args.send_rate, args.threads)
        tokens = fill_store(folder, args.readers, args.unsubscribes, code)
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
            if args.client == "wrk":
                figures = wrk_load(port, tokens, folder, args)
                seconds, answered, sent = figures["seconds"], int(figures["ok"]), int(figures["sent"])
                others = ["not 200"] * int(figures["other"])
                p50, p90, p99, top = figures["p50"], figures["p90"], figures["p99"], figures["max"]
            else:
                seconds, latencies, others = python_load(port, tokens, args)
                p50, p90, p99 = percentiles(latencies)
                top, sent, answered = latencies[-1] * 1000, len(tokens), len(tokens) - len(others)
            serve_cpu = cpu_seconds(serve.pid) - cpu_before
            running = running and send.poll() is None
        finally:
            interrupt(send, serve)  # serve commits what it has queued before it exits
        log.seek(0)
        errors = "\n".join(line for line in log.read().splitlines() if "Task queue depth" not in line)
        log.close()
        messages = sum(1 for _ in (folder / "outbox").rglob("*.eml"))
        unsubscribed, events = recorded(folder)
    return Result(
        seconds, answered, others, sent, p50, p90, p99, top, serve_cpu, unsubscribed, events, running, messages, errors
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--seconds", type=int, default=4, help="how long wrk runs")
    parser.add_argument("--unsubscribes", type=int, help="tokens (wrk: 30,000; python: 5,000, each posted)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--readers", type=int, default=3000, help="subscribers the running campaign mails")
    parser.add_argument("--threads", type=int, default=4, help="serve's [serve] threads")
    parser.add_argument("--send-rate", type=float, default=100, help="the campaign's messages per second")
    parser.add_argument("--rate", type=float, default=0, help="python client: unsubscribes per second in all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--anchor", default=ANCHOR, help="the revision to compare with ('': none)")
    args = parser.parse_args()
    args.unsubscribes = args.unsubscribes or (30_000 if args.client == "wrk" else 5_000)
    load_now = os.getloadavg()[0]
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC; load {load_now:.1f}")
    print(
        f"{args.client}, {args.clients} clients{f' paced at {args.rate:.0f}/s' if args.rate else ''}, "
        f"{args.threads} serve threads, a campaign to {args.readers} readers at {args.send_rate:.0f}/s running"
    )
    with tempfile.TemporaryDirectory() as name:
        trees = {"group commit (this tree)": ROOT / "src"}
        if args.anchor:
            trees = {f"one commit a request ({args.anchor})": anchor_code(args.anchor, Path(name)), **trees}
        results: dict[str, list[Result]] = {label: [] for label in trees}
        for round_ in range(args.rounds):
            for label, code in trees.items():
                result = measure(code, args)
                results[label].append(result)
                print(f"round {round_ + 1}, {label}: {result.line()}", flush=True)
                if problem := result.problem():
                    print("serve's log:\n" + result.log[-3000:])
                    raise SystemExit(f"{label}: {problem}")
    print(f"load average now {os.getloadavg()[0]:.1f}; {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    for label, runs in results.items():
        rates = sorted(run.rate for run in runs)
        p99s = sorted(run.p99 for run in runs)
        print(f"{label}: {' / '.join(f'{r:,.0f}' for r in rates)}/s, p99 {' / '.join(f'{p:.0f}' for p in p99s)} ms")
    if len(results) == 2:
        anchor, new = (statistics.median(run.rate for run in runs) for runs in results.values())
        print(f"group commit / anchor, medians: {new / anchor:.2f}×")


if __name__ == "__main__":
    main()
