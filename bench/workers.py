"""Benchmark: 1, 2 and 4 `broadsheet send --worker` processes on one campaign, counted at the receiver.

Two receivers, each in a child process that counts every recipient it accepts and when: a fake Postmark
(``/email/batch``, HTTP/1.1 keep-alive) answering each call after ``--api-latency`` (50 ms), and an aiosmtpd
sink waiting ``--smtp-delay`` (20 ms) before every reply. Each worker has ``--connections`` connections
(1) and small batches, so that the transport is the bound: a worker sends at most connections × batch
per round trip, and N workers N times that. The rate is recipients over the span from the first to the
last message the receiver accepted (process start-up and the list's load are outside it).

The single-worker path is compared in the same sitting: today's `send` (the code of ``--old``, a
checkout of the commit before workers, run from its own ``src``), this `send`, and `send --worker` alone.
``--kill`` also runs four workers of which one is killed -9 a third of the way: every recipient still
arrives at most once, and everyone not left ``unknown`` exactly once.

``--engine postgresql`` puts the journal in PostgreSQL (``[database] url``): a throwaway server started
as the test suite starts it (tests/support/postgres.py: initdb in a temporary folder, 127.0.0.1, a free
port, fsync off), a fresh database for every run.

    .venv/bin/python bench/workers.py [--old /work/wt/mw-base] [--api-recipients 3000] [--smtp-recipients 400]
                                      [--engine sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import child
from smtp import ISSUE, copy_sample_project, free_port, write_list

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "BROADSHEET_SECRET": "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0",
    "BROADSHEET_POSTMARK_TOKEN": "bench",
    "PYTHONUNBUFFERED": "1",
}


# -- the receivers (child processes) ---------------------------------------------------------------


class Tally:
    """Every recipient accepted, and when the first and the last were."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.first = self.last = 0.0

    def add(self, recipients: list[str]) -> None:
        now = time.time()
        with self.lock:
            self.counts.update(recipients)
            self.first = self.first or now
            self.last = now

    def summary(self) -> str:
        twice = sum(1 for count in self.counts.values() if count > 1)
        return json.dumps(
            {"messages": sum(self.counts.values()), "distinct": len(self.counts), "twice": twice,
             "first": self.first, "last": self.last}
        )  # fmt: skip


def serve_postmark(port: int, latency: float) -> None:
    tally = Tally()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency)
            tally.add([message["To"] for message in batch])
            body = json.dumps(
                [{"ErrorCode": 0, "Message": "OK", "MessageID": f"{m['To']}-id", "To": m["To"]} for m in batch]
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM})
    print(tally.summary(), flush=True)


def serve_smtp(port: int, delay: float) -> None:
    from aiosmtpd.controller import Controller

    tally = Tally()

    class Sink:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
            await asyncio.sleep(delay)
            session.host_name = hostname
            return responses

        async def handle_MAIL(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
            envelope.mail_from = address
            await asyncio.sleep(delay)
            return "250 OK"

        async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
            envelope.rcpt_tos.append(address)
            await asyncio.sleep(delay)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            await asyncio.sleep(delay)
            tally.add(list(envelope.rcpt_tos))
            return "250 2.0.0 queued"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM})
    controller.stop()
    print(tally.summary(), flush=True)


# -- one run -----------------------------------------------------------------------------------------


class SqliteJournal:
    """The journal's file beside broadsheet.toml (removed with .broadsheet before every run)."""

    url = password = ""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".broadsheet" / "state.db"

    def fresh(self) -> None:
        pass

    def query(self, sql: str) -> list[tuple[object, ...]]:
        if not self.path.exists():
            raise LookupError(sql)
        db = sqlite3.connect(self.path, timeout=10)
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            raise LookupError(sql) from exc
        finally:
            db.close()


class PostgresJournal:
    """A throwaway PostgreSQL server; a new database for every run."""

    def __init__(self) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        from support import postgres

        self.postgres = postgres
        self.server = postgres.start()
        self.password = postgres.PASSWORD
        self.database = ""
        self.url = ""

    def fresh(self) -> None:
        if self.database:
            self.server.drop_database(self.database)
        self.database = self.server.create_database()
        self.url = self.server.url(self.database)

    def query(self, sql: str) -> list[tuple[object, ...]]:
        import psycopg

        try:
            with psycopg.connect(host=str(self.server.folder), port=self.server.port, user=self.postgres.USER,
                                 dbname=self.database) as db:  # fmt: skip
                return list(db.execute(sql).fetchall())
        except psycopg.Error as exc:
            raise LookupError(sql) from exc

    def stop(self) -> None:
        self.server.stop()


def configure(
    folder: Path, transport: str, port: int, connections: int, batch: int, *, lease: bool, url: str = ""
) -> None:
    text = (folder / "broadsheet.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[(send|smtp|postmark|database)\]\n.*?(?=^\[|\Z)", "", text)
    text += (f'\n[database]\nurl = "{url}"\n' if url else "") + (
        f'\n[send]\ntransport = "{transport}"\nlist = "list.csv"\nconnections = {connections}\nbatch_size = {batch}\n'
        + ("worker_lease = 3\n" if lease else "")
        + f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nmessages_per_connection = 1000\n'
        f'\n[postmark]\nbase_url = "http://127.0.0.1:{port}"\n'
    )
    (folder / "broadsheet.toml").write_text(text, encoding="utf-8")


