"""broadsheet send ISSUE_DIR: deliver an issue to the subscriber list, journaled, resumable.

Exit codes: 0 every recipient of the campaign is sent (or the --limit was reached with no failure);
1 some recipients are failed or unknown, or a --test/--dry-run found a problem; 130 stopped by Ctrl-C
(resumable); 2 an error (printed on one line by the CLI).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from . import issue_folder, project_config
from ..campaign import (
    Journal, Prepared, Settings, issue_key, prepare_campaign, subscriber_from_row,
)
from ..campaign.progress import progress_for
from ..campaign.runner import CampaignRunner, RunResult
from ..config import Config
from ..errors import AudienceError, CampaignError
from ..events.report import store_health
from ..render import read_and_build
from ..store.recipients import StoreSuppressions, recipients_for
from ..transports import Transport, transport_class

DUE_STATES = ("queued", "deferred")


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "send", help="send an issue to the subscriber list (resumable)",
        description="Compose one message per subscriber and deliver them through the configured transport. "
        "Every recipient is journaled in .broadsheet/state.db: running the same command again resumes.",
    )  # fmt: skip
    parser.add_argument("issue_dir", type=Path, metavar="ISSUE_DIR", help="the issue folder (or its name under issues/)")
    parser.add_argument("--list", dest="list_file", type=Path, metavar="FILE", help="subscriber CSV (default: send.list)")
    parser.add_argument("--segment", action="append", default=[], metavar="TAG", help="only subscribers with this tag (repeatable)")
    parser.add_argument("--limit", type=int, metavar="N", help="send to at most N recipients in this run")
    parser.add_argument("--dry-run", action="store_true", help="compose every message, send none")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--transport", metavar="NAME", help="override send.transport")
    parser.add_argument("--test", metavar="ADDRESS", help="send one [TEST] copy to ADDRESS (not journaled)")
    parser.add_argument("--as", dest="as_email", metavar="EMAIL", help="with --test: personalise as this subscriber")
    parser.add_argument("--retry-failed", action="store_true", help="send again to recipients that failed")
    parser.add_argument("--retry-unknown", action="store_true", help="send again to recipients left unknown by a crash")
    parser.add_argument("--force", action="store_true", help="send even when lint reports errors")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.as_email and not args.test:
        raise CampaignError("--as only goes with --test", fix="add --test ADDRESS")
    if args.test:  # a test copy is one message, never journaled: these would be silently ignored
        ignored = {"--dry-run": args.dry_run, "--limit": args.limit is not None,
                   "--retry-failed": args.retry_failed, "--retry-unknown": args.retry_unknown}
        given = [flag for flag, on in ignored.items() if on]
        if given:
            raise CampaignError(f"{given[0]} does not go with --test", fix=f"leave out {given[0]} or --test")
    if args.limit is not None and args.limit < 1:
        raise CampaignError("--limit must be 1 or more")
    config = project_config(args)
    args.issue_dir = issue_folder(args.issue_dir, config)
    transport_name = args.transport or config.send.transport
    transport_class(transport_name)  # an unknown name fails before the issue is built
    issue, rendered = read_and_build(args.issue_dir, config)
    _check_lint(rendered, issue, config, force=args.force)
    factory = transport_factory(transport_name, config, slug=rendered.slug)
    subscribers = _subscriber_list(args, config)
    if args.test:
        return _send_test(args, config, rendered, subscribers, factory)
    from ..compose import Composer

    composer = Composer(rendered, config)  # settings and secrets are checked before the journal is touched
    factory()
    with Journal.for_project(config.root) as journal:
        journal.lock()
        prepared = _prepare(journal, args, config, rendered.slug, transport_name, subscribers)
        if args.dry_run:
            return _dry_run(journal, prepared, args, composer)
        return _send(journal, prepared, args, config, rendered, transport_name, factory, composer)


# -- steps --------------------------------------------------------------------------------------


def transport_factory(name: str, config: Config, *, slug: str) -> Callable[[], Transport]:
    """A maker of new transport instances; ``slug`` goes to transports that take it (the outbox)."""
    cls = transport_class(name)
    takes_slug = "slug" in inspect.signature(cls.__init__).parameters
    return (lambda: cls(config, slug=slug)) if takes_slug else (lambda: cls(config))


def _check_lint(rendered, issue, config: Config, *, force: bool) -> None:
    """Refuse to send an issue with lint errors unless --force."""
    from ..lint import lint_rendered

    errors = [f for f in lint_rendered(rendered, issue, config, validate_mjml=False) if f.severity == "error"]
    if not errors:
        return
    for finding in errors:
        print(f"lint: {finding}", file=sys.stderr)
    if force:
        print(f"sending despite {len(errors)} lint error(s) (--force)", file=sys.stderr)
        return
    raise CampaignError(f"lint found {len(errors)} error(s) in the issue", fix="fix them, or add --force")


def _subscriber_list(args: argparse.Namespace, config: Config):
    return recipients_for(config, args.list_file, args.segment)  # the store, or a CSV checked against it


def subscriber_list(path: Path, config: Config, segments, *, fix: str | None = None):
    """The list at ``path`` as send reads it, with the config's suppression file when it exists."""
    from ..audience import SubscriberList

    if not path.is_file():
        raise AudienceError("subscriber list not found", where=str(path), fix=fix)
    suppressions = config.resolve(config.send.suppressions) if config.send.suppressions else None
    if suppressions is not None and not suppressions.is_file():
        suppressions = None
    return SubscriberList(path, segments=segments, suppressions=suppressions)


