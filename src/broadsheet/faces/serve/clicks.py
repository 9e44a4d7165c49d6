"""serve's click counting: which clicks link scanners made, and a buffer written in batches by a thread.

A click is a link scanner's when
  - it is a HEAD request, or its User-Agent is empty or names a known scanner or tool (``SCANNER_AGENTS``), or
  - one client address opened ``BURST_LINKS`` or more different links of one campaign within
    ``BURST_SECONDS`` (a person reads before the next link; a mail gateway fetches them all at once):
    every click of that burst is a scanner's.
Clicks wait ``HOLD_SECONDS`` in memory before they are written, so that a burst is seen whole; a crash
loses at most those (a click changes nothing a reader depends on). No request waits for SQLite.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from broadsheet.core.errors import StoreError
from broadsheet.core.tokens import ClickLink
from broadsheet.data.store import Store, utc_now
from broadsheet.data.store.clicks import Click, record_clicks

log = logging.getLogger("broadsheet.faces.serve")
BURST_LINKS = 3
BURST_SECONDS = 2.0
HOLD_SECONDS = BURST_SECONDS + 0.5  # a click is written once every click of its burst has arrived
FLUSH_SECONDS = 0.5
MAX_WAITING = 200_000  # clicks held at most (a flood past this is dropped, and logged, rather than eat memory)
SCANNER_AGENTS = (
    "barracuda", "proofpoint", "mimecast", "safelinks", "symantec", "forcepoint", "trendmicro", "fireeye",
    "urldefense", "cisco", "sophos", "bitdefender", "kaspersky", "paloalto", "zscaler",
    "bot", "spider", "crawler", "preview", "python-requests", "python-urllib", "curl/", "wget",
    "go-http-client", "java/", "okhttp", "headless",
)  # fmt: skip


def known_scanner(user_agent: str, method: str) -> bool:
    """A HEAD request, or a User-Agent that is empty or names a scanner or a tool."""
    agent = user_agent.lower()
    return method == "HEAD" or not agent.strip() or any(name in agent for name in SCANNER_AGENTS)


@dataclass
class Seen:
    """A click waiting to be written: when (monotonic), from where, and whether a scanner made it."""

    when: float
    client: str
    click: Click
    scanner: bool
    written: bool = False


def mark_bursts(seen: Sequence[Seen]) -> None:
    """Mark as scanner clicks every click of a burst: ``BURST_LINKS`` different links of one campaign from
    one client within ``BURST_SECONDS`` (``seen`` in time order)."""
    groups: dict[tuple[str, str], list[Seen]] = defaultdict(list)
    for item in seen:
        groups[(item.click.campaign, item.client)].append(item)
    for group in groups.values():
        if len({item.click.link for item in group}) < BURST_LINKS:
            continue
        links: Counter[int] = Counter()
        left = marked = 0
        for right, item in enumerate(group):
            links[item.click.link] += 1
            while item.when - group[left].when > BURST_SECONDS:
                old = group[left].click.link
                links[old] -= 1
                if not links[old]:
                    del links[old]
                left += 1
            if len(links) >= BURST_LINKS:
                for earlier in group[max(left, marked) : right + 1]:
                    earlier.scanner = True
                marked = right + 1


@dataclass
class ClickRecorder:
    """Takes clicks from request threads (a list append under a lock) and writes them from its own thread."""

    store: Callable[[], Store]
    clock: Callable[[], float] = time.monotonic
    incoming: list[Seen] = field(default_factory=list)
    held: deque[Seen] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    dropped: int = 0

    def record(self, link: ClickLink, client: str, user_agent: str, method: str) -> None:
        click = Click(link.campaign, link.link, link.url, utc_now(), email=link.email)
        seen = Seen(self.clock(), client, click, known_scanner(user_agent, method))
        with self.lock:
            if len(self.incoming) < MAX_WAITING:
                self.incoming.append(seen)
            else:
                self.dropped += 1

    def start(self) -> None:
        """The writing thread (serve's start)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self.run, name="broadsheet-clicks", daemon=True)
            self.thread.start()

    def run(self) -> None:
        while not self.stopping.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self, *, everything: bool = False) -> int:
        """Write the clicks old enough (``everything``: all of them); how many were written."""
        with self.lock:
            self.held.extend(self.incoming)
            self.incoming, dropped, self.dropped = [], self.dropped, 0
        if dropped:
            log.warning("%d click(s) not counted: too many waited to be written", dropped)
        now = self.clock()
        while self.held and self.held[0].written and now - self.held[0].when > 2 * HOLD_SECONDS:
            self.held.popleft()  # kept a while after writing: a later burst looks back at them
        mark_bursts(self.held)
        due = [s for s in self.held if not s.written and (everything or now - s.when >= HOLD_SECONDS)]
        if not due:
            return 0
        clicks = [replace(s.click, scanner=s.scanner) for s in due]
        try:
            record_clicks(self.store(), clicks)
        except StoreError as exc:
            log.error("%d click(s) not counted yet: %s", len(clicks), exc)  # tried again at the next flush
            return 0
        for item in due:
            item.written = True
        return len(clicks)

    def close(self) -> None:
        """Stop the thread and write every click still held."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
        self.flush(everything=True)
