"""What a sequence does, without sending: the timeline one subscriber would get (``simulate``) and how many
members are at each step and what went out (``status``)."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

from broadsheet.core.config import Config
from broadsheet.core.content.model import Step
from broadsheet.core.content.sequence import read_sequence, sequence_folder
from broadsheet.core.errors import AudienceError
from broadsheet.data.journal.engines import journal_exists, open_journal_for
from broadsheet.data.store import Store
from broadsheet.data.store.schema import TIME_FORMAT
from broadsheet.data.store.sequences import Membership, entered_at, membership


@dataclass(frozen=True)
class TimelineEntry:
    """One step as a subscriber gets it: when (seconds since the epoch) and whether it already went."""

    step: Step
    at: float
    sent: bool = False


@dataclass(frozen=True)
class Timeline:
    """The steps within the simulated days (``entries``), from ``start``; ``later`` steps fall after them."""

    start: float
    entries: tuple[TimelineEntry, ...]
    later: int
    member: bool  # the --as address is a member (its timeline starts when it entered)


def simulate(
    config: Config, name: str, *, days: int = 30, as_email: str | None = None, now: float | None = None
) -> Timeline:
    """The steps a subscriber entering ``name`` now (or ``as_email``, from when they entered, with the steps
    already sent to them) would get within ``days`` days; ``send --due`` sends each at its time or on the
    first run after it."""
    now = time.time() if now is None else now
    steps = read_sequence(sequence_folder(name, config), config)
    start, member = now, False
    if as_email is not None:
        start, member = _entry(config, name, as_email, now)
    entries: list[TimelineEntry] = []
    at = start
    for step in steps:
        at += step.after.total_seconds()
        sent = _sent_at(config, step, as_email) if member and as_email else None
        if sent is not None:
            at = sent
        if at > start + days * 86400:
            break
        entries.append(TimelineEntry(step, at, sent is not None))
    return Timeline(start, tuple(entries), len(steps) - len(entries), member)


def _entry(config: Config, name: str, email: str, now: float) -> tuple[float, bool]:
    """When ``email`` entered the sequence (and True), or now (and False) for a subscriber who has not."""
    if not Store.exists_for_config(config):
        raise AudienceError("there is no subscriber store", fix="leave out --as, or add subscribers first")
    with Store.for_config(config) as store:
        if store.get(email) is None:
            raise AudienceError(f"{email} is not in the subscriber store", where=store.where)
        when = entered_at(store, name, email)
    if when is None:
        return now, False
    return float(calendar.timegm(time.strptime(when, TIME_FORMAT))), True


def _sent_at(config: Config, step: Step, email: str) -> float | None:
    if not journal_exists(config):
        return None
    with open_journal_for(config) as journal:
        campaign = journal.campaign(step.key, config.send.transport)
        return journal.sent_at(campaign, email) if campaign else None


@dataclass(frozen=True)
class StepStatus:
    """One step: its journal counts (by state) over the configured transport, and how many members it is
    the last step sent to (``at``)."""

    step: Step
    counts: dict[str, int]
    at: int


@dataclass(frozen=True)
class SequenceStatus:
    members: Membership
    waiting: int  # active members not yet sent the first step
    steps: tuple[StepStatus, ...]


def sequence_status(config: Config, name: str) -> SequenceStatus:
    """Members of ``name`` and, step by step, what went out and how many are at that step."""
    steps = read_sequence(sequence_folder(name, config), config)
    members = Membership(0, 0)
    if Store.exists_for_config(config):
        with Store.for_config(config) as store:
            members = membership(store, name)
    counts: list[dict[str, int]] = [{} for _ in steps]
    if journal_exists(config):
        with open_journal_for(config) as journal:
            for index, step in enumerate(steps):
                campaign = journal.campaign(step.key, config.send.transport)
                counts[index] = {state: n for state, n in journal.counts(campaign).items() if n} if campaign else {}
    sent = [count.get("sent", 0) for count in counts]
    rows = tuple(
        StepStatus(step, counts[index], sent[index] - (sent[index + 1] if index + 1 < len(steps) else 0))
        for index, step in enumerate(steps)
    )
    return SequenceStatus(members, max(0, members.active - (sent[0] if sent else 0)), rows)
