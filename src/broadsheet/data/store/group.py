"""Group commit: one writer thread records the writes of many callers in one transaction.

A caller ``submit``s a job (a function of the writer's Store, e.g. ``lambda store: store.suppress(...)``) and
waits. The writer takes every job queued meanwhile (up to ``MAX_GROUP``), runs each in a savepoint of one
``BEGIN IMMEDIATE`` transaction, commits once, and only then hands each caller its job's result: when
``submit`` returns, that job's writes are durable. A job that raises is undone alone and its caller gets
its exception; when the transaction itself fails (BEGIN, COMMIT, or SQLite rolling it back), nothing of the
group is kept and every caller of the group gets a StoreError. Many callers waiting on one commit, instead
of each on its own behind one write lock, is what lets a server answer bursts of one-click unsubscribes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Generic, TypeVar

from broadsheet.core.errors import StoreError

from .store import Store

MAX_GROUP = 256  # jobs per transaction at most: one group never holds the store's write lock for long
T = TypeVar("T")
A = TypeVar("A")
Then = Callable[[Any, "BaseException | None"], None]  # a posted job's (result, error), once committed
Batch = Callable[[Store, list[Any]], list[Any]]  # many jobs' items -> their results, in order
log = logging.getLogger("broadsheet.data.store")


_POSTED = threading.Lock()


class _PartFailed(Exception):
    """The only part of a group raised: the group is rolled back, and its callers have their exception."""


class _Job(Generic[T]):
    """One submitted job: its work (or its batch and item), and its outcome once the group is committed
    (``done`` released, or ``then`` called with it in the writer thread)."""

    __slots__ = ("batch", "done", "error", "item", "result", "then", "work")

    def __init__(
        self,
        work: Callable[[Store], T] | None,
        batch: Batch | None = None,
        item: object = None,
        then: Then | None = None,
    ) -> None:
        self.work, self.batch, self.item, self.then = work, batch, item, then
        self.done = threading.Lock() if then is None else _POSTED  # a posted job's caller never waits
        if then is None:
            self.done.acquire()
        self.result: T | None = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        """Hand the caller its outcome (once)."""
        if self.then is None:
            self.done.release()
            return
        try:
            self.then(self.result, self.error)
        except Exception:  # one caller's failure to take its answer stops no other
            log.exception("a recorded change's caller failed")


class GroupWriter:
    """The writer thread of one store file, with its own Store (``opened`` is called with it first, in the
    writer thread). ``submit`` from any thread; ``close`` records what is queued, then stops the thread."""

    def __init__(
        self, location: Path | str, *, opened: Callable[[Store], None] | None = None, max_group: int = MAX_GROUP
    ) -> None:
        self.location = location  # the store's file, or its PostgreSQL URL (``Store``)
        self.opened = opened
        self.max_group = max_group
        self._queue: SimpleQueue[_Job[object] | None] = SimpleQueue()
        self._closing = False
        self._lock = threading.Lock()  # submit against close: nothing is queued after the writer's last look
        self._thread: threading.Thread | None = None
        self._store: Store | None = None

    def start(self) -> None:
        """Start the writer thread (once; ``submit`` starts it too)."""
        with self._lock:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, name="broadsheet-store-writer", daemon=True)
                self._thread.start()

    def submit(self, work: Callable[[Store], T]) -> T:
        """Run ``work`` with the writer's Store inside the next group's transaction and return its result once
        that transaction is committed; its exception when it raised (its writes undone), StoreError when the
        group's transaction failed or the writer has stopped (nothing recorded either way)."""
        return self._wait(_Job(work))

    def gather(self, batch: Callable[[Store, list[A]], list[T]], item: A) -> T:
        """``submit`` for a job of a kind the writer records many at once: the group's items of one ``batch``
        go to one call of it (in one savepoint: when it raises, every one of them gets its exception),
        which returns their results in order. Fewer statements for the same writes (e.g.
        ``Store.suppress_all``)."""
        return self._wait(_Job(None, batch, item))

    def post(
        self,
        batch: Callable[[Store, list[A]], list[T]],
        item: A,
        then: Callable[[T | None, BaseException | None], None],
    ) -> None:
        """``gather`` without waiting: ``then(result, None)`` once the job is committed, or ``then(None,
        error)`` as ``gather`` would raise it, called in the writer thread (no thread waits per job: an event
        loop answers from it). StoreError here when the writer is stopping (``then`` is not called)."""
        self._put(_Job(None, batch, item, then))

    def _put(self, job: _Job[T]) -> None:
        if self._thread is None:
            self.start()
        with self._lock:
            if self._closing:
                raise StoreError("the change was not recorded: the server is stopping", fix="try again")
            self._queue.put(job)  # type: ignore[arg-type]  # a job of any result type

    def _wait(self, job: _Job[T]) -> T:
        self._put(job)
        job.done.acquire()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]  # set by the writer when error is None

    def close(self) -> None:
        """Refuse new jobs, record every job queued before (committed), then stop the thread and its Store."""
        with self._lock:
            self._closing = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join()
        self._record([job for job in self._take_rest() if job is not None])  # jobs of a writer never started

    def _run(self) -> None:
        try:
            while True:
                first = self._queue.get()
                group = [first]
                while len(group) < self.max_group:
                    try:
                        group.append(self._queue.get_nowait())
                    except Empty:
                        break
                jobs = [job for job in group if job is not None]
                self._record(jobs)
                if len(jobs) < len(group):  # close's mark: the last job came before it
                    self._record([job for job in self._take_rest() if job is not None])
                    return
        finally:
            with self._lock:  # a writer that stops for any reason leaves no caller waiting
                self._closing = True
            for job in self._take_rest():
                if job is not None:
                    job.result, job.error = None, StoreError("the change was not recorded: the writer stopped")
                    job.finish()
            if self._store is not None:
                self._store.close()
                self._store = None

    def _take_rest(self) -> list[_Job[object] | None]:
        rest = []
        while True:
            try:
                rest.append(self._queue.get_nowait())
            except Empty:
                return rest

    def _record(self, jobs: list[_Job[object]]) -> None:
        """Run ``jobs`` in one transaction and commit it; then let every caller go (each, always, once)."""
        if not jobs:
            return
        batches: dict[Batch, list[_Job[object]]] = {}
        for job in jobs:
            if job.batch is not None:
                batches.setdefault(job.batch, []).append(job)
        parts = [[job] for job in jobs if job.batch is None] + list(batches.values())
        try:
            store = self._open()
            with store.grouped():
                for part in parts:
                    self._run_part(store, part, alone=len(parts) == 1)
        except _PartFailed:  # the group's only part: its callers have its exception, nothing was kept
            pass
        except BaseException as exc:  # the transaction failed: nothing of the group is kept
            log.error("%d change(s) not recorded in the subscriber store: %s", len(jobs), exc)
            for job in jobs:
                job.result, job.error = None, StoreError(f"not recorded in the subscriber store: {exc}")
            if not isinstance(exc, Exception):
                raise
        finally:
            for job in jobs:
                job.finish()

    @staticmethod
    def _run_part(store: Store, jobs: list[_Job[object]], *, alone: bool) -> None:
        """One job, or the jobs of one batch, in a savepoint (none when it is ``alone`` in its group: then
        the group's transaction undoes it); its exception to each of them when it raises."""
        batch, work = jobs[0].batch, jobs[0].work
        try:
            with nullcontext() if alone else store.savepoint():
                results = batch(store, [job.item for job in jobs]) if batch is not None else [work(store)]  # type: ignore[misc]
        except Exception as exc:
            for job in jobs:
                job.error = exc
            if alone:
                raise _PartFailed from exc
            if not store.db.in_transaction:  # SQLite undid the whole group: it failed
                raise
            return
        for job, result in zip(jobs, results, strict=True):
            job.result = result

    def _open(self) -> Store:
        if self._store is None:
            store = Store(self.location)
            store.only_writes_wait()
            if self.opened is not None:
                self.opened(store)
            self._store = store
        return self._store
