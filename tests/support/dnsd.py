"""A real DNS server for the tests: dnslib's, on 127.0.0.1 over UDP and TCP, answering from a zone the test
holds (and may change while it runs). Names under ``servfail.test`` are answered SERVFAIL.

``Zone.add("good.test", "TXT", "v=spf1 …")`` adds a record (a TXT over 255 bytes is cut into strings as a
real zone would hold it); ``zone.publish(record)`` adds one written as doctor prints it
(``name. TXT "…" "…"`` or ``name. MX 10 host.``).
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from support.ports import on_free_port

TTL = 60


class Zone(BaseResolver):
    """Records by (name, type); NXDOMAIN for a name without any, an empty NOERROR for another type."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[object]] = {}
        self.questions: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, name: str, kind: str, value: str) -> Zone:
        name = name.rstrip(".").lower()
        if kind == "TXT":
            data = value.encode()
            rdata: object = TXT([data[i : i + 255] for i in range(0, len(data), 255)] or [b""])
        elif kind == "MX":
            preference, host = value.split()
            rdata = MX(host.rstrip(".") + ".", int(preference))
        else:
            rdata = {"A": A, "AAAA": AAAA}[kind](value)
        with self.lock:
            self.records.setdefault((name, kind), []).append(rdata)
        return self

    def publish(self, record: str) -> None:
        """A record as `broadsheet doctor` prints it to publish."""
        name, kind, rest = record.split(None, 2)
        if kind == "TXT":
            self.add(name, "TXT", "".join(shlex.split(rest)))
        else:
            self.add(name, kind, rest)

    def remove(self, name: str, kind: str) -> None:
        with self.lock:
            self.records.pop((name.rstrip(".").lower(), kind), None)

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        with self.lock:
            self.questions.append((name, kind))
            if name == "servfail.test" or name.endswith(".servfail.test"):
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            found = self.records.get((name, kind), [])
            exists = any(key[0] == name for key in self.records)
        for rdata in found:
            reply.add_answer(RR(DNSLabel(name), QTYPE.reverse[kind], rdata=rdata, ttl=TTL))
        if not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _Quiet(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """The zone served on 127.0.0.1 over UDP and TCP (one port); yields ``"127.0.0.1:port"``."""

    def start(port: int) -> list[DNSServer]:
        servers: list[DNSServer] = []
        try:
            for tcp in (False, True):
                servers.append(DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp, logger=_Quiet()))
        except OSError:
            for server in servers:
                server.server.server_close()
            raise
        return servers

    servers = on_free_port(start)
    for server in servers:
        server.start_thread()
    try:
        yield f"127.0.0.1:{servers[0].server.server_address[1]}"
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


def record_name(record: str) -> str:
    return re.split(r"\s+", record, maxsplit=1)[0].rstrip(".")