def _prepare(journal: Journal, args, config: Config, slug: str, transport_name: str, subscribers) -> Prepared:
    fingerprint = subscribers.fingerprint()
    issue_dir = issue_key(Path(args.issue_dir), config.root)
    prepared = prepare_campaign(
        journal, slug=slug, transport=transport_name, issue_dir=issue_dir, fingerprint=fingerprint,
        subscribers=subscribers,
    )  # fmt: skip
    if prepared.loaded is None:
        print(f"{subscribers.path.name}: unchanged since this campaign started; resuming")
    else:
        report_list(subscribers, prepared.loaded)
        print(f"journal: {prepared.loaded:,} recipients set up in {prepared.setup_seconds:.1f} s")
    if prepared.recovered:
        print(f"{prepared.recovered:,} recipient(s) were in flight when an earlier send stopped: now 'unknown' "
              "(resend to them with --retry-unknown)")
    if not args.dry_run:
        for state, flag in (("failed", args.retry_failed), ("unknown", args.retry_unknown)):
            if flag:
                print(f"re-queued {journal.requeue(prepared.record, state):,} {state} recipient(s)")
    for other, count in journal.skip_sent_elsewhere(prepared.record).items():
        print(f"{count:,} recipient(s) already sent this issue over {other}: recorded as sent, not sent again")
    return prepared


def report_list(subscribers, count: int) -> None:
    """Every bad row (line and reason), then who was left out and why."""
    for problem in subscribers.problems:
        print(f"{subscribers.path}:{problem.line}: {problem.reason} ({problem.email or 'no address'}); skipped",
              file=sys.stderr)
    left_out = ", ".join(f"{reason} {n:,}" for reason, n in sorted(subscribers.skipped.items()))
    bad = f", {len(subscribers.problems):,} bad row(s) skipped" if subscribers.problems else ""
    print(f"{subscribers.path.name}: {count:,} recipient(s){bad}" + (f"; left out: {left_out}" if left_out else ""))


def _send_test(args, config: Config, rendered, subscribers, factory) -> int:
    from ..compose import Composer

    model = _test_subscriber(subscribers, args.as_email)
    fields = {**model.fields, "email": args.test}
    subscriber = dataclasses.replace(model, email=args.test, fields=fields)
    message = Composer(rendered, config, test=True).compose(subscriber)
    with factory() as transport:  # a fresh key: an identical earlier test copy must not be replayed
        delivery = transport.send_batch([message], batch_key=f"test-{uuid.uuid4().hex}")[0]
    print(f"test copy to {args.test} (personalised as {model.email}): {delivery.status}"
          + (f" ({delivery.detail})" if delivery.detail else ""))
    return 0 if delivery.status == "sent" else 1


def _test_subscriber(subscribers, as_email: str | None):
    wanted = as_email.strip().lower() if as_email else None
    for subscriber in subscribers:
        if wanted is None or subscriber.email.lower() == wanted:
            return subscriber
    if wanted:
        raise AudienceError(f"{as_email} is not a recipient on the list", where=str(subscribers.path))
    raise AudienceError("the list has no recipient to personalise the test as", where=str(subscribers.path))


