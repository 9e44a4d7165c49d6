"""Send one issue to the subscriber list, journaled and resumable; or one test copy; or a dry run.

``send_issue(options, reporter)``: the options are what ``broadsheet send`` was given, the reporter
hears every line the command shows and answers the confirmation. Errors are BroadsheetErrors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

from broadsheet.core.config import Config
from broadsheet.core.content.frontmatter import front_matter_value
from broadsheet.core.errors import CampaignError
from broadsheet.core.providers import delivers
from broadsheet.core.render import read_and_build
from broadsheet.core.tokens import token_secrets
from broadsheet.data.journal.engines import open_journal_for
from broadsheet.data.journal.journal import RECENT_DAYS, WAIT
from broadsheet.data.store.recipients import StoreSuppressions, find_subscriber, first_recipient, recipients_for
from broadsheet.data.store.store import store_location
from broadsheet.delivery.transports import Transport, TransportOptions, transport_class

from .campaign import Journal, Prepared, Settings, issue_key, prepare_campaign
from .campaign.caps import DailyCap, daily_cap, utc_text
from .campaign.runner import CampaignRunner, RunResult
from .campaign.workers import SharedBudget, SharedClaims
from .doctor.fast import alignment_key, fast_checks
from .events.rejections import SendRejections
from .events.report import store_health
from .report import Reporter
from .signing_secret import token_secret

if TYPE_CHECKING:
    from broadsheet.core.audience import RowProblem, Subscriber
    from broadsheet.core.compose import Composer
    from broadsheet.core.compose.clicks import ReaderLinks
    from broadsheet.core.compose.workers import Composed
    from broadsheet.core.content import Issue
    from broadsheet.core.render.model import RenderedIssue
    from broadsheet.data.store.recipients import SendList

    from .campaign.compose_pool import ComposePool


@dataclass(frozen=True)
class SendOptions:
    """Every choice ``broadsheet send`` takes; options that do not go together are refused when made."""

    issue_dir: Path | None = None  # None only with ``due``
    due: bool = False  # every issue whose send_at has come (usecases.due)
    list_file: Path | None = None  # default: send.list (or the store)
    segments: tuple[str, ...] = ()
    limit: int | None = None
    dry_run: bool = False
    yes: bool = False
    transport: str | None = None  # default: send.transport
    test: str | None = None  # one [TEST] copy to this address, not journaled
    as_email: str | None = None  # with ``test``: personalised as this subscriber
    retry_failed: bool = False
    retry_unknown: bool = False
    resend_all: bool = False
    force: bool = False
    config_file: str | None = None  # --config as given: named again in the line that says how to resume
    backfill: bool = False  # with ``due``: everyone subscribed enters the welcome sequence, not only newcomers
    journal_wait: float = WAIT  # seconds a journal statement waits for another program's write lock
    worker: bool = False  # one of several processes sharing the campaign (usecases/campaign/workers.py)

    def __post_init__(self) -> None:
        journaled = {  # what only a journaled send of one issue takes
            "--dry-run": self.dry_run,
            "--limit": self.limit is not None,
            "--retry-failed": self.retry_failed,
            "--retry-unknown": self.retry_unknown,
            "--resend-all": self.resend_all,
            "--worker": self.worker,
        }
        if self.due:
            _refuse_with(
                "--due", {"ISSUE_DIR": self.issue_dir is not None, "--test": bool(self.test), **journaled},
                why=" (which sends every issue that is due)",
            )  # fmt: skip
            return
        if self.backfill:
            raise CampaignError("--backfill only goes with --due", fix="add --due")
        if self.issue_dir is None:
            raise CampaignError(
                "no issue to send", fix="give the issue folder (broadsheet send issues/<name>), or --due"
            )
        if self.as_email and not self.test:
            raise CampaignError("--as only goes with --test", fix="add --test ADDRESS")
        if self.test:  # a test copy is one message, never journaled: these would be silently ignored
            _refuse_with("--test", journaled)
        if self.limit is not None and self.limit < 1:
            raise CampaignError("--limit must be 1 or more")


@dataclass(frozen=True)
class SendResult:
    """What a send came to: the campaign's counts after it (empty for a test copy or a dry run), the
    messages of a test copy or dry run that failed or would fail, and whether a stop signal ended it."""

    counts: Mapping[str, int] = field(default_factory=dict)
    failed: int = 0
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        """Nobody failed or unknown, nothing stopped early."""
        return not (self.failed or self.interrupted or self.counts.get("failed") or self.counts.get("unknown"))


def _count_links(
    rendered: RenderedIssue, config: Config, secret: str | None
) -> tuple[RenderedIssue, ReaderLinks | None]:
    """The campaign's issue with its links pointed at serve, and its per-reader links when
    ``[tracking] per_subscriber`` (BROADSHEET_SECRET signs them when no other secret is given)."""
    from broadsheet.core.compose.clicks import ReaderLinks, count_links

    secret = secret or token_secrets()[0]
    tracked = count_links(rendered, config, secret=secret, campaign=rendered.slug)
    if not config.tracking.per_subscriber:
        return tracked.issue, None
    return tracked.issue, ReaderLinks(tracked.urls, rendered.slug, config.list_id, secret)


def _refuse_with(flag: str, given: dict[str, bool], *, why: str = "") -> None:
    """A one-line error for the first option in ``given`` that is on: it does not go with ``flag``."""
    first = next((name for name, on in given.items() if on), None)
    if first is not None:
        raise CampaignError(f"{first} does not go with {flag}{why}", fix=f"leave out {first} or {flag}")


def send_issue(options: SendOptions, config: Config, reporter: Reporter, journal: Journal | None = None) -> SendResult:
    """Send (or test, or dry-run) the issue ``options.issue_dir``; ``journal``: one already open under the
    send lock (``send --due``), else the journal is opened here, locked."""
    if options.due or options.issue_dir is None:
        raise ValueError("send_issue sends one issue: send_due sends those that are due")
    transport_name = options.transport or config.send.transport
    transport_class(transport_name)  # an unknown name fails before the issue is built
    issue, rendered = read_and_build(options.issue_dir, config)
    if issue.file is not None and not (options.test or options.dry_run):
        raise CampaignError(
            "a sequence step is sent by send --due, to each subscriber when it falls due",
            where=str(options.issue_dir), fix="try it with --test ADDRESS; broadsheet send --due sends it",
        )  # fmt: skip
    check_lint(rendered, issue, config, reporter, force=options.force, test=bool(options.test))
    _check_delivery(config, transport_name, reporter, force=options.force, real=not (options.test or options.dry_run))
    if not (options.test or options.dry_run):
        _check_send_at(issue, options, reporter)
    if options.test:  # needs no list: without one the copy is personalised as [preview] sample_subscriber
        factory = transport_factory(transport_name, config, slug=rendered.slug, test=True)
        return _send_test(options, config, rendered, factory, reporter)
    audience = recipients_for(  # the store (the configured list imported first), or a CSV: said on every send
        config, options.list_file, list(options.segments), import_list=not options.dry_run
    )
    subscribers = audience.recipients
    reporter.info(audience.rule)
    for problem in audience.problems:  # bad rows of the list imported into the store
        reporter.warn(_bad_row(config.send.list, problem))
    factory = transport_factory(transport_name, config, slug=rendered.slug)
    from broadsheet.core.compose import Composer

    # settings and secrets are checked before the journal is touched; the outbox mails no one
    secret = token_secret(config, throwaway=not delivers(transport_name), warn=reporter.warn)
    reader_links = None
    if config.tracking.clicks:  # links counted by serve: rewritten once for the campaign (test copies link directly)
        rendered, reader_links = _count_links(rendered, config, secret)
    composer = Composer(rendered, config, token_secret=secret, campaign=rendered.slug, reader_links=reader_links)
    factory()
    if options.dry_run:
        return _dry_run(subscribers, options, config, composer, reporter)
    send = JournaledSend(
        options, options.issue_dir, config, rendered, issue.id, transport_name, subscribers, factory, composer, reporter
    )
    if journal is not None:
        return _send_journaled(journal, send)
    with open_journal_for(config, lock=True, shared=options.worker, wait=options.journal_wait) as journal:
        return _send_journaled(journal, send)


@dataclass(frozen=True)
class JournaledSend:
    """One journaled send of one issue (or one sequence step): what the steps below share."""

    options: SendOptions
    issue_dir: Path
    config: Config
    rendered: RenderedIssue
    issue_id: str | None
    transport_name: str
    subscribers: SendList
    factory: Callable[[], Transport]
    composer: Composer
    reporter: Reporter


def _send_journaled(journal: Journal, send: JournaledSend) -> SendResult:
    journal.keep_room()  # outcomes are still recorded when the disk fills up during the send
    start_checkpoints = journal.checkpoints_aside()  # the load's commit and the claims never copy the WAL
    if send.options.worker:  # workers set the campaign up one after the other: the first loads the list
        with journal.preparing():
            prepared = _prepare(journal, send)
    else:
        prepared = _prepare(journal, send)
    start_checkpoints()  # after the load: a long list's part readers fork from a process of one thread
    _check_recent_sends(journal, prepared, send.options, send.reporter)
    return send_prepared(journal, prepared, send)


# -- steps --------------------------------------------------------------------------------------


def transport_factory(name: str, config: Config, *, slug: str, test: bool = False) -> Callable[[], Transport]:
    """A maker of new transport instances, each given the same options (the outbox files by slug and
    keeps test copies apart; the others need neither)."""
    cls = transport_class(name)
    options = TransportOptions(slug=slug, test=test)
    return lambda: cls(config, options)


def check_lint(
    rendered: RenderedIssue, issue: Issue, config: Config, reporter: Reporter, *, force: bool, test: bool = False
) -> None:
    """Refuse to send an issue with lint errors unless --force; a test copy to yourself goes (a draft is
    what it is for), with the errors shown."""
    from broadsheet.core.lint import lint_rendered

    errors = [f for f in lint_rendered(rendered, issue, config, validate_mjml=False) if f.severity == "error"]
    if not errors:
        return
    for finding in errors:
        reporter.warn(f"lint: {finding}")
    if force:
        reporter.warn(f"sending despite {len(errors)} lint error(s) (--force)")
        return
    if test:
        reporter.warn(f"a test copy despite {len(errors)} lint error(s); the real send refuses them")
        return
    raise CampaignError(f"lint found {len(errors)} error(s) in the issue", fix="fix them, or add --force")


def _check_delivery(config: Config, transport: str, reporter: Reporter, *, force: bool, real: bool) -> None:
    """doctor's checks that need no network, each one that fails said as a warning (lint shows the lesser
    ones); a real send over a transport that delivers is refused (unless --force) when its DKIM d= is not
    aligned with From: DMARC would fail."""
    if not delivers(transport):
        return
    checks = fast_checks(config, transport)
    for check in checks:
        if check.status == "fail":
            reporter.warn(f"doctor: {check.status}: {check.what}" + (f" ({check.fix})" if check.fix else ""))
    alignment = next(check for check in checks if check.name == "dkim-alignment")
    if alignment.status != "fail" or not real:
        return
    if force:
        reporter.warn("sending although DKIM is not aligned with From (--force)")
        return
    raise CampaignError(
        "DKIM is not aligned with From: Gmail, Yahoo and Outlook.com would turn the mail away",
        where=config.where(alignment_key(config, transport)), fix=(alignment.fix + ", or add --force").lstrip(", "),
    )  # fmt: skip


def _check_send_at(issue: Issue, options: SendOptions, reporter: Reporter) -> None:
    """Refuse (unless --force) to send by hand an issue scheduled for later: send --due sends it then."""
    if issue.send_at is None or issue.send_at.timestamp() <= time.time():
        return
    when = utc_text(issue.send_at.timestamp())
    if options.force:
        reporter.warn(f"sending now although send_at is {when} (--force)")
        return
    raise CampaignError(
        f"this issue is scheduled: send_at {when}",
        where=f"{options.issue_dir}/issue.md",
        fix="leave it to broadsheet send --due (from cron), or add --force to send it now",
    )


def _prepare(journal: Journal, send: JournaledSend) -> Prepared:
    say = send.reporter.info
    fingerprint = send.subscribers.fingerprint()
    issue_dir = issue_key(send.issue_dir, send.config.root)
    _check_id_is_this_issues(journal, send.issue_id, issue_dir, send.config.root)
    prepared = prepare_campaign(
        journal, slug=send.rendered.slug, transport=send.transport_name, issue_dir=issue_dir, fingerprint=fingerprint,
        subscribers=send.subscribers, issue_id=send.issue_id, subject=send.rendered.subject,
        resend_all=send.options.resend_all, shared=send.options.worker,
    )  # fmt: skip
    if prepared.replayed:
        say(f"recorded {prepared.replayed:,} outcome(s) an earlier send could not write to the journal")
    if prepared.loaded is None:
        say(f"{send.subscribers.path.name}: unchanged since this campaign started; resuming")
    else:
        report_list(send.subscribers, prepared.loaded, send.reporter)
        say(f"journal: {prepared.loaded:,} recipients set up in {prepared.setup_seconds:.1f} s")
    if prepared.recovered:
        say(
            f"{prepared.recovered:,} recipient(s) were in flight when an earlier send stopped: now 'unknown' "
            "(resend to them with --retry-unknown)"
        )
    for state, flag in (("failed", send.options.retry_failed), ("unknown", send.options.retry_unknown)):
        if flag:
            say(f"re-queued {journal.requeue(prepared.record, state):,} {state} recipient(s)")
    for other, count in journal.skip_sent_elsewhere(prepared.record).items():
        say(f"{count:,} recipient(s) already sent this issue over {other}: recorded as sent, not sent again")
    if not send.options.retry_unknown:  # unknown elsewhere may have arrived: as unknown here, sent only on request
        for other, count in journal.hold_unknown_elsewhere(prepared.record).items():
            say(
                f"{count:,} recipient(s) are unknown over {other} (they may have got it): recorded as unknown, "
                "not sent (resend to them with --retry-unknown)"
            )
    return prepared


def _check_id_is_this_issues(journal: Journal, issue_id: str | None, issue_dir: str, root: Path) -> None:
    """Refuse an id that another issue folder still carries (a folder copied as the next issue's start):
    both would be one campaign, and the new issue would reach nobody the old one reached."""
    if not issue_id:
        return
    for campaign in journal.campaigns_for(issue_id):
        other = root / campaign.issue_dir
        if campaign.issue_dir != issue_dir and front_matter_value(other / "issue.md", "id") == issue_id:
            raise CampaignError(
                f"another issue folder has the same id ({issue_id}): {campaign.issue_dir}, already sent "
                f"over {campaign.transport}", where=f"{issue_dir}/issue.md",
                fix="give this issue its own id (a copied folder keeps the old one); broadsheet new makes a fresh one",
            )  # fmt: skip


def _check_recent_sends(journal: Journal, prepared: Prepared, options: SendOptions, reporter: Reporter) -> None:
    """Refuse (unless --force) to mail people who got an issue with the same subject in the last days:
    most likely this issue again under a new folder name, or a copy whose subject was not changed."""
    recent = journal.recent_same_subject(prepared.record)
    if not recent:
        return
    for send in recent:
        other = send.campaign
        reporter.warn(
            f"{send.recipients:,} recipient(s) got “{other.subject}” from campaign {other.key} "
            f"({other.issue_dir or other.slug}, over {other.transport}) on {_when(send.last)}"
        )
    if options.force:
        reporter.warn("sending to them again (--force)")
        return
    first = recent[0].campaign
    total = sum(send.recipients for send in recent)
    raise CampaignError(
        f"{total:,} recipient(s) got an issue with this subject in the last {RECENT_DAYS} days "
        f"(campaign {first.key}, {first.issue_dir or first.slug})", where=str(options.issue_dir),
        fix=f'if this is that issue moved or renamed, put id: "{first.key}" in its issue.md to resume that campaign; '
        "to mail them again anyway, add --force",
    )  # fmt: skip


def report_list(subscribers: SendList, count: int, reporter: Reporter) -> None:
    """Every bad row (line and reason), then who was left out and why."""
    for problem in subscribers.problems:
        reporter.warn(_bad_row(subscribers.path, problem))
    left_out = ", ".join(f"{reason} {n:,}" for reason, n in sorted(subscribers.skipped.items()))
    bad = f", {len(subscribers.problems):,} bad row(s) skipped" if subscribers.problems else ""
    reporter.info(
        f"{subscribers.path.name}: {count:,} recipient(s){bad}" + (f"; left out: {left_out}" if left_out else "")
    )


def _bad_row(path: Path | str, problem: RowProblem) -> str:
    return f"{path}:{problem.line}: {problem.reason} ({problem.email or 'no address'}); skipped"


def _send_test(
    options: SendOptions,
    config: Config,
    rendered: RenderedIssue,
    factory: Callable[[], Transport],
    reporter: Reporter,
) -> SendResult:
    from broadsheet.core.compose import Composer

    assert options.test is not None
    model = _test_subscriber(config, options)
    fields = {**model.fields, "email": options.test}
    subscriber = dataclasses.replace(model, email=options.test, fields=fields)
    secret = token_secret(config, throwaway=True, warn=reporter.warn)
    message = Composer(rendered, config, test=True, token_secret=secret).compose(subscriber)
    with factory() as transport:  # a fresh key: an identical earlier test copy must not be replayed
        delivery = transport.send_batch([message], batch_key=f"test-{uuid.uuid4().hex}")[0]
    reporter.info(
        f"test copy to {options.test} (personalised as {model.email}): {delivery.status}"
        + (f" ({delivery.detail})" if delivery.detail else "")
    )
    return SendResult(failed=0 if delivery.status == "sent" else 1)


def _test_subscriber(config: Config, options: SendOptions) -> Subscriber:
    """``--as``'s subscriber (the store's, else the list's); else the first recipient of the send, or the
    sample subscriber when there is none yet."""
    from broadsheet.core.compose.fields import sample_subscriber

    if options.as_email:
        return find_subscriber(config, options.as_email, list_file=options.list_file)
    return first_recipient(config, options.list_file, options.segments) or sample_subscriber(config)


def _dry_run(
    subscribers: SendList, options: SendOptions, config: Config, composer: Composer, reporter: Reporter
) -> SendResult:
    """Compose each recipient's message from the list as it streams by; nothing is written anywhere
    (no journal, no campaign): what a send would find wrong, and how fast it composes."""
    started = time.perf_counter()
    composed = size = rejected = 0
    stream: Iterator[Subscriber] = iter(subscribers)
    if options.limit is not None:
        stream = islice(stream, options.limit)
    workers: list[int] = []
    for subscriber, measured in _measured(stream, config.send.compose_workers, composer, workers):
        if isinstance(measured, str):
            rejected += 1
            reporter.warn(f"would fail: {subscriber.email} (line {subscriber.line}): {measured}")
            continue
        composed += 1
        size += measured
    seconds = time.perf_counter() - started
    report_list(subscribers, composed + rejected, reporter)
    average = size / composed / 1024 if composed else 0
    on = f" on {workers[0]} processes" if workers else ""
    reporter.info(
        f"dry run: composed {composed:,} message(s){on} in {seconds:.1f} s "
        f"({composed / seconds if seconds else 0:,.0f}/s, {average:.1f} KB each), {rejected:,} would fail; "
        "nothing sent, nothing written (a real send skips those an earlier send of this issue reached)"
    )
    return SendResult(failed=rejected)


def _measured(
    stream: Iterator[Subscriber], setting: int, composer: Composer, used: list[int]
) -> Iterator[tuple[Subscriber, int | str]]:
    """Each subscriber with its message's size, or the reason compose refuses it. ``setting``: [send]
    compose_workers, the processes that compose: this one (reading the list, and composing whenever the
    workers are all busy) and workers beside it; left to choose (0), one per CPU, once MIN_RECIPIENTS are
    composed here and more follow (composed here until a worker is up). ``used``: how many composed."""
    from broadsheet.core.compose.workers import compose_chunk

    from .campaign.compose_pool import MIN_RECIPIENTS, ComposePool, usable_cpus

    def here(items: list[tuple[Subscriber, int | None]]) -> list[Composed]:
        return list(compose_chunk(composer, "measure", items))

    processes = setting or usable_cpus()
    workers = processes - 1
    if workers < 1:
        yield from _measured_here(stream, here)
        return
    if setting == 0:  # a short list is composed before workers would be of use
        yield from _measured_here(islice(stream, MIN_RECIPIENTS), here)
    first = next(stream, None)
    if first is None:
        return
    used.append(processes)
    stream = chain([first], stream)
    with ComposePool(composer.spec, workers) as pool:
        if setting > 1:
            pool.started()
        yield from _measured_here(_until(stream, lambda: pool.ready), here)
        yield from pool.measure(stream, here)


def _until(stream: Iterator[Subscriber], done: Callable[[], bool]) -> Iterator[Subscriber]:
    """The stream's items until ``done()`` (asked after each), the rest left in it."""
    if done():
        return
    for item in stream:
        yield item
        if done():
            return


def _measured_here(
    stream: Iterable[Subscriber], here: Callable[[list[tuple[Subscriber, int | None]]], list[Composed]]
) -> Iterator[tuple[Subscriber, int | str]]:
    for subscriber in stream:
        (measured,) = here([(subscriber, None)])
        assert isinstance(measured, int | str)
        yield subscriber, measured


def send_prepared(journal: Journal, prepared: Prepared, send: JournaledSend) -> SendResult:
    """Send a campaign whose list is loaded: the daily cap, the confirmation, the runner, the summary."""
    reporter = send.reporter
    counts = journal.counts(prepared.record)
    due = counts["queued"] + counts["deferred"]
    if due == 0:
        reporter.info(f"nothing to send: {_totals(counts)}")
        return SendResult(counts)
    cap = daily_cap(send.config, journal, send.transport_name, time.time())
    limit = _capped_limit(send.options.limit, cap)
    if cap is not None and limit == 0:  # --limit is at least 1: only the cap leaves none
        _report_cap(cap, due, reporter)
        return SendResult(counts)
    if limit is not None:
        due = min(due, limit)
    with send.factory():
        pass  # connect (TLS, login) once before asking: a wrong port, certificate or password shows now
    for warning in store_health(send.config):  # many unconfirmed or long-unchanged addresses
        reporter.warn(f"warning: {warning}")
    if not _confirmed(send, due):  # a "no" is no error: the campaign is set up and waits for the next send
        reporter.info(
            f"not sent: the campaign is set up with {due:,} recipient(s) to go, and waits; to send it, run the "
            f"same command again:\n  {resume_command(send.options)}"
        )
        return SendResult(counts)
    settings = Settings.from_config(send.config, limit=limit)
    progress = reporter.progress()
    rejections = SendRejections(
        store_location(send.config), send.config.bounces, campaign=prepared.record.slug, transport=send.transport_name,
        warn=reporter.warn,
    )  # fmt: skip
    transport = transport_class(send.transport_name)
    runner = CampaignRunner(
        journal, prepared.record, send.factory, send.composer, settings, max_batch=transport.max_batch,
        progress=progress, suppressed=StoreSuppressions.for_config(send.config), bounced=rejections,
        claims=_shared_claims(journal, prepared, send, settings) if send.options.worker else None,
    )  # fmt: skip
    from .campaign.compose_pool import worker_count

    setting = send.config.send.compose_workers
    workers = worker_count(setting, recipients=due, batch=runner.batch_size)
    try:
        with _compose_pool(send.composer, workers, raw_only=transport.raw_only, asked=setting > 1) as runner.pool:
            result = runner.run()
    except KeyboardInterrupt:  # a second Ctrl-C: the messages in flight were left as they were
        progress.close()
        reporter.info(
            "quit at once: the messages in flight will be 'unknown' (resend to them with --retry-unknown).\n"
            f"To resume, run the same command again:\n  {resume_command(send.options)}"
        )
        raise
    finally:
        progress.close()
        rejections.close()
    _summarise(result, send.options, reporter)
    if rejections.applied.total:
        reporter.info(
            f"refused at send time, recorded as bounces in the subscriber store: {rejections.applied.summary()}"
        )
    if cap is not None and not result.interrupted and result.error is None:
        left = result.counts.get("queued", 0) + result.counts.get("deferred", 0)
        after = daily_cap(send.config, journal, send.transport_name, time.time())
        if left and after is not None and (after.left == 0 or limit == cap.left):
            _report_cap(after, left, reporter)
    if result.error is not None:
        raise result.error
    return SendResult(result.counts, interrupted=result.interrupted)


def _shared_claims(journal: Journal, prepared: Prepared, send: JournaledSend, settings: Settings) -> SharedClaims:
    """This process as one worker of the campaign: registered now, leasing a round of batches ahead."""
    budget = SharedBudget(journal, prepared.record, send.config, send.transport_name)
    ahead = settings.connections * (settings.batch_size or transport_class(send.transport_name).max_batch)
    claims = SharedClaims(journal, prepared.record, budget, lease=send.config.send.worker_lease, ahead=ahead)
    claims.start(time.time())
    return claims


def _compose_pool(
    composer: Composer, workers: int, *, raw_only: bool, asked: bool
) -> contextlib.AbstractContextManager[ComposePool | None]:
    """Compose workers for this send (``workers`` 0: none, the send's threads compose); ``asked``: the
    configuration asked for them, so they compose from the first message on (else the send's threads
    compose until they are up)."""
    from .campaign.compose_pool import ComposePool

    if not workers:
        return contextlib.nullcontext()
    pool = ComposePool(composer.spec, workers, wire=raw_only)
    return pool.started() if asked else pool


def _capped_limit(limit: int | None, cap: DailyCap | None) -> int | None:
    """This run's limit: --limit, and what today's cap leaves (None: no limit)."""
    if cap is None:
        return limit
    return cap.left if limit is None else min(limit, cap.left)


def _report_cap(cap: DailyCap, left: int, reporter: Reporter) -> None:
    reporter.info(
        f"daily limit reached: {cap.sent_today:,} sent today ({cap.reason}: {cap.limit:,}); the rest "
        f"({left:,}) stays queued and goes with the next send of this issue after {utc_text(cap.resets_at)}"
        " (send --due sends it then when the issue has a send_at)"
    )


def _confirmed(send: JournaledSend, due: int) -> bool:
    if send.options.yes:
        return True
    config = send.config
    where = f" ({config.smtp.host}:{config.smtp.port})" if send.transport_name == "smtp" else ""
    question = (
        f"Send “{send.rendered.subject}” to {due:,} recipient(s) via {send.transport_name}{where} "
        f"from {config.from_address}?"
    )
    return send.reporter.confirm(question)


def _summarise(result: RunResult, options: SendOptions, reporter: Reporter) -> None:
    run = result.this_run
    # a deferral is an attempt, not a recipient: one deferred and retried in this run ends sent or failed
    # too, so it is told apart (the campaign's line counts who is still deferred)
    reporter.info(
        f"this run: sent {run['sent']:,}, failed {run['failed']:,}"
        + (f", unknown {run['unknown']:,}" if run["unknown"] else "")
        + f" in {result.seconds:.1f} s"
        + (f" ({run['deferred']:,} deferral(s) by the server on the way)" if run["deferred"] else "")
    )
    reporter.info(f"campaign: {_totals(result.counts)}")
    if result.interrupted or result.error is not None:
        reporter.info(
            f"stopped; the rest is still queued. To resume, run the same command again:\n  {resume_command(options)}"
        )
    if result.counts.get("failed"):
        reporter.info(
            f"failures and their reasons: broadsheet status {shlex.quote(str(options.issue_dir))}; "
            "send to them again with --retry-failed"
        )
    if result.counts.get("unknown"):
        reporter.info("recipients marked unknown may or may not have received it: resend to them with --retry-unknown")


def resume_command(options: SendOptions) -> str:
    """The command line that resumes this send."""
    step = options.issue_dir is not None and options.issue_dir.suffix == ".md"  # a sequence's step goes by --due
    parts = ["broadsheet", "send", "--due" if step or options.due else str(options.issue_dir)]
    if options.config_file:
        parts[1:1] = ["--config", str(options.config_file)]
    if options.list_file is not None:
        parts += ["--list", str(options.list_file)]
    for tag in options.segments:
        parts += ["--segment", tag]
    if options.transport:
        parts += ["--transport", options.transport]
    return " ".join(shlex.quote(part) for part in parts)


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _totals(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{state} {n:,}" for state, n in counts.items() if n) or "no recipients"
