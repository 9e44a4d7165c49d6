"""Webhook events verified and recorded per second, and inbox messages read per second.

    .venv/bin/python bench/webhooks.py [--events 5000] [--threads 2] [--messages 1000]

Webhooks: signed Mailgun requests (HMAC-SHA256, as Mailgun signs them) for subscribers of a real store
with a real send journal, each passed to ``broadsheet.usecases.events.webhooks.handle`` — verify, parse, match
the campaign through the journal, record in SQLite — first on one thread, then on ``--threads`` threads
(one Store each, as serve's worker threads have). Inbox: the sample reports in tests/data/inbox parsed
by ``read_report``, then ``read_inbox`` end to end against a local pymap IMAP server (STARTTLS).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import itertools
import logging
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from compose import machine  # noqa: E402  (bench/compose.py)
from support.imapd import PASSWORD, USER, imap_server  # noqa: E402
from support.webhooks import MailgunSigner  # noqa: E402

from broadsheet.core.config import Config, Inbox, Serve  # noqa: E402
from broadsheet.data.journal.journal import Journal, Outcome  # noqa: E402
from broadsheet.data.store import Store  # noqa: E402
from broadsheet.delivery.webhooks.checks import ReplayGuard, WebhookContext  # noqa: E402
from broadsheet.faces.serve.app import make_app  # noqa: E402
from broadsheet.faces.serve.server import create  # noqa: E402
from broadsheet.usecases.events.inbox import read_inbox, read_report  # noqa: E402
from broadsheet.usecases.events.webhooks import handle  # noqa: E402

SHAPES = [
    ({"event": "delivered"}, 14),
    ({"event": "failed", "severity": "temporary"}, 3),
    ({"event": "failed", "severity": "permanent"}, 2),
    ({"event": "complained"}, 1),
]


def project(root: Path, people: int, history: int = 0) -> None:
    with Journal.for_project(root) as journal:
        if history:  # an earlier campaign: the journal a list that has sent for a while has
            past, _ = journal.start_campaign("bench-earlier", "mailgun", "issues/earlier", "")
            journal.load_recipients(past, "fp", [(f"h{n}@example.net", n, "{}") for n in range(history)])
            rows = journal.claim(past, history, time.time())
            journal.record([Outcome(r.id, "sent", message_id=f"<earlier.{r.email}@mg.example.org>") for r in rows])
        campaign, _ = journal.start_campaign("bench-issue", "mailgun", "issues/bench", "")
        journal.load_recipients(campaign, "fp", [(f"p{n}@example.com", n, "{}") for n in range(people)])
        rows = journal.claim(campaign, people, time.time())
        journal.record([Outcome(r.id, "sent", message_id=f"<bench.{r.email}@mg.example.org>") for r in rows])
    with Store.for_project(root) as store:
        for n in range(people):
            store.add(f"p{n}@example.com")


def requests_for(signer: MailgunSigner, count: int, people: int, offset: int) -> list[bytes]:
    shapes = list(itertools.chain.from_iterable([shape] * weight for shape, weight in SHAPES))
    now = time.time()
    bodies = []
    for n in range(offset, offset + count):
        email = f"p{n % people}@example.com"
        data = {
            **shapes[n % len(shapes)],
            "id": f"ev-{n}",
            "recipient": email,
            "timestamp": now,
            "message": {"headers": {"message-id": f"bench.{email}@mg.example.org"}},
            "delivery-status": {"code": 550, "message": "bench"},
        }
        bodies.append(signer.body(data, timestamp=now))
    return bodies


def run_handle(root: Path, config: Config, context: WebhookContext, bodies: list[bytes], answers: list) -> None:
    with Store.for_project(root) as store:
        for body in bodies:
            answers.append(handle("mailgun", {}, body, store, config=config, context=context)[0])


@contextlib.contextmanager
def bench_project(events: int, history: int = 0):
    """(root, people, signer): a project with a store and a journal of ``events // 5`` people (at least 1,000),
    and ``history`` rows of an earlier campaign in the journal."""
    with tempfile.TemporaryDirectory() as folder:
        root, people = Path(folder), max(1000, events // 5)
        project(root, people, history)
        yield root, people, MailgunSigner()


def bench_webhooks(events: int, threads: int, history: int) -> None:
    with bench_project(events, history) as (root, people, signer):
        context = WebhookContext(env={"BROADSHEET_MAILGUN_WEBHOOK_KEY": signer.key}, replays=ReplayGuard())
        config = Config(root=root)
        for label, workers, offset in (("1 thread", 1, 0), (f"{threads} threads", threads, events)):
            bodies = requests_for(signer, events, people, offset)
            answers: list[int] = []
            parts = [bodies[i::workers] for i in range(workers)]
            started = time.perf_counter()
            pool = [threading.Thread(target=run_handle, args=(root, config, context, part, answers)) for part in parts]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
            seconds = time.perf_counter() - started
            assert answers.count(200) == events, set(answers)
            print(
                f"webhooks, {label}: {events:,} Mailgun events verified and recorded in {seconds:.2f} s "
                f"= {events / seconds:,.0f}/s"
            )
        with Store.for_project(root) as store:
            print(f"  store: {store.count('bounced'):,} bounced, {store.count('complained'):,} complained")


def bench_http(events: int, clients: int, history: int) -> None:
    """The same requests over HTTP to serve's app under waitress (in this process, 127.0.0.1)."""
    with bench_project(events, history) as (root, people, signer):
        os.environ.update(
            BROADSHEET_MAILGUN_WEBHOOK_KEY=signer.key, BROADSHEET_SECRET="bench-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = dataclasses.replace(Config(root=root), serve=Serve(public_url=f"http://127.0.0.1:{port}", threads=4))
        server = create(make_app(config), config, host="127.0.0.1", port=port)
        threading.Thread(target=server.run, daemon=True).start()
        bodies = requests_for(signer, events, people, 0)
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        pool = [context.Process(target=_client, args=(port, bodies[i::clients], results)) for i in range(clients)]
        started, cpu = time.perf_counter(), time.process_time()  # this process is the server (clients fork)
        for process in pool:
            process.start()
        answers = [code for _ in pool for code in results.get()]
        for process in pool:
            process.join()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        server.close()
        assert answers.count(200) == events, set(answers)
        print(
            f"webhooks over HTTP (serve's app under waitress, 4 threads; {clients} keep-alive client processes): "
            f"{events:,} in {seconds:.2f} s = {events / seconds:,.0f}/s; server CPU {cpu / events * 1e6:,.0f} µs"
            f" an event = {events / cpu:,.0f}/s a core"
        )


def _client(port: int, bodies: list[bytes], results) -> None:
    """One keep-alive connection (http.client: the load generator should cost less than the server)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    codes = []
    for body in bodies:
        connection.request("POST", "/webhooks/mailgun", body=body, headers=headers)
        answer = connection.getresponse()
        answer.read()
        codes.append(answer.status)
    connection.close()
    results.put(codes)


RECEIVER = "mx.news.example.org"  # the receiving server's authserv-id, as tests/test_events_inbox.py
TRUST = {"feedback_senders": ["abuse@example-isp.com"], "authserv_id": RECEIVER}  # arf.eml's feedback loop


def as_received(raw: bytes) -> bytes:
    """A sample as the receiving server stores it: its Authentication-Results on top (the From's domain passed
    DKIM, SPF and DMARC), without which reports that could be forged are refused."""
    domain = raw.split(b"\r\nFrom:", 1)[-1].split(b"\r\n", 1)[0].rpartition(b"@")[2].strip(b"> ").decode()
    results = f"dkim=pass header.d={domain}; spf=pass smtp.mailfrom=bounce@{domain}; dmarc=pass"
    return f"Authentication-Results: {RECEIVER};\r\n\t{results}\r\n".encode() + raw


def bench_inbox(messages: int) -> None:
    samples = [
        as_received(p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        for p in sorted((ROOT / "tests" / "data" / "inbox").glob("*.eml"))
    ]
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < 2.0:
        for raw in samples:
            read_report(raw, unsubscribe_address="mailto:unsubscribe@news.example.org", **TRUST)
        count += len(samples)
    print(
        f"inbox, parse only: {count / (time.perf_counter() - started):,.0f} reports/s (read_report, the {len(samples)} samples)"
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with imap_server(root) as server:
            batch = [
                samples[n % len(samples)].replace(b"Message-I", f"X-Bench: {n}\r\nMessage-I".encode(), 1)
                for n in range(messages)
            ]
            server.append(*batch)
            os.environ["BROADSHEET_INBOX_PASSWORD"] = PASSWORD
            config = Config(
                root=root,
                unsubscribe_mailto="mailto:unsubscribe@news.example.org",
                inbox=Inbox(
                    host=server.host,
                    port=server.port,
                    security="starttls",
                    username=USER,
                    ca_file=server.ca_file,
                    **TRUST,
                ),
            )
            with Store.for_project(root) as store:
                started = time.perf_counter()
                result = read_inbox(config, store)
                seconds = time.perf_counter() - started
        print(
            f"inbox, end to end over IMAP (pymap): {result.read:,} messages in {seconds:.2f} s = "
            f"{result.read / seconds:,.0f}/s ({result.processed:,} moved, {result.unrecognised:,} left)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--history", type=int, default=100_000, help="journal rows of an earlier campaign")
    args = parser.parse_args()
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}; journal: {args.history:,} earlier rows")
    bench_webhooks(args.events, args.threads, args.history)
    bench_http(args.events, args.threads * 2, args.history)
    bench_inbox(args.messages)


if __name__ == "__main__":
    main()