def _dry_run(journal: Journal, prepared: Prepared, args, composer) -> int:
    from ..compose import RecipientRejected

    states = DUE_STATES + (("failed",) if args.retry_failed else ()) + (("unknown",) if args.retry_unknown else ())
    started = time.perf_counter()
    composed = size = 0
    rejected: list[str] = []
    for row in journal.rows(prepared.record, states, limit=args.limit):
        try:
            message = composer.compose(subscriber_from_row(row))
        except RecipientRejected as exc:
            rejected.append(f"{row.email} (line {row.line}): {exc.reason}")
            continue
        composed += 1
        size += len(message.raw)
    seconds = time.perf_counter() - started
    for line in rejected:
        print(f"would fail: {line}", file=sys.stderr)
    average = size / composed / 1024 if composed else 0
    print(f"dry run: composed {composed:,} message(s) in {seconds:.1f} s ({composed / seconds if seconds else 0:,.0f}/s, "
          f"{average:.1f} KB each), {len(rejected):,} would fail; nothing sent")
    return 1 if rejected else 0


def _send(journal: Journal, prepared: Prepared, args, config: Config, rendered, transport_name: str, factory,
          composer) -> int:
    from ..compose import RecipientRejected

    counts = journal.counts(prepared.record)
    due = counts["queued"] + counts["deferred"]
    if args.limit is not None:
        due = min(due, args.limit)
    if due == 0:
        print(f"nothing to send: {_totals(counts)}")
        return _exit_code(counts)
    with factory():
        pass  # connect (TLS, login) once before asking: a wrong port, certificate or password shows now
    for warning in store_health(config.root):  # many unconfirmed or long-unchanged addresses
        print(f"warning: {warning}", file=sys.stderr)
    _confirm(args, config, rendered, transport_name, due)
    settings = Settings(
        connections=config.send.connections, batch_size=config.send.batch_size, retries=config.send.retries,
        retry_delay=config.send.retry_delay, rate_per_second=config.send.rate_per_second,
        rate_per_hour=config.send.rate_per_hour, limit=args.limit,
    )  # fmt: skip
    progress = progress_for(sys.stdout)
    runner = CampaignRunner(
        journal, prepared.record, factory, lambda row: composer.compose(subscriber_from_row(row)), settings,
        max_batch=transport_class(transport_name).max_batch, progress=progress, rejected=(RecipientRejected,),
        suppressed=StoreSuppressions(config.root),
    )  # fmt: skip
    try:
        result = runner.run()
    except KeyboardInterrupt:  # a second Ctrl-C: the messages in flight were left as they were
        progress.close()
        print("quit at once: the messages in flight will be 'unknown' (resend to them with --retry-unknown).\n"
              f"To resume, run the same command again:\n  {_resume_command(args)}")
        raise
    finally:
        progress.close()
    _summarise(result, args)
    if result.error is not None:
        raise result.error
    return 130 if result.interrupted else _exit_code(result.counts)


def _confirm(args, config: Config, rendered, transport_name: str, due: int) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CampaignError("no terminal to confirm the send on", fix="add --yes to send without asking")
    where = f" ({config.smtp.host}:{config.smtp.port})" if transport_name == "smtp" else ""
    answer = input(f"Send “{rendered.subject}” to {due:,} recipient(s) via {transport_name}{where} "
                   f"from {config.from_address}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CampaignError("not sent: the send was not confirmed")


def _summarise(result: RunResult, args) -> None:
    run = result.this_run
    print(f"this run: sent {run['sent']:,}, failed {run['failed']:,}, deferred {run['deferred']:,}"
          + (f", unknown {run['unknown']:,}" if run["unknown"] else "") + f" in {result.seconds:.1f} s")
    print(f"campaign: {_totals(result.counts)}")
    if result.interrupted or result.error is not None:
        print(f"stopped; the rest is still queued. To resume, run the same command again:\n  {_resume_command(args)}")
    if result.counts.get("failed"):
        print(f"failures and their reasons: broadsheet status {shlex.quote(str(args.issue_dir))}; "
              "send to them again with --retry-failed")
    if result.counts.get("unknown"):
        print("recipients marked unknown may or may not have received it: resend to them with --retry-unknown")


def _resume_command(args) -> str:
    parts = ["broadsheet", "send", str(args.issue_dir)]
    if getattr(args, "config", None):
        parts[1:1] = ["--config", str(args.config)]
    if args.list_file is not None:
        parts += ["--list", str(args.list_file)]
    for tag in args.segment:
        parts += ["--segment", tag]
    if args.transport:
        parts += ["--transport", args.transport]
    return " ".join(shlex.quote(part) for part in parts)


def _totals(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n:,}" for state, n in counts.items() if n) or "no recipients"


def _exit_code(counts: dict[str, int]) -> int:
    return 1 if counts.get("failed") or counts.get("unknown") else 0