def run(
    folder: Path, journal: SqliteJournal | PostgresJournal, transport: str, workers: int, args: argparse.Namespace,
    *, code: Path | None = None,
    worker_flag: bool = True, kill: bool = False,
) -> dict[str, object]:  # fmt: skip
    """``workers`` send processes on a fresh campaign; the receiver's count and span, and the CPU time."""
    recipients = args.api_recipients if transport == "postmark" else args.smtp_recipients
    write_list(folder, recipients)
    for leftover in (folder / ".broadsheet", folder / "outbox"):
        subprocess.run(["rm", "-rf", str(leftover)], check=True)
    journal.fresh()
    port = free_port()
    mode, wait = (
        ("--serve-postmark", args.api_latency) if transport == "postmark" else ("--serve-smtp", args.smtp_delay)
    )
    receiver = child.start([sys.executable, __file__, mode, str(port), "--wait", str(wait)])
    batch = args.batch if transport == "postmark" else 1
    configure(folder, transport, port, args.connections, batch, lease=code is None, url=journal.url)
    env = {**ENV, "BROADSHEET_DATABASE_PASSWORD": journal.password}
    if code is not None:
        env["PYTHONPATH"] = str(code / "src")
    command = [sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes", "--force"]
    if worker_flag:
        command.append("--worker")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    processes = [
        subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    killed = False
    if kill:
        while not killed and processes[0].poll() is None:
            time.sleep(0.05)
            try:
                sent = int(journal.query("SELECT count(*) FROM recipients WHERE state = 'sent'")[0][0])  # type: ignore[call-overload]
            except LookupError:
                sent = 0
            if sent >= recipients // 3:
                processes[0].send_signal(signal.SIGKILL)
                killed = True
    outputs = [process.communicate(timeout=3600) for process in processes]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tally = json.loads(child.stop(receiver).strip().splitlines()[-1])
    for process, (_out, err) in zip(processes, outputs, strict=True):
        if process.returncode not in (0, -9) and not (kill and process.returncode == 1):
            raise SystemExit(f"send failed ({process.returncode}):\n{err}")
    states = dict(journal.query("SELECT state, count(*) FROM recipients GROUP BY state"))
    span = tally["last"] - tally["first"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "recipients": recipients, "received": tally["messages"], "distinct": tally["distinct"],
        "twice": tally["twice"], "span": span, "rate": tally["messages"] / span if span else 0.0,
        "cpu_ms_per_message": 1000 * cpu / max(1, tally["messages"]), "states": states,
    }  # fmt: skip


def line(label: str, result: dict[str, object]) -> str:
    return (
        f"| {label} | {result['recipients']:,} | {result['received']:,} | {result['distinct']:,} | {result['twice']} "
        f"| {result['span']:.1f} | {result['rate']:.0f} | {result['cpu_ms_per_message']:.1f} | {result['states']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-postmark", type=int, metavar="PORT")
    parser.add_argument("--serve-smtp", type=int, metavar="PORT")
    parser.add_argument("--wait", type=float, default=0.05)
    parser.add_argument("--old", type=Path, help="a checkout of the code before workers (its src is used)")
    parser.add_argument("--api-recipients", type=int, default=3000)
    parser.add_argument("--smtp-recipients", type=int, default=400)
    parser.add_argument("--api-latency", type=float, default=0.05)
    parser.add_argument("--smtp-delay", type=float, default=0.02)
    parser.add_argument("--connections", type=int, default=1, help="connections per worker")
    parser.add_argument("--batch", type=int, default=10, help="Postmark messages per call (SMTP: 1)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--transports", default="postmark,smtp")
    parser.add_argument("--kill", action="store_true", help="also four workers with one killed -9")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite", help="the journal's")
    args = parser.parse_args()
    if args.serve_postmark:
        return serve_postmark(args.serve_postmark, args.wait)
    if args.serve_smtp:
        return serve_smtp(args.serve_smtp, args.wait)

    print(f"{platform.processor() or platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()}, {args.engine}")
    print("| run | recipients | received | distinct | twice | span s | msg/s | CPU ms/msg | journal |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as temporary:
        folder = Path(temporary)
        copy_sample_project(folder)
        journal = PostgresJournal() if args.engine == "postgresql" else SqliteJournal(folder)
        try:
            compare(folder, journal, args)
        finally:
            if isinstance(journal, PostgresJournal):
                journal.stop()
    print(f"load average at the end {os.getloadavg()}")
    return None


def compare(folder: Path, journal: SqliteJournal | PostgresJournal, args: argparse.Namespace) -> None:
    """Every transport: the old send and this one (with ``--old``), then 1, 2, 4 workers (and one killed)."""
    for transport in args.transports.split(","):
        rates = {}
        if args.old is not None:
            print(line(f"{transport}: today's send (before workers)", run(folder, journal, transport, 1, args,
                                                                           code=args.old, worker_flag=False)))  # fmt: skip
            print(line(f"{transport}: this send", run(folder, journal, transport, 1, args, worker_flag=False)))
        for count in (int(n) for n in args.workers.split(",")):
            result = run(folder, journal, transport, count, args)
            rates[count] = result["rate"]
            print(line(f"{transport}: {count} worker(s)", result))
        if args.kill:
            print(line(f"{transport}: 4 workers, one killed -9", run(folder, journal, transport, 4, args, kill=True)))
        if rates.get(1):
            scaling = ", ".join(f"{n}: {rate / rates[1]:.2f}×" for n, rate in rates.items())
            print(f"{transport} scaling from 1 worker: {scaling}")


if __name__ == "__main__":
    main()
