"""The sequence steps ``send --due`` sends: each (sequence, step) is one campaign in the journal, keyed
``seq:<sequence>:<step>``, whose recipients are the subscribers due for it now (``StepList``).

The journal's UNIQUE (campaign, email) sends a step to each subscriber at most once; its claims make a
stopped run resume; the send lock, held by ``send --due``, keeps two runs apart. A run first enters the
welcome sequence's new confirmations (and, with ``--backfill``, everyone subscribed), then stops the
members who unsubscribed, bounced or complained. A step is built only when someone is due for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from broadsheet.core.config import Config
from broadsheet.core.content.model import Step
from broadsheet.core.content.sequence import read_sequence, sequence_folder, sequence_names
from broadsheet.core.errors import BroadsheetError
from broadsheet.core.providers import delivers
from broadsheet.core.render import read_and_build
from broadsheet.data.store import Store, store_is_set_up
from broadsheet.data.store.recipients import suppression_file
from broadsheet.data.store.sequences import PostgresStepList, StepList, Window, enter_all, enter_confirmed, stop_left

from ..campaign import Journal, Prepared, issue_key, prepare_campaign
from ..campaign.caps import daily_cap
from ..report import Reporter
from ..send import JournaledSend, SendOptions, SendResult, check_lint, send_prepared, transport_factory
from ..signing_secret import token_secret


@dataclass
class StepsResult:
    """What the due steps' sends came to, and how many sequences or steps could not be read or sent."""

    sent: list[SendResult] = field(default_factory=list)
    errors: int = 0


def has_sequences(config: Config) -> bool:
    """The project has a sequence and a subscriber store (without members, no step is ever due)."""
    return bool(sequence_names(config)) and store_is_set_up(config)


def send_due_steps(
    options: SendOptions, config: Config, journal: Journal, reporter: Reporter, now: float, *, backfill: bool = False
) -> StepsResult:
    """Send every step that is due at ``now``, sequence by sequence; call under the send lock."""
    result = StepsResult()
    if not store_is_set_up(config):
        return result
    for name in sequence_names(config):
        try:
            steps = read_sequence(sequence_folder(name, config), config)
            _members(config, name, now, backfill=backfill, reporter=reporter)
        except BroadsheetError as exc:  # this sequence cannot go; the others still may
            reporter.problem(exc)
            result.errors += 1
            continue
        # the last step first: a step sent in this run never makes the next one due in the same run
        for index in reversed(range(len(steps))):
            step = steps[index]
            try:
                sent = send_step(options, config, journal, step, steps[index - 1] if index else None, now, reporter)
            except BroadsheetError as exc:  # nobody gets this step now, so nobody is due for the next one
                reporter.problem(exc)
                result.errors += 1
                continue
            if sent is not None:
                result.sent.append(sent)
                if sent.interrupted:
                    return result
    return result


def _members(config: Config, name: str, now: float, *, backfill: bool, reporter: Reporter) -> None:
    """Enter the welcome sequence's new confirmations (everyone subscribed with ``backfill``); stop those
    who left."""
    with Store.for_config(config) as store:
        if name == config.sequences.welcome:
            enter_confirmed(store, name, now)
            if backfill and (count := enter_all(store, name, now)):
                reporter.info(f"send --due: {count:,} subscriber(s) entered the sequence {name} (--backfill)")
        stop_left(store, name, now)


def send_step(
    options: SendOptions, config: Config, journal: Journal, step: Step, previous: Step | None, now: float,
    reporter: Reporter,
) -> SendResult | None:  # fmt: skip
    """Load whoever is due for ``step`` at ``now`` into its campaign and send it; None when nobody is."""
    transport = options.transport or config.send.transport
    earlier = journal.campaign(previous.key, transport) if previous is not None else None
    due = _step_list(config, step, first=previous is None, previous=earlier.id if earlier else -1, now=now)
    journal.keep_room()
    prepared = _prepare(journal, config, step, transport, due)
    counts = journal.counts(prepared.record)
    waiting = counts["queued"] + counts["deferred"]
    if waiting == 0:
        return None
    cap = daily_cap(config, journal, transport, now)
    if cap is not None and cap.left == 0:
        return None  # said by the run that reached it; they stay queued for the next day
    reporter.info(f"send --due: sequence {step.sequence}, step {step.name}: {waiting:,} due")
    issue, rendered = read_and_build(step.path, config)
    check_lint(rendered, issue, config, reporter, force=options.force)
    from broadsheet.core.compose import Composer

    secret = token_secret(config, throwaway=not delivers(transport), warn=reporter.warn)
    composer = Composer(rendered, config, token_secret=secret, campaign=rendered.slug)
    factory = transport_factory(transport, config, slug=rendered.slug)
    step_options = dataclasses.replace(options, issue_dir=step.path, due=False, yes=True, backfill=False)
    send = JournaledSend(
        step_options, step.path, config, rendered, step.key, transport, due, factory, composer, reporter
    )
    return send_prepared(journal, prepared, send)


def _step_list(config: Config, step: Step, *, first: bool, previous: int, now: float) -> StepList | PostgresStepList:
    """Who is due for ``step`` at ``now``, from the configured store (SQLite or PostgreSQL)."""
    window = Window(step.sequence, first, previous, now - step.after.total_seconds())
    if config.database.url:
        return PostgresStepList(config.database.url, window=window, suppressions=suppression_file(config))
    return StepList(config.root, window=window, suppressions=suppression_file(config))


def _prepare(
    journal: Journal, config: Config, step: Step, transport: str, due: StepList | PostgresStepList
) -> Prepared:
    """The step's campaign with this run's due subscribers loaded (those it already reached keep their rows)."""
    start_checkpoints = journal.checkpoints_aside()
    prepared = prepare_campaign(
        journal, slug=step.slug, transport=transport, issue_dir=issue_key(step.path, config.root),
        fingerprint=due.fingerprint(), subscribers=due, issue_id=step.key, subject=step.subject,
    )  # fmt: skip
    start_checkpoints()
    journal.skip_sent_elsewhere(prepared.record)
    journal.hold_unknown_elsewhere(prepared.record)
    return prepared
