"""One of several ``send --worker`` processes on a campaign: leases, hand-overs and the shared budget.

Each worker registers in the journal, leases a batch ahead of its connections and hands a part to the
transport at a time (marked ``sending`` first), renewing its lease a few times per lease period. The rate
limit, ``daily_limit`` and the warm-up hold for the campaign as a whole: ``SharedBudget`` reads and writes
them in the lease's own transaction, so N workers together never go past them.
"""

from __future__ import annotations

import collections
import os
import socket
import time

from broadsheet.core.config import Config
from broadsheet.data.journal.journal import CampaignRecord, Journal, Row

from .caps import daily_cap
from .ratelimit import TokenBucket

RENEWALS = 3  # times a worker renews its lease per lease period
AHEAD = 32  # rows a worker leases ahead at least (more with more connections or larger batches)


class SharedBudget:
    """How many rows may be leased now, asked inside the lease's transaction: today's cap less what went
    out today and what every worker holds, and the campaign's token buckets (``rate_per_second``,
    ``rate_per_hour``) kept in the journal."""

    def __init__(self, journal: Journal, campaign: CampaignRecord, config: Config, transport: str):
        self.journal = journal
        self.campaign = campaign
        self.config = config
        self.transport = transport
        send = config.send
        self.buckets = [
            ("second", send.rate_per_second, send.rate_per_second),
            ("hour", send.rate_per_hour / 3600.0, send.rate_per_hour / 60.0),  # an hour's limit, spread evenly
        ]
        self.capped = False  # today's cap is used up: this worker is done for today
        self.now = 0.0

    @property
    def paced(self) -> bool:
        return any(rate > 0 for _name, rate, _capacity in self.buckets)

    def __call__(self, size: int) -> int:
        now = self.now
        capped = bool(self.config.send.daily_limit or self.config.send.warmup)
        if self.paced or capped:
            self.journal.budget_lock()  # the budget is read and written by one worker's lease at a time
        # what is held before what went out: PostgreSQL reads each at its own moment, and an outcome recorded
        # between the two then counts twice (one lease fewer now), never not at all (one message too many)
        held = self.journal.in_flight(now) if capped else 0
        cap = daily_cap(self.config, self.journal, self.transport, now)
        if cap is not None:
            left = cap.left - held
            if left <= 0:
                self.capped = True
                return 0
            size = min(size, left)
        kept = []
        for name, rate, capacity in self.buckets:
            if rate <= 0:
                continue
            bucket = TokenBucket(rate, capacity, clock=lambda: now)
            stored = self.journal.bucket(self.campaign, name)
            if stored is not None:
                bucket.tokens, bucket.stamp = stored
            if bucket.wait_time(size) > 0:
                return 0  # asked again at the next claim; the tokens grow meanwhile
            kept.append((name, bucket))
        for name, bucket in kept:
            bucket.take(size)
            self.journal.put_bucket(self.campaign, name, bucket.tokens, bucket.stamp)
        return size


class SharedClaims:
    """This process as one worker of the campaign (``runner.Claims``)."""

    shared = True

    def __init__(self, journal: Journal, campaign: CampaignRecord, budget: SharedBudget, *, lease: float, ahead: int):
        self.journal = journal
        self.campaign = campaign
        self.budget = budget
        self.lease = lease
        self.ahead = 0 if budget.paced else max(ahead, AHEAD)  # a paced campaign leases no more than it sends now
        self.leased: collections.deque[Row] = collections.deque()
        self.worker = 0
        self.renewed = 0.0

    def start(self, now: float) -> None:
        self.worker = self.journal.register_worker(self.campaign, socket.gethostname(), os.getpid(), now)
        self.renewed = now

    def claim(self, size: int, now: float) -> list[Row]:
        """A batch handed over to the transport: leased in the same transaction when too few are held."""
        if len(self.leased) < size and not self.budget.capped:
            self.budget.now = now
            handed, rest = self.journal.lease(
                self.campaign, self.worker, carried=list(self.leased), hand=size,
                size=size + self.ahead - len(self.leased), now=now, until=now + self.lease, allow=self.budget,
            )  # fmt: skip
            self.leased = collections.deque(rest)
            return handed
        batch = [self.leased.popleft() for _ in range(min(size, len(self.leased)))]
        return self.journal.hand_over(self.worker, batch, now)

    def tick(self, now: float) -> bool:
        if now - self.renewed < self.lease / RENEWALS:
            return False
        self.journal.renew(self.worker, now, now + self.lease)
        self.renewed = now
        return True

    def finished(self, counts: dict[str, int]) -> bool:
        if self.budget.capped:
            return True
        return not self.leased and self.journal.open_rows(self.campaign, self.worker) == 0

    def close(self) -> None:
        self.leased.clear()
        if self.worker:
            self.journal.release(self.worker, time.time())
