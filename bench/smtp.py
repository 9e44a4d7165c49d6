"""Benchmark: `broadsheet send` over SMTP with 1, 4 and 10 connections against mailmerge 2.3.0.

2,000 recipients go to a local aiosmtpd sink (its own process) that waits 20 ms before every reply a
handler gives (EHLO, MAIL, RCPT, end of DATA, RSET, QUIT), like a server across a network. Sending one
message on an open connection takes three such replies (MAIL, RCPT, DATA), so the latency bound is
connections / (3 × 20 ms). mailmerge opens a new connection per message (EHLO … QUIT: five replies).
The sink advertises PIPELINING; broadsheet then sends MAIL, RCPT and DATA in one write, but this sink
still answers them one after another, 20 ms each, so the bound stays the same (bench/pipelining.py
measures pipelining and CHUNKING over real latency instead). "command" is the whole `broadsheet send`
(build, lint, journal set-up and the send), timed from outside; its CPU (user + sys, this process
alone) per message sent is what a busy machine leaves comparable.

    .venv/bin/pip install mailmerge==2.3.0
With --chunking the sink offers CHUNKING as well (as Postfix does): broadsheet then sends MAIL, RCPT
and BDAT LAST with the content in one write (three delayed replies still), mailmerge DATA as before.

    .venv/bin/python bench/smtp.py [--recipients 2000] [--delay 0.02] [--chunking] [--skip-mailmerge]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import child
from latency_proxy import LatencyProxy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.bdat: BDAT (RFC 3030) for the sink, as in the tests
ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
BIN = Path(sys.executable).parent


# -- the sink (runs in a child process) -------------------------------------------------------------


class DelayedSink:
    def __init__(self, delay: float, chunking: bool = False):
        self.delay = delay
        self.chunking = chunking
        self.received = 0

    async def _reply(self, reply: str) -> str:
        await asyncio.sleep(self.delay)
        return reply

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await asyncio.sleep(self.delay)
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")  # as Postfix, SES, Postmark and SendGrid do
        if self.chunking:
            responses.insert(-1, "250-CHUNKING")  # as Postfix does
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        envelope.mail_from = address
        return await self._reply("250 OK")

    async def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_tos.append(address)
        return await self._reply("250 OK")

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        return await self._reply("250 2.0.0 queued")

    async def handle_RSET(self, server, session, envelope):
        return await self._reply("250 OK")

    async def handle_QUIT(self, server, session, envelope):
        return await self._reply("221 Bye")


def serve(port: int, delay: float, chunking: bool) -> None:
    from aiosmtpd.controller import Controller
    from support.bdat import ChunkingSMTP

    class ChunkingController(Controller):
        def factory(self):
            return ChunkingSMTP(self.handler, **self.SMTP_kwargs)

    sink = DelayedSink(delay, chunking)
    controller = ChunkingController(sink, hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM})
    controller.stop()
    print(f"received {sink.received}", flush=True)


class Sink:
    """The sink process: started fresh for each run, reports how many messages it accepted."""

    def __init__(self, delay: float, chunking: bool = False):
        self.port = free_port()
        argv = [sys.executable, __file__, "--serve", str(self.port), "--delay", str(delay)]
        self.process = child.start(argv + (["--chunking"] if chunking else []))

    def stop(self) -> int:
        return int(re.search(r"received (\d+)", child.stop(self.process)).group(1))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the project -----------------------------------------------------------------------------------


def copy_sample_project(folder: Path) -> None:
    """The repository's sample project (config, theme, sample issue, assets) into ``folder``."""
    for name in ("broadsheet.toml", "templates", "issues", "assets"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        elif source.exists():
            shutil.copy(source, folder / name)


def make_project(folder: Path, recipients: int) -> None:
    copy_sample_project(folder)
    write_list(folder, recipients)


def write_list(folder: Path, recipients: int) -> None:
    """``list.csv`` with this many recipients."""
    rows = ["email,name,first_name"] + [
        f"reader{i:05d}@example.com,Reader {i} Bench,Reader{i}" for i in range(recipients)
    ]
    (folder / "list.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def configure(folder: Path, port: int, connections: int, *, pipelining: bool = True) -> None:
    """[send] and [smtp] for this sink; ``chunking`` is left at its default (on: used where offered)."""
    text = (folder / "broadsheet.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[(send|smtp)\]\n.*?(?=^\[|\Z)", "", text)
    text += (
        f'\n[send]\ntransport = "smtp"\nlist = "list.csv"\nconnections = {connections}\nbatch_size = 100\n'
        f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nmessages_per_connection = 100\n'
        f"pipelining = {'true' if pipelining else 'false'}\n"
    )
    (folder / "broadsheet.toml").write_text(text, encoding="utf-8")


class SinkBehind:
    """The sink, behind a latency proxy when ``latency`` is set; ``port`` is where senders connect."""

    def __init__(self, delay: float, latency: float = 0.0, chunking: bool = False):
        self.sink = Sink(delay, chunking)
        self.proxy = LatencyProxy(free_port(), self.sink.port, latency) if latency else None
        self.port = self.proxy.port if self.proxy else self.sink.port

    def stop(self) -> int:
        if self.proxy:
            self.proxy.stop()
        return self.sink.stop()


def run_broadsheet(
    folder: Path,
    connections: int,
    delay: float,
    *,
    pipelining: bool = True,
    latency: float = 0.0,
    chunking: bool = False,
) -> dict:
    """One `broadsheet send` to a fresh sink (offering CHUNKING when ``chunking``), on a new journal."""
    for path in (folder / ".broadsheet").glob("*"):
        if path.is_dir() and path.name != "cache":  # the images a build optimised stay, as after a build
            shutil.rmtree(path)
        elif not path.is_dir():
            path.unlink()
    sink = SinkBehind(delay, latency, chunking)
    configure(folder, sink.port, connections, pipelining=pipelining)
    env = {**os.environ, "BROADSHEET_SECRET": "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "broadsheet"), "send", ISSUE, "--yes"], cwd=folder, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command's own CPU: the sink is not reaped yet
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    received = sink.stop()
    if result.returncode != 0:
        raise SystemExit(f"broadsheet send failed:\n{result.stdout}\n{result.stderr}")
    match = re.search(r"this run: sent ([\d,]+).* in ([\d.]+) s", result.stdout)
    sent, seconds = int(match.group(1).replace(",", "")), float(match.group(2))
    return {
        "sent": sent, "received": received, "seconds": seconds, "wall": wall, "rate": sent / seconds,
        "cpu": user + system, "user": user, "system": system,
    }  # fmt: skip


def prepare(folder: Path) -> None:
    """As on an editor's machine before a send: broadsheet's bytecode compiled (pip compiles it on install;
    PYTHONDONTWRITEBYTECODE or an editable install leave every run compiling its modules again), and the
    issue built once (its images optimised into .broadsheet/cache)."""
    package = ROOT / "src" / "broadsheet"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, stdout=subprocess.DEVNULL)
    env = {**os.environ, "BROADSHEET_SECRET": "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"}
    subprocess.run([str(BIN / "broadsheet"), "build", ISSUE], cwd=folder, env=env, check=True, capture_output=True)


# -- mailmerge ---------------------------------------------------------------------------------------


def run_mailmerge(folder: Path, recipients: int, delay: float, *, latency: float = 0.0) -> dict:
    """The same list and sink through mailmerge 2.3.0: one SMTP connection per message."""
    mailmerge = BIN / "mailmerge"
    if not mailmerge.exists():
        raise SystemExit("mailmerge is not installed: .venv/bin/pip install mailmerge==2.3.0")
    sink = SinkBehind(delay, latency)
    html, text = _sample_parts(folder)
    template = folder / "mailmerge_template.txt"
    template.write_text(
        "TO: {{email}}\nSUBJECT: Benchmark issue\nFROM: newsletter@example.org\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="boundary"\n\n'
        f"--boundary\nContent-Type: text/plain; charset=utf-8\n\nDear {{{{first_name}}}},\n{text}\n"
        f"--boundary\nContent-Type: text/html; charset=utf-8\n\n<p>Dear {{{{first_name}}}},</p>{html}\n--boundary--\n",
        encoding="utf-8",
    )
    (folder / "mailmerge_server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {sink.port}\n", encoding="utf-8"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(mailmerge),
            "--no-dry-run",
            "--no-limit",
            "--template",
            str(template),
            "--database",
            str(folder / "list.csv"),
            "--config",
            str(folder / "mailmerge_server.conf"),
            "--output-format",
            "raw",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    received = sink.stop()
    if result.returncode != 0:
        raise SystemExit(f"mailmerge failed: {result.stderr[-2000:]}")
    return {"sent": recipients, "received": received, "seconds": seconds, "wall": seconds, "rate": received / seconds}


def _sample_parts(folder: Path) -> tuple[str, str]:
    """One recipient's HTML and text of the sample issue, so mailmerge sends messages of the same size."""
    os.environ.setdefault("BROADSHEET_SECRET", "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    from broadsheet.core.config import load_config
    from broadsheet.core.lint import sample_parts
    from broadsheet.core.render import build_issue

    config = load_config(folder / "broadsheet.toml")
    html, text, *_ = sample_parts(build_issue(folder / ISSUE, config), config)
    return html.replace("{", "&#123;"), text.replace("{", "(")


# -- main ----------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4, 10])
    parser.add_argument("--skip-mailmerge", action="store_true")
    parser.add_argument("--mailmerge-recipients", type=int, help="fewer for mailmerge (its rate is per message)")
    parser.add_argument("--chunking", action="store_true", help="the sink offers CHUNKING (RFC 3030) too")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.delay, args.chunking)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"# {platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs · "
        f"Python {platform.python_version()} · load {load} · {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    offers = "PIPELINING and CHUNKING" if args.chunking else "PIPELINING"
    print(
        f"# {args.recipients:,} recipients, every handler reply delayed {args.delay * 1000:.0f} ms, sink offers {offers}"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="broadsheet-bench-") as tmp:
        folder = Path(tmp)
        make_project(folder, args.recipients)
        prepare(folder)
        for connections in args.connections:
            bound = connections / (3 * args.delay)
            result = run_broadsheet(folder, connections, args.delay, chunking=args.chunking)
            rows.append((f"broadsheet, {connections} connection(s)", result, bound))
        if not args.skip_mailmerge:
            count = args.mailmerge_recipients or args.recipients
            write_list(folder, count)
            rows.append(("mailmerge 2.3.0 (connection per message)", run_mailmerge(folder, count, args.delay), None))
    baseline = rows[-1][1]["rate"] if not args.skip_mailmerge else None
    print(
        "| sender | received | send time | messages/s | of latency bound | command | command msg/s "
        "| of latency bound | × mailmerge (command) | command CPU (user + sys) | CPU per message |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, result, bound in rows:
        whole = result["sent"] / result["wall"]
        share = f"{result['rate'] / bound:.0%} of {bound:.0f}/s" if bound else "-"
        whole_share = f"{whole / bound:.0%}" if bound else "-"
        ratio = f"{whole / baseline:.1f}×" if baseline else "-"
        cpu = f"{result['user']:.1f} + {result['system']:.1f} s" if "cpu" in result else "-"
        per_message = f"{result['cpu'] / result['sent'] * 1000:.2f} ms" if "cpu" in result else "-"
        print(
            f"| {label} | {result['received']:,} | {result['seconds']:.1f} s | {result['rate']:.1f} | {share} "
            f"| {result['wall']:.1f} s | {whole:.1f} | {whole_share} | {ratio} | {cpu} | {per_message} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
