"""The campaign runner: worker threads, each with its own transport, fed batches from the journal.

The main thread is the only one that touches the journal: it claims a batch (marked ``sending`` and
committed) for each idle worker, all idle workers' batches in one claim, and records what comes back,
the batches that finished meanwhile in one transaction (group commit), before their workers get more. Workers compose their batch, wait for the
shared rate limiter and send it. A fatal transport error (login refused, sender refused, untrusted
certificate, a used-up quota, a setting the transport finds wrong) stops the campaign: in-flight
batches are finished and recorded, the rest stays queued (docs/architecture/usecases.md: what stops a campaign).
Where batches come from is a ``Claims``: this process alone (``SoleClaims``), or one of several workers
sharing the campaign (``workers.SharedClaims``, ``send --worker``).
"""

from __future__ import annotations

import collections
import contextlib
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose.headers import RecipientRejected
from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config
from broadsheet.core.errors import BroadsheetError, CampaignError, TransientTransportError, TransportError
from broadsheet.data.journal.journal import CampaignRecord, Journal, Outcome, Row
from broadsheet.delivery.transports.base import Delivery, Transport

from .ratelimit import RateLimiter
from .recipients import subscriber_from_row

MAX_BACKOFF = 3600.0
POLL = 0.2
SKIPPED = "unsubscribed, bounced, complained or forgotten in the subscriber store since the campaign started"
REFUSED_IN_A_ROW = 25  # this many failed recipients in a row, none sent: the server refuses everyone


@dataclass
class Settings:
    """How a campaign runs (from ``[send]`` and the command line)."""

    connections: int = 4
    batch_size: int = 0  # 0: the transport's max_batch
    retries: int = 5
    retry_delay: float = 5.0  # seconds before the first retry of a deferred recipient, doubling after
    rate_per_second: float = 0.0
    rate_per_hour: float = 0.0
    limit: int | None = None  # at most this many recipients in this run

    @classmethod
    def from_config(cls, config: Config, *, limit: int | None = None) -> Settings:
        """The campaign settings of ``[send]``, with this run's ``limit``."""
        send = config.send
        return cls(
            connections=send.connections,
            batch_size=send.batch_size,
            retries=send.retries,
            retry_delay=send.retry_delay,
            rate_per_second=send.rate_per_second,
            rate_per_hour=send.rate_per_hour,
            limit=limit,
        )


@dataclass
class RunResult:
    """What one run did, and why it ended."""

    counts: dict[str, int]  # the whole campaign's rows by state, at the end
    this_run: collections.Counter[str] = field(default_factory=collections.Counter)
    interrupted: bool = False
    error: BroadsheetError | None = None
    seconds: float = 0.0


@dataclass
class _Batch:
    worker: int
    rows: list[Row]
    deliveries: list[Delivery | None]  # None: not sent (stopped first, or after a fatal error)
    error: BaseException | None = None
    rejected: frozenset[int] = frozenset()  # positions compose refused: the transport never saw them


class Claims(Protocol):
    """Where the runner's batches come from: this process alone (``SoleClaims``) or one worker of several
    sharing the campaign (``workers.SharedClaims``)."""

    shared: bool  # other workers share the campaign: the rate limit is kept in the journal, counts move

    def claim(self, size: int, now: float) -> list[Row]: ...

    def tick(self, now: float) -> bool: ...  # called often; True when the counts should be read again

    def finished(self, counts: dict[str, int]) -> bool: ...  # nothing more is due for this process

    def close(self) -> None: ...


class SoleClaims:
    """The only send of the project (the send lock is held): rows are claimed straight into ``sending``."""

    shared = False

    def __init__(self, journal: Journal, campaign: CampaignRecord):
        self.journal = journal
        self.campaign = campaign

    def claim(self, size: int, now: float) -> list[Row]:
        return self.journal.claim(self.campaign, size, now)

    def tick(self, now: float) -> bool:
        return False

    def finished(self, counts: dict[str, int]) -> bool:
        return counts.get("queued", 0) == 0 and counts.get("deferred", 0) == 0

    def close(self) -> None:
        pass


