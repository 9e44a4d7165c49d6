"""Compose on every core: worker processes (core.compose.workers) that each make the issue's Composer once
and then compose chunks of recipients, the messages coming back in order.

The send keeps its journal, its claims and its transports in this process, as without workers: only the
composing moves out. Workers start from a fork server (a clean process, not a copy of this one with its
threads), ignore Ctrl-C (this process decides what a stop means) and end when this one closes their
connections or ends.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import islice
from multiprocessing import heap
from multiprocessing.connection import Connection
from typing import Any, cast

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose.composer import ComposeSpec
from broadsheet.core.compose.message import Message
from broadsheet.core.compose.workers import Composed, Kind, read_answer, serve
from broadsheet.core.errors import CampaignError

LANES = 2  # requests in flight per worker: one composed while the answer to the other is read
BUFFER = 8 * 1024 * 1024  # shared memory per lane (touched only as far as answers reach): not copied through a pipe
CHUNK = 32  # recipients per request when composing whole messages
MEASURE_CHUNK = 256  # recipients per request of a dry run (the answers are sizes)
MIN_RECIPIENTS = 10_000  # fewer: composed here before the workers would be of use
MIN_BATCH = 16  # a transport that takes fewer messages a call (SMTP: 1) is bound by its round trips


def worker_count(setting: int, *, recipients: int, batch: int) -> int:
    """How many compose workers a send gets ([send] compose_workers; 0: none, its threads compose): the
    setting when set (1: none); when it leaves the choice (0), one per usable CPU when there are two or
    more, ``recipients`` are enough and the transport's ``batch`` big enough for the workers to pay."""
    if setting:
        return setting if setting > 1 else 0
    cpus = usable_cpus()
    if cpus < 2 or recipients < MIN_RECIPIENTS or batch < MIN_BATCH:
        return 0
    return cpus


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


Item = tuple[Subscriber, int | None]  # a subscriber and their journal row (None: a dry run's, not journaled)


@dataclass
class _Job:
    kind: Kind
    items: list[Item]
    future: Future[list[Composed]] = field(default_factory=Future)


class ComposePool:
    """``workers`` processes composing for one issue (``spec``); thread-safe, used as a context manager.

    ``wire``: the transport sends only the raw message and its envelope, so html and text stay in the
    workers (less to copy back)."""

    def __init__(self, spec: ComposeSpec, workers: int, *, wire: bool = False):
        self.kind: Kind = "wire" if wire else "compose"
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.broken: BaseException | None = None
        self.processes: list[Any] = []
        self.threads: list[threading.Thread] = []
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        context: Any = multiprocessing.get_context(method)
        if method == "forkserver":  # each worker forks from a server that imported compose once
            context.set_forkserver_preload(["broadsheet.core.compose.workers"])
        env = {key: value for key, value in os.environ.items() if key.startswith("BROADSHEET_")}
        try:
            for index in range(workers):
                lanes = [(*context.Pipe(), heap.BufferWrapper(BUFFER)) for _ in range(LANES)]
                process = context.Process(
                    target=serve, args=(spec, env, os.getcwd(), [(child, buffer) for _, child, buffer in lanes]),
                    name=f"broadsheet-compose-{index}", daemon=True,
                )  # fmt: skip
                process.start()
                self.processes.append(process)
                for mine, child, buffer in lanes:
                    child.close()
                    self._start_lane(mine, buffer.create_memoryview())
        except BaseException:
            self.close()
            raise
        self.warm = self.submit(self.kind, [])  # answered once a worker has made its Composer

    def started(self) -> ComposePool:
        """This pool once a worker is up, for a caller that asked for workers: they compose from the first
        message on. A worker that cannot make the Composer raises its error here."""
        try:
            self.warm.result()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def ready(self) -> bool:
        """A worker is up: until then the caller composes in its own process (the same bytes either way)."""
        return self.warm.done()

    def _start_lane(self, conn: Connection, buffer: memoryview) -> None:
        thread = threading.Thread(target=self._lane, args=(conn, buffer), name="broadsheet-compose-lane", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _lane(self, conn: Connection, buffer: memoryview) -> None:
        """Hand this lane's worker one job at a time, until the pool closes or the worker is gone."""
        try:
            while (job := self.jobs.get()) is not None:
                if self.broken is not None:
                    job.future.set_exception(self.broken)
                    continue
                try:
                    conn.send((job.kind, job.items))
                    answer = conn.recv_bytes()
                except (EOFError, OSError) as exc:
                    self.broken = CampaignError(f"a compose worker stopped: {exc or type(exc).__name__}")
                    job.future.set_exception(self.broken)
                    continue
                try:
                    job.future.set_result(read_answer(answer, buffer))
                except BaseException as exc:  # the worker's error, raised where the messages were wanted
                    job.future.set_exception(exc)
        finally:
            buffer.release()
            conn.close()

    def submit(self, kind: Kind, items: list[Item]) -> Future[list[Composed]]:
        if self.broken is not None:
            raise self.broken
        job = _Job(kind, items)
        self.jobs.put(job)
        return job.future

    def compose(self, items: Sequence[Item]) -> list[Message | str]:
        """Each (subscriber, journal row)'s message in order, a recipient compose refuses as its reason;
        the chunks of one call are composed by all the workers at once."""
        futures = [self.submit(self.kind, list(items[i : i + CHUNK])) for i in range(0, len(items), CHUNK)]
        results: list[Message | str] = []
        for future in futures:
            results.extend(cast(list[Message | str], future.result()))
        return results

    def measure(
        self, subscribers: Iterable[Subscriber], here: Callable[[list[Item]], list[Composed]] | None = None
    ) -> Iterator[tuple[Subscriber, int | str]]:
        """Each subscriber with its message's size in bytes or the reason compose refuses it, in order, as
        the subscribers stream by (a few chunks ahead). ``here`` composes a chunk in this process: used
        whenever every lane is busy, so that this process composes too instead of waiting."""
        pending: collections.deque[tuple[list[Subscriber], Future[list[Composed]]]] = collections.deque()
        lanes = LANES * len(self.processes)
        queued = 2 * lanes  # chunks given to the workers and not answered: one in each lane, one waiting for each
        ahead = queued if here is None else 4 * lanes  # chunks read before the oldest is waited for
        stream = iter(subscribers)
        while chunk := list(islice(stream, MEASURE_CHUNK)):
            items: list[Item] = [(s, None) for s in chunk]
            if here is not None and sum(not future.done() for _, future in pending) >= queued:
                future: Future[list[Composed]] = Future()
                future.set_result(here(items))
            else:
                future = self.submit("measure", items)
            pending.append((chunk, future))
            while pending and (pending[0][1].done() or len(pending) > ahead):
                yield from self._measured(*pending.popleft())
        while pending:
            yield from self._measured(*pending.popleft())

    @staticmethod
    def _measured(chunk: list[Subscriber], future: Future[list[Composed]]) -> Iterator[tuple[Subscriber, int | str]]:
        for subscriber, result in zip(chunk, future.result(), strict=True):
            assert not isinstance(result, Message)
            yield subscriber, result

    def close(self) -> None:
        """Stop the lanes and the workers: chunks not yet handed to a worker fail, the ones being composed
        are finished."""
        self.broken = self.broken or CampaignError("the compose workers were stopped")
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout=10)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)

    def __enter__(self) -> ComposePool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
