"""Progress of a running campaign: a live rich line on a terminal, a plain line now and then otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console


def describe(counts: dict[str, int], rate: float) -> str:
    """``sent 1,200 / 5,000 · failed 3 · deferred 10 · 41.2/s · ETA 1m32s``."""
    total = sum(counts.values())
    left = counts.get("queued", 0) + counts.get("deferred", 0) + counts.get("sending", 0)
    parts = [
        f"sent {counts.get('sent', 0):,} / {total:,}",
        f"failed {counts.get('failed', 0):,}",
        f"deferred {counts.get('deferred', 0):,}",
    ]
    if counts.get("unknown"):
        parts.append(f"unknown {counts['unknown']:,}")
    parts.append(f"{rate:,.1f}/s")
    if rate > 0 and left:
        parts.append(f"ETA {_duration(left / rate)}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class PlainProgress:
    """One line every ``every`` seconds, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0):
        self.stream = stream or sys.stdout
        self.every = every
        self.last = time.monotonic()

    def __call__(self, counts: dict[str, int], rate: float) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            print(describe(counts, rate), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class LiveProgress:
    """A rich live line, refreshed a few times a second (rich is loaded only for a terminal)."""

    def __init__(self, console: Console | None = None):
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self.text = Text
        self.live = Live(Text("starting…"), console=console or Console(), refresh_per_second=4, transient=False)
        self.live.start()

    def __call__(self, counts: dict[str, int], rate: float) -> None:
        self.live.update(self.text(describe(counts, rate)))

    def close(self) -> None:
        self.live.stop()


def progress_for(stream: TextIO | None = None) -> PlainProgress | LiveProgress:
    stream = stream or sys.stdout
    return LiveProgress() if stream.isatty() else PlainProgress(stream)