class Composes(Protocol):
    """What the runner composes with: ``compose.Composer`` (or a stand-in in tests)."""

    def compose(self, subscriber: Subscriber, *, row: int | None = None) -> Message: ...


class ComposesMany(Protocol):
    """Composes many at once, in order, a refused recipient as its reason: ``compose_pool.ComposePool``."""

    @property
    def ready(self) -> bool: ...

    def compose(self, items: Sequence[tuple[Subscriber, int | None]]) -> list[Message | str]: ...


Progress = Callable[[dict[str, int], float], None]
# (address, hard_bounce or soft_bounce, detail) of recipients the receiving side refused for good
Bounced = Callable[[list[tuple[str, str, str]]], None]


class CampaignRunner:
    """Sends every due recipient of one campaign; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        campaign: CampaignRecord,
        transport_factory: Callable[[], Transport],
        composer: Composes,
        settings: Settings,
        *,
        max_batch: int = 1,
        progress: Progress | None = None,
        rejected: tuple[type[BaseException], ...] = (RecipientRejected,),
        suppressed: Callable[[list[str]], set[str]] | None = None,
        bounced: Bounced | None = None,
        claims: Claims | None = None,
        pool: ComposesMany | None = None,
    ):
        self.journal = journal
        self.campaign = campaign
        self.transport_factory = transport_factory
        self.composer = composer
        self.pool = pool  # compose workers in other processes; None: each send worker composes its batch
        self.settings = settings
        self.progress = progress or (lambda counts, rate: None)
        self.rejected = rejected  # exceptions of compose that fail one recipient
        self.suppressed = suppressed  # which of these addresses the subscriber store suppresses now
        self.bounced = bounced  # told of each recipient refused at send time once its row is failed
        self.claims = claims or SoleClaims(journal, campaign)
        self.limiter = RateLimiter(settings.rate_per_second, settings.rate_per_hour)
        wanted = settings.batch_size or max_batch
        self.batch_size = max(1, min(wanted, max_batch, self.limiter.burst() or max_batch))
        if self.claims.shared:
            self.limiter = RateLimiter()  # the campaign's shared budget paces the claims
        self.workers = max(1, settings.connections)
        self.refused_in_a_row = 0
        self.stop = threading.Event()
        self.events: queue.SimpleQueue[int | _Batch | tuple[int, BroadsheetError]] = queue.SimpleQueue()
        self.inboxes: list[queue.SimpleQueue[list[Row] | None]] = []
        self.counts: dict[str, int] = {}
        self.rate = _RateMeter()

    # -- the main thread ------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = time.monotonic()
        self.counts = self.journal.counts(self.campaign)
        result = RunResult(counts=self.counts)
        restore = self._catch_ctrl_c()
        workers = [self._start_worker(index) for index in range(self.workers)]
        try:
            self._dispatch(result, len(workers))
        except KeyboardInterrupt:
            restore()
            raise  # a second Ctrl-C: quit now; rows in flight stay 'sending' and become 'unknown'
        for inbox in self.inboxes:
            inbox.put(None)
        for worker in workers:
            worker.join(timeout=30)
        restore()
        try:
            self.claims.close()
        except CampaignError as exc:
            result.error = result.error or exc
        if self.claims.shared:  # other workers moved rows too
            self.counts.update(self.journal.counts(self.campaign))
        result.interrupted = self.stop.is_set() and result.error is None
        result.seconds = time.monotonic() - started
        self.progress(self.counts, self.rate.per_second())
        return result

    def _dispatch(self, result: RunResult, alive: int) -> None:
        idle: collections.deque[int] = collections.deque()
        in_flight = claimed = transient_in_a_row = 0
        limit = self.settings.limit
        while True:
            stopping = self.stop.is_set() or result.error is not None
            while not stopping and idle and (limit is None or claimed < limit):
                room = len(idle) * self.batch_size  # every idle worker's batch in one claim
                rows = self._claim(room if limit is None else min(room, limit - claimed), result)
                if not rows:
                    break
                self._moved([row.state for row in rows], "sending")
                rows = self._skip_suppressed(rows, result)
                claimed += len(rows)  # skipped rows use none of the limit (nor of a daily cap)
                for start in range(0, len(rows), self.batch_size):
                    in_flight += 1
                    self.inboxes[idle.popleft()].put(rows[start : start + self.batch_size])
                if result.error is not None:
                    break
            if in_flight == 0 and (stopping or alive == 0 or self._finished(claimed)):
                return
            self._tick(result)
            try:
                event = self.events.get(timeout=POLL)
            except queue.Empty:
                self.progress(self.counts, self.rate.per_second())
                continue
            finished: list[_Batch] = []
            while True:  # and every event that came meanwhile: their batches are recorded together
                if isinstance(event, int):  # a worker is ready
                    idle.append(event)
                elif isinstance(event, _Batch):
                    finished.append(event)
                else:  # a worker could not start: (worker, error)
                    alive -= 1
                    result.error = result.error or event[1]
                try:
                    event = self.events.get_nowait()
                except queue.Empty:
                    break
            if finished:
                in_flight -= len(finished)
                transient_in_a_row = self._settle(finished, result, transient_in_a_row)
                idle.extend(batch.worker for batch in finished)
            self.progress(self.counts, self.rate.per_second())

    def _claim(self, size: int, result: RunResult) -> list[Row]:
        """Claim a batch; a journal that cannot be used any more stops the campaign (in-flight ones finish)."""
        try:
            return self.claims.claim(size, time.time())
        except CampaignError as exc:
            result.error = result.error or exc
            return []

    def _tick(self, result: RunResult) -> None:
        """Let the claims renew what they hold; read the counts again when they ask."""
        try:
            if self.claims.tick(time.time()):
                self.counts.update(self.journal.counts(self.campaign))
        except CampaignError as exc:
            result.error = result.error or exc

    def _record(self, outcomes: list[Outcome], result: RunResult) -> None:
        """Record outcomes; when the journal cannot take them (the journal saved them aside), stop the campaign."""
        try:
            self.journal.record(outcomes)
        except CampaignError as exc:
            result.error = result.error or exc

    def _skip_suppressed(self, rows: list[Row], result: RunResult) -> list[Row]:
        """Claimed rows whose address unsubscribed, bounced, complained or was forgotten since the campaign
        started end ``skipped`` with the reason, never sent. When the store cannot be asked, the batch goes
        back to the queue and the campaign stops: nobody is mailed unchecked."""
        if self.suppressed is None:
            return rows
        try:
            gone = self.suppressed([row.email for row in rows])
        except BroadsheetError as exc:
            self._record([Outcome(row.id, "queued", counts_attempt=False) for row in rows], result)
            self._moved(["sending"] * len(rows), "queued")
            result.error = result.error or exc
            return []
        skipped = [row for row in rows if row.email in gone]
        if skipped:
            self._record([Outcome(row.id, "skipped", SKIPPED, counts_attempt=False) for row in skipped], result)
            self._moved(["sending"] * len(skipped), "skipped")
            result.this_run["skipped"] += len(skipped)
        return [row for row in rows if row.email not in gone]

    def _finished(self, claimed: int) -> bool:
        """Nothing left for this run: the limit is reached, or nothing is queued or deferred."""
        if self.settings.limit is not None and claimed >= self.settings.limit:
            return True
        return self.claims.finished(self.counts)

    def _settle(self, batches: list[_Batch], result: RunResult, transient_in_a_row: int) -> int:
        """Record finished batches in one transaction, in the order they came; returns the count of
        whole-batch transient failures in a row."""
        now = time.time()
        settled: list[tuple[_Batch, list[Outcome]]] = []
        errors: list[BroadsheetError] = []
        for batch in batches:
            settled.append((batch, self._outcomes(batch, now, transient_in_a_row)))
            transient_in_a_row, error = self._after(batch.error, transient_in_a_row)
            errors += [error] if error is not None else []
        self._record([outcome for _batch, outcomes in settled for outcome in outcomes], result)
        for error in errors:
            result.error = result.error or error
        refused = [
            (row.email, delivery.bounce, outcome.detail)
            for batch, outcomes in settled
            for row, delivery, outcome in zip(batch.rows, batch.deliveries, outcomes, strict=False)
            if delivery is not None and delivery.bounce and outcome.state == "failed"
        ]
        if refused and self.bounced is not None:
            self.bounced(refused)
        sent = 0
        for batch, outcomes in settled:
            for outcome in outcomes:
                self._moved(("sending",), outcome.state)
                if outcome.counts_attempt:
                    result.this_run[outcome.state] += 1
                sent += outcome.state == "sent"
            self._watch_refusals([o for i, o in enumerate(outcomes) if i not in batch.rejected], result)
        self.rate.add(sent)
        return transient_in_a_row

    def _outcomes(self, batch: _Batch, now: float, transient_in_a_row: int) -> list[Outcome]:
        """What happened to each row of a finished batch."""
        error = batch.error
        outcomes = []
        for row, delivery in zip(batch.rows, batch.deliveries, strict=False):
            if delivery is not None:
                outcomes.append(self._outcome(row, delivery, now))
            elif isinstance(error, TransientTransportError):
                wait = error.retry_after or self._backoff(transient_in_a_row // self.workers + 1)
                outcomes.append(Outcome(row.id, "deferred", str(error), next_attempt=now + wait, counts_attempt=False))
            elif error is not None and not isinstance(error, BroadsheetError):
                outcomes.append(Outcome(row.id, "unknown", f"unexpected error: {error!r}"))
            else:  # stopped before sending, or a fatal transport error: back in the queue
                outcomes.append(Outcome(row.id, "queued", counts_attempt=False))
        return outcomes

    def _after(self, error: BaseException | None, transient_in_a_row: int) -> tuple[int, BroadsheetError | None]:
        """A batch's error: the new count of whole-batch transient failures in a row, and what stops the
        campaign (None: nothing)."""
        if isinstance(error, TransientTransportError):
            transient_in_a_row += 1
            if transient_in_a_row >= (self.settings.retries + 1) * self.workers:
                stop = CampaignError(
                    f"the transport keeps failing: {error}", fix="run the same command again to resume"
                )
                return transient_in_a_row, stop
            return transient_in_a_row, None
        return 0, None if error is None else _as_broadsheet_error(error)

    def _watch_refusals(self, outcomes: list[Outcome], result: RunResult) -> None:
        """Stop when the server fails recipient after recipient: the rest is kept queued, not failed too."""
        for outcome in outcomes:
            if outcome.state == "sent":
                self.refused_in_a_row = 0
            elif outcome.state == "failed":
                self.refused_in_a_row += 1
                if self.refused_in_a_row == REFUSED_IN_A_ROW and result.error is None:
                    result.error = CampaignError(
                        f"{REFUSED_IN_A_ROW} recipients in a row were refused, the last with: {outcome.detail}",
                        fix="check the transport's settings, then resend to them with --retry-failed",
                    )

    def _outcome(self, row: Row, delivery: Delivery, now: float) -> Outcome:
        if delivery.status != "deferred":
            return Outcome(row.id, delivery.status, delivery.detail, delivery.message_id)
        attempts = row.attempts + 1
        if attempts > self.settings.retries:
            return Outcome(row.id, "failed", f"{delivery.detail} (gave up after {attempts} attempts)")
        wait = delivery.retry_after if delivery.retry_after is not None else self._backoff(attempts)
        return Outcome(row.id, "deferred", delivery.detail, next_attempt=now + wait)

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with jitter: about retry_delay × 2^(attempts-1), ±50%."""
        base = min(self.settings.retry_delay * 2 ** (attempts - 1), MAX_BACKOFF)
        return float(base * random.uniform(0.5, 1.5))

    def _moved(self, old_states: Sequence[str], new_state: str) -> None:
        for state in old_states:
            self.counts[state] = self.counts.get(state, 0) - 1
            self.counts[new_state] = self.counts.get(new_state, 0) + 1

    def _catch_ctrl_c(self) -> Callable[[], None]:
        """First Ctrl-C: stop taking new work. Second: quit at once (in-flight rows become unknown)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def on_interrupt(signum: int, frame: FrameType | None) -> None:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.stop.set()
            print("\nstopping: finishing the messages in flight (Ctrl-C again to quit at once)", file=sys.stderr)

        previous = signal.signal(signal.SIGINT, on_interrupt)

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore

    # -- the workers ----------------------------------------------------------------------------

    def _start_worker(self, index: int) -> threading.Thread:
        inbox: queue.SimpleQueue[list[Row] | None] = queue.SimpleQueue()
        self.inboxes.append(inbox)
        thread = threading.Thread(target=self._work, args=(index, inbox), name=f"broadsheet-send-{index}", daemon=True)
        thread.start()
        return thread

    def _work(self, index: int, inbox: queue.SimpleQueue[list[Row] | None]) -> None:
        try:
            transport = self.transport_factory()
            transport.open()
        except TransientTransportError:
            pass  # transports connect again lazily; the first batch will tell
        except BaseException as exc:
            self.events.put((index, _as_broadsheet_error(exc)))
            return
        try:
            self.events.put(index)
            while (rows := inbox.get()) is not None:
                try:
                    batch = self._send(index, transport, rows)
                except Exception as exc:
                    # raised before send_batch (send_batch's own errors are caught in _send): nothing went out
                    batch = _Batch(index, rows, [None] * len(rows), _as_broadsheet_error(exc))
                self.events.put(batch)
        finally:
            with contextlib.suppress(Exception):  # closing a broken connection may fail; the batch is settled
                transport.close()

    def _send(self, index: int, transport: Transport, rows: list[Row]) -> _Batch:
        deliveries: list[Delivery | None] = [None] * len(rows)
        messages: list[Message] = []
        positions: list[int] = []
        for position, (row, composed) in enumerate(zip(rows, self._compose(rows), strict=True)):
            if isinstance(composed, str):
                deliveries[position] = Delivery(row.email, "failed", detail=composed)
            else:
                messages.append(composed)
                positions.append(position)
        rejected = frozenset(set(range(len(rows))) - set(positions))
        if not messages or not self.limiter.acquire(len(messages), self.stop):
            return _Batch(index, rows, deliveries, rejected=rejected)
        try:
            sent = transport.send_batch(messages)
            error = None
        except Exception as exc:
            sent, error = (list(exc.deliveries) if isinstance(exc, TransportError) else []), exc
        for position, delivery in zip(positions, sent, strict=False):
            deliveries[position] = delivery
        return _Batch(index, rows, deliveries, error, rejected)

    def _compose(self, rows: list[Row]) -> list[Message | str]:
        """Each row's message, in order; a recipient compose refuses is the reason instead."""
        items = [(subscriber_from_row(row), row.id) for row in rows]  # row: the VERP reference
        if self.pool is not None and self.pool.ready:  # while the workers start, compose here
            return self.pool.compose(items)
        composed: list[Message | str] = []
        for subscriber, row in items:
            try:
                composed.append(self.composer.compose(subscriber, row=row))
            except self.rejected as exc:
                composed.append(getattr(exc, "reason", str(exc)))
        return composed


def _as_broadsheet_error(exc: BaseException) -> BroadsheetError:
    if isinstance(exc, BroadsheetError):
        return exc
    return CampaignError(f"unexpected error while sending: {exc!r}")


class _RateMeter:
    """Messages per second over the last half minute."""

    def __init__(self, window: float = 30.0):
        self.window = window
        self.marks: collections.deque[tuple[float, int]] = collections.deque([(time.monotonic(), 0)])
        self.total = 0

    def add(self, count: int) -> None:
        self.total += count
        now = time.monotonic()
        self.marks.append((now, self.total))
        while len(self.marks) > 2 and now - self.marks[0][0] > self.window:
            self.marks.popleft()

    def per_second(self) -> float:
        first, last = self.marks[0], self.marks[-1]
        elapsed = time.monotonic() - first[0]
        return (last[1] - first[1]) / elapsed if elapsed > 0 else 0.0


__all__ = ["CampaignRunner", "RunResult", "Settings", "TransportError"]
