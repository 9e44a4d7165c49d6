"""API transports end to end: the sample issue composed for N recipients and sent through a local fake.

    .venv/bin/python bench/api.py [--provider postmark|sendgrid|mailgun|all] [--recipients 100000]
                                  [--connections 4] [--latency 0.05] [--literal-recipients 2000]

The fake (a threaded ``http.server`` in a separate process, HTTP/1.1 keep-alive) answers each call
like the provider after ``--latency`` seconds. The sender drives the transports with its own pool of
``--connections`` threads, one transport each, composing each batch in the worker as the campaign
runner does; then again through the campaign runner itself with its SQLite journal
(``--runner-recipients``). Prints recipients/s end to end, the sender's process CPU per recipient, and the part of
it that compose alone takes (measured separately), so that the transport's own share shows.
For SendGrid and Mailgun it also sends ``--literal-recipients`` with the shared body turned off
(one request per recipient), the form without per-recipient substitutions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from compose import machine  # noqa: E402  (bench/compose.py)

from broadsheet.core.audience import Subscriber  # noqa: E402
from broadsheet.core.compose import Composer  # noqa: E402
from broadsheet.core.config import load_config  # noqa: E402
from broadsheet.core.render import build_issue  # noqa: E402
from broadsheet.delivery.transports import transport_class  # noqa: E402

SAMPLE = ROOT / "issues" / "2021-06-01-chengdu-flemish-brabant"
PATHS = {"postmark": "/email/batch", "sendgrid": "/v3/mail/send", "mailgun": "/v3/mg.example.org/messages"}
SECRETS = {
    "BROADSHEET_POSTMARK_TOKEN": "bench",
    "BROADSHEET_SENDGRID_KEY": "bench",
    "BROADSHEET_MAILGUN_KEY": "bench",
    "BROADSHEET_SECRET": "bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0",
}


# -- the fake, in its own process ---------------------------------------------------------------


def serve(provider: str, latency: float) -> None:
    """Answer like the provider after ``latency`` seconds; print the port; count recipients."""
    received = itertools.count()
    counted = [0, 0]  # recipients, request body bytes

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()  # headers and body go out in two writes: no Nagle delay between them
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # /stats
            self.answer(200, json.dumps({"recipients": counted[0], "bytes": counted[1]}).encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, answer, count = ANSWERS[provider](body, received)
            counted[0] += count
            counted[1] += len(body)
            time.sleep(latency)
            self.answer(status, answer)

        def answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Message-Id", "bench")
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def postmark_answer(body: bytes, ids) -> tuple[int, bytes, int]:
    batch = json.loads(body)
    results = [{"ErrorCode": 0, "Message": "OK", "MessageID": str(next(ids)), "To": m["To"]} for m in batch]
    return 200, json.dumps(results).encode(), len(batch)


def sendgrid_answer(body: bytes, ids) -> tuple[int, bytes, int]:
    return 202, b"", len(json.loads(body)["personalizations"])


def mailgun_answer(body: bytes, ids) -> tuple[int, bytes, int]:
    count = body.count(b'name="to"')
    return 200, json.dumps({"id": f"<{next(ids)}@mg.example.org>", "message": "Queued. Thank you."}).encode(), count


ANSWERS = {"postmark": postmark_answer, "sendgrid": sendgrid_answer, "mailgun": mailgun_answer}


def start_fake(provider: str, latency: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", provider, "--latency", str(latency)], stdout=subprocess.PIPE, text=True
    )
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


def fake_count(url: str) -> tuple[int, int]:
    """(recipients, request bytes) the fake has received so far."""
    import requests

    stats = requests.get(url + "/stats", timeout=5).json()
    return stats["recipients"], stats["bytes"]


# -- the sender ---------------------------------------------------------------------------------


def sample_composer(provider: str, base_url: str):
    config = load_config(ROOT / "broadsheet.toml")
    table = {"base_url": base_url}
    if provider == "mailgun":
        table["domain"] = "mg.example.org"
    from dataclasses import replace

    config = replace(config, **{provider: replace(getattr(config, provider), **table)})
    issue = build_issue(SAMPLE, config)
    return config, Composer(issue, config)


def subscriber(i: int) -> Subscriber:
    name = f"Reader Nümber {i}"
    fields = {"email": f"reader{i}@example.com", "name": name, "first_name": f"Reader{i}", "city": "Leuven"}
    return Subscriber(email=fields["email"], name=name, first_name=fields["first_name"], fields=fields, line=i + 2)


def send_all(provider: str, config, composer, recipients: int, connections: int, *, shared: bool = True) -> dict:
    """Compose and send ``recipients`` with ``connections`` threads; returns counts and timings."""
    cls = transport_class(provider)
    size = cls.max_batch if shared else 1
    starts = iter(range(0, recipients, size))
    lock = threading.Lock()
    statuses: dict[str, int] = {}

    def work() -> None:
        transport = cls(config)
        transport.shared_body = shared
        with transport:
            while True:
                with lock:
                    start = next(starts, None)
                if start is None:
                    return
                batch = [composer.compose(subscriber(i)) for i in range(start, min(start + size, recipients))]
                deliveries = transport.send_batch(batch)
                with lock:
                    for d in deliveries:
                        statuses[d.status] = statuses.get(d.status, 0) + 1

    cpu, wall = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"statuses": statuses, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def send_through_runner(provider: str, config, composer, recipients: int, connections: int) -> dict:
    """The same through the campaign runner and its SQLite journal, in a temporary project folder."""
    from broadsheet.usecases.campaign import CampaignRunner, Journal, Settings, prepare_campaign

    cls = transport_class(provider)
    with tempfile.TemporaryDirectory() as folder, Journal.for_project(Path(folder)) as journal:
        started = time.perf_counter()
        record = prepare_campaign(
            journal,
            slug="bench",
            transport=provider,
            issue_dir="i",
            fingerprint="f",
            subscribers=(subscriber(i) for i in range(recipients)),
        ).record
        loaded = time.perf_counter() - started
        runner = CampaignRunner(
            journal,
            record,
            lambda: cls(config),
            composer,
            Settings(connections=connections, batch_size=cls.max_batch),
            max_batch=cls.max_batch,
        )
        cpu, wall = time.process_time(), time.perf_counter()
        result = runner.run()
        statuses = {k: v for k, v in journal.counts(record).items() if v}
        return {
            "statuses": statuses,
            "wall": time.perf_counter() - wall,
            "cpu": time.process_time() - cpu,
            "loaded": loaded,
            "error": result.error,
        }


def compose_cpu(composer, count: int) -> float:
    """Process CPU seconds per message that compose alone takes."""
    started = time.process_time()
    for i in range(count):
        composer.compose(subscriber(i))
    return (time.process_time() - started) / count


def bench(provider: str, args) -> None:
    process, url = start_fake(provider, args.latency)
    try:
        config, composer = sample_composer(provider, url)
        message = composer.compose(subscriber(0))
        compose = compose_cpu(composer, 5000)
        print(
            f"\n{provider}: message html {len(message.html):,} chars, raw {len(message.raw):,} bytes; "
            f"compose alone {compose * 1000:.3f} ms CPU per recipient"
        )
        batched = "shared body" if provider != "postmark" else "batch"
        forms = [(batched, True, args.recipients)]
        if provider != "postmark" and args.literal_recipients:
            forms.append(("one request per recipient", False, args.literal_recipients))
        if args.runner_recipients:
            forms.append((f"{batched}, campaign runner", True, args.runner_recipients))
        for label, shared, count in [form for form in forms if form[2]]:
            before, bytes_before = fake_count(url)
            if "runner" in label:
                result = send_through_runner(provider, config, composer, count, args.connections)
                print(
                    f"  (journal loaded with {count:,} rows in {result['loaded']:.1f} s, not counted below; "
                    f"run error: {result['error']})"
                )
            else:
                result = send_all(provider, config, composer, count, args.connections, shared=shared)
            got, sent_bytes = (a - b for a, b in zip(fake_count(url), (before, bytes_before), strict=False))
            per = result["cpu"] / count
            rate = count / result["wall"]
            print(
                f"  {label:26} {count:>7,} recipients {result['wall']:7.2f} s  {rate:8,.0f} rcpt/s  "
                f"CPU {per * 1000:.3f} ms/rcpt (beyond compose ~{(per - compose) * 1000:.3f})  "
                f"{sent_bytes / count / 1000:.1f} kB/rcpt on the wire  statuses {result['statuses']}  "
                f"fake received {got:,}"
            )
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="all", choices=["all", *PATHS])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--literal-recipients", type=int, default=2000)
    parser.add_argument(
        "--runner-recipients",
        type=int,
        default=100_000,
        help="also send this many through the campaign runner and journal (0: skip)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.latency)
        return
    for key, value in SECRETS.items():
        os.environ.setdefault(key, value)
    print(
        f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}; latency {args.latency * 1000:.0f} ms, "
        f"{args.connections} connections"
    )
    for provider in PATHS if args.provider == "all" else [args.provider]:
        bench(provider, args)


if __name__ == "__main__":
    main()
