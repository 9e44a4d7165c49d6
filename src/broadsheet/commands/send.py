"""broadsheet send ISSUE_DIR: deliver an issue to the subscriber list, journaled, resumable.

``broadsheet send --due`` (for cron or a systemd timer): every issue whose ``send_at`` has come and whose
campaign is not finished, one after the other, without asking (see ``due.py``).

Exit codes: 0 every recipient of the campaign is sent (or the --limit or the daily limit was reached with
no failure);
1 some recipients are failed or unknown, or a --test/--dry-run found a problem; 130 stopped by Ctrl-C
(resumable); 2 an error (printed on one line by the CLI).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..campaign import (
    Journal,
    Prepared,
    Settings,
    issue_key,
    prepare_campaign,
)
from ..campaign.caps import DailyCap, daily_cap, utc_text
from ..campaign.journal import RECENT_DAYS
from ..campaign.progress import progress_for
from ..campaign.runner import CampaignRunner, RunResult
from ..config import Config
from ..errors import AudienceError, CampaignError
from ..events.report import store_health
from ..providers import delivers
from ..render import read_and_build
from ..store.recipients import StoreSuppressions, recipients_for
from ..transports import Transport, TransportOptions, transport_class
from . import Subparsers, issue_folder, project_config
from .new import front_matter_value
from .signing_secret import token_secret

if TYPE_CHECKING:
    from ..audience import Subscriber
    from ..compose import Composer
    from ..content import Issue
    from ..render.model import RenderedIssue
    from ..store.recipients import Recipients


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "send", help="send an issue to the subscriber list (resumable)",
        description="Compose one message per subscriber and deliver them through the configured transport. "
        "Every recipient is journaled in .broadsheet/state.db: running the same command again resumes.",
    )  # fmt: skip
    parser.add_argument(
        "issue_dir", type=Path, metavar="ISSUE_DIR", nargs="?", help="the issue folder (or its name under issues/)"
    )
    parser.add_argument(
        "--due",
        action="store_true",
        help="send every issue whose send_at has come and whose campaign is not finished (for cron; implies --yes)",
    )
    parser.add_argument(
        "--list", dest="list_file", type=Path, metavar="FILE", help="subscriber CSV (default: send.list)"
    )
    parser.add_argument(
        "--segment", action="append", default=[], metavar="TAG", help="only subscribers with this tag (repeatable)"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="send to at most N recipients in this run")
    parser.add_argument("--dry-run", action="store_true", help="compose every message, send none, write nothing")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--transport", metavar="NAME", help="override send.transport")
    parser.add_argument("--test", metavar="ADDRESS", help="send one [TEST] copy to ADDRESS (not journaled)")
    parser.add_argument("--as", dest="as_email", metavar="EMAIL", help="with --test: personalise as this subscriber")
    parser.add_argument("--retry-failed", action="store_true", help="send again to recipients that failed")
    parser.add_argument("--retry-unknown", action="store_true", help="send again to recipients left unknown by a crash")
    parser.add_argument(
        "--resend-all",
        action="store_true",
        help="send although this issue went from a journal that is gone (everyone on the list is mailed again)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="send even when lint reports errors, or when recipients got the same subject lately",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    config = project_config(args)
    if args.due:
        from .due import send_due

        return send_due(args, config)
    return send_issue(args, config)


def _refuse_with(flag: str, given: dict[str, bool], *, why: str = "") -> None:
    """A one-line error for the first option in ``given`` that is on: it does not go with ``flag``."""
    first = next((name for name, on in given.items() if on), None)
    if first is not None:
        raise CampaignError(f"{first} does not go with {flag}{why}", fix=f"leave out {first} or {flag}")


def _check_flags(args: argparse.Namespace) -> None:
    journaled = {  # what only a journaled send of one issue takes
        "--dry-run": args.dry_run,
        "--limit": args.limit is not None,
        "--retry-failed": args.retry_failed,
        "--retry-unknown": args.retry_unknown,
        "--resend-all": args.resend_all,
    }
    if args.due:
        _refuse_with(
            "--due", {"ISSUE_DIR": args.issue_dir is not None, "--test": bool(args.test), **journaled},
            why=" (which sends every issue that is due)",
        )  # fmt: skip
        return
    if args.issue_dir is None:
        raise CampaignError("no issue to send", fix="give the issue folder (broadsheet send issues/<name>), or --due")
    if args.as_email and not args.test:
        raise CampaignError("--as only goes with --test", fix="add --test ADDRESS")
    if args.test:  # a test copy is one message, never journaled: these would be silently ignored
        _refuse_with("--test", journaled)
    if args.limit is not None and args.limit < 1:
        raise CampaignError("--limit must be 1 or more")


def send_issue(args: argparse.Namespace, config: Config, journal: Journal | None = None) -> int:
    """Send (or test, or dry-run) the issue ``args.issue_dir``; ``journal``: one already open under the
    send lock (``--due``), else the journal is opened here, locked."""
    args.issue_dir = issue_folder(args.issue_dir, config)
    transport_name = args.transport or config.send.transport
    transport_class(transport_name)  # an unknown name fails before the issue is built
    issue, rendered = read_and_build(args.issue_dir, config)
    _check_lint(rendered, issue, config, force=args.force, test=bool(args.test))
    if not (args.test or args.dry_run):
        _check_send_at(issue, args)
    subscribers = _subscriber_list(args, config)
    if args.test:
        factory = transport_factory(transport_name, config, slug=rendered.slug, test=True)
        return _send_test(args, config, rendered, subscribers, factory)
    factory = transport_factory(transport_name, config, slug=rendered.slug)
    from ..compose import Composer

    # settings and secrets are checked before the journal is touched; the outbox mails no one
    composer = Composer(rendered, config, token_secret=token_secret(config, throwaway=not delivers(transport_name)))
    factory()
    if args.dry_run:
        return _dry_run(subscribers, args, composer)
    send = _Send(args, config, rendered, issue.id, transport_name, subscribers, factory, composer)
    if journal is not None:
        return _send_journaled(journal, send)
    with Journal.for_project(config.root, lock=True) as journal:
        return _send_journaled(journal, send)


@dataclass(frozen=True)
class _Send:
    """One journaled send of one issue: what the steps below share."""

    args: argparse.Namespace
    config: Config
    rendered: RenderedIssue
    issue_id: str | None
    transport_name: str
    subscribers: Recipients
    factory: Callable[[], Transport]
    composer: Composer


def _send_journaled(journal: Journal, send: _Send) -> int:
    journal.keep_room()  # outcomes are still recorded when the disk fills up during the send
    start_checkpoints = journal.checkpoints_aside()  # the load's commit and the claims never copy the WAL
    prepared = _prepare(journal, send)
    start_checkpoints()  # after the load: a long list's part readers fork from a process of one thread
    _check_recent_sends(journal, prepared, send.args)
    return _send(journal, prepared, send)


# -- steps --------------------------------------------------------------------------------------


def transport_factory(name: str, config: Config, *, slug: str, test: bool = False) -> Callable[[], Transport]:
    """A maker of new transport instances, each given the same options (the outbox files by slug and
    keeps test copies apart; the others need neither)."""
    cls = transport_class(name)
    options = TransportOptions(slug=slug, test=test)
    return lambda: cls(config, options)


def _check_lint(rendered: RenderedIssue, issue: Issue, config: Config, *, force: bool, test: bool = False) -> None:
    """Refuse to send an issue with lint errors unless --force; a test copy to yourself goes (a draft is
    what it is for), with the errors shown."""
    from ..lint import lint_rendered

    errors = [f for f in lint_rendered(rendered, issue, config, validate_mjml=False) if f.severity == "error"]
    if not errors:
        return
    for finding in errors:
        print(f"lint: {finding}", file=sys.stderr)
    if force:
        print(f"sending despite {len(errors)} lint error(s) (--force)", file=sys.stderr)
        return
    if test:
        print(f"a test copy despite {len(errors)} lint error(s); the real send refuses them", file=sys.stderr)
        return
    raise CampaignError(f"lint found {len(errors)} error(s) in the issue", fix="fix them, or add --force")


def _check_send_at(issue: Issue, args: argparse.Namespace) -> None:
    """Refuse (unless --force) to send by hand an issue scheduled for later: send --due sends it then."""
    if issue.send_at is None or issue.send_at.timestamp() <= time.time():
        return
    when = utc_text(issue.send_at.timestamp())
    if args.force:
        print(f"sending now although send_at is {when} (--force)", file=sys.stderr)
        return
    raise CampaignError(
        f"this issue is scheduled: send_at {when}",
        where=f"{args.issue_dir}/issue.md",
        fix="leave it to broadsheet send --due (from cron), or add --force to send it now",
    )


def _subscriber_list(args: argparse.Namespace, config: Config) -> Recipients:
    return recipients_for(config, args.list_file, args.segment)  # the store, or a CSV checked against it


def _prepare(journal: Journal, send: _Send) -> Prepared:
    fingerprint = send.subscribers.fingerprint()
    issue_dir = issue_key(Path(send.args.issue_dir), send.config.root)
    _check_id_is_this_issues(journal, send.issue_id, issue_dir, send.config.root)
    prepared = prepare_campaign(
        journal, slug=send.rendered.slug, transport=send.transport_name, issue_dir=issue_dir, fingerprint=fingerprint,
        subscribers=send.subscribers, issue_id=send.issue_id, subject=send.rendered.subject,
        resend_all=send.args.resend_all,
    )  # fmt: skip
    if prepared.replayed:
        print(f"recorded {prepared.replayed:,} outcome(s) an earlier send could not write to the journal")
    if prepared.loaded is None:
        print(f"{send.subscribers.path.name}: unchanged since this campaign started; resuming")
    else:
        report_list(send.subscribers, prepared.loaded)
        print(f"journal: {prepared.loaded:,} recipients set up in {prepared.setup_seconds:.1f} s")
    if prepared.recovered:
        print(
            f"{prepared.recovered:,} recipient(s) were in flight when an earlier send stopped: now 'unknown' "
            "(resend to them with --retry-unknown)"
        )
    if not send.args.dry_run:
        for state, flag in (("failed", send.args.retry_failed), ("unknown", send.args.retry_unknown)):
            if flag:
                print(f"re-queued {journal.requeue(prepared.record, state):,} {state} recipient(s)")
    for other, count in journal.skip_sent_elsewhere(prepared.record).items():
        print(f"{count:,} recipient(s) already sent this issue over {other}: recorded as sent, not sent again")
    if not send.args.retry_unknown:  # unknown elsewhere may have arrived: as unknown here, sent only on request
        for other, count in journal.hold_unknown_elsewhere(prepared.record).items():
            print(
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


def _check_recent_sends(journal: Journal, prepared: Prepared, args: argparse.Namespace) -> None:
    """Refuse (unless --force) to mail people who got an issue with the same subject in the last days:
    most likely this issue again under a new folder name, or a copy whose subject was not changed."""
    recent = journal.recent_same_subject(prepared.record)
    if not recent:
        return
    for send in recent:
        other = send.campaign
        print(
            f"{send.recipients:,} recipient(s) got “{other.subject}” from campaign {other.key} "
            f"({other.issue_dir or other.slug}, over {other.transport}) on {_when(send.last)}",
            file=sys.stderr,
        )
    if args.force or args.dry_run:
        if args.force and not args.dry_run:
            print("sending to them again (--force)", file=sys.stderr)
        return
    first = recent[0].campaign
    total = sum(send.recipients for send in recent)
    raise CampaignError(
        f"{total:,} recipient(s) got an issue with this subject in the last {RECENT_DAYS} days "
        f"(campaign {first.key}, {first.issue_dir or first.slug})", where=str(args.issue_dir),
        fix=f'if this is that issue moved or renamed, put id: "{first.key}" in its issue.md to resume that campaign; '
        "to mail them again anyway, add --force",
    )  # fmt: skip


def report_list(subscribers: Recipients, count: int) -> None:
    """Every bad row (line and reason), then who was left out and why."""
    for problem in subscribers.problems:
        print(
            f"{subscribers.path}:{problem.line}: {problem.reason} ({problem.email or 'no address'}); skipped",
            file=sys.stderr,
        )
    left_out = ", ".join(f"{reason} {n:,}" for reason, n in sorted(subscribers.skipped.items()))
    bad = f", {len(subscribers.problems):,} bad row(s) skipped" if subscribers.problems else ""
    print(f"{subscribers.path.name}: {count:,} recipient(s){bad}" + (f"; left out: {left_out}" if left_out else ""))


def _send_test(
    args: argparse.Namespace,
    config: Config,
    rendered: RenderedIssue,
    subscribers: Recipients,
    factory: Callable[[], Transport],
) -> int:
    from ..compose import Composer

    model = _test_subscriber(subscribers, args.as_email)
    fields = {**model.fields, "email": args.test}
    subscriber = dataclasses.replace(model, email=args.test, fields=fields)
    composer = Composer(rendered, config, test=True, token_secret=token_secret(config, throwaway=True))
    message = composer.compose(subscriber)
    with factory() as transport:  # a fresh key: an identical earlier test copy must not be replayed
        delivery = transport.send_batch([message], batch_key=f"test-{uuid.uuid4().hex}")[0]
    print(
        f"test copy to {args.test} (personalised as {model.email}): {delivery.status}"
        + (f" ({delivery.detail})" if delivery.detail else "")
    )
    return 0 if delivery.status == "sent" else 1


def _test_subscriber(subscribers: Recipients, as_email: str | None) -> Subscriber:
    wanted = as_email.strip().lower() if as_email else None
    for subscriber in subscribers:
        if wanted is None or subscriber.email.lower() == wanted:
            return subscriber
    if wanted:
        raise AudienceError(f"{as_email} is not a recipient on the list", where=str(subscribers.path))
    raise AudienceError("the list has no recipient to personalise the test as", where=str(subscribers.path))


def _dry_run(subscribers: Recipients, args: argparse.Namespace, composer: Composer) -> int:
    """Compose each recipient's message from the list as it streams by; nothing is written anywhere
    (no journal, no campaign): what a send would find wrong, and how fast it composes."""
    from ..compose import RecipientRejected

    started = time.perf_counter()
    composed = size = rejected = 0
    for subscriber in subscribers:
        if args.limit is not None and composed + rejected >= args.limit:
            break
        try:
            size += len(composer.compose(subscriber).raw)
        except RecipientRejected as exc:
            rejected += 1
            print(f"would fail: {subscriber.email} (line {subscriber.line}): {exc.reason}", file=sys.stderr)
            continue
        composed += 1
    seconds = time.perf_counter() - started
    report_list(subscribers, composed + rejected)
    average = size / composed / 1024 if composed else 0
    print(
        f"dry run: composed {composed:,} message(s) in {seconds:.1f} s ({composed / seconds if seconds else 0:,.0f}/s, "
        f"{average:.1f} KB each), {rejected:,} would fail; nothing sent, nothing written "
        "(a real send skips those an earlier send of this issue reached)"
    )
    return 1 if rejected else 0


def _send(journal: Journal, prepared: Prepared, send: _Send) -> int:
    counts = journal.counts(prepared.record)
    due = counts["queued"] + counts["deferred"]
    if due == 0:
        print(f"nothing to send: {_totals(counts)}")
        return _exit_code(counts)
    cap = daily_cap(send.config, journal, send.transport_name, time.time())
    limit = _capped_limit(send.args.limit, cap)
    if cap is not None and limit == 0:  # --limit is at least 1: only the cap leaves none
        _report_cap(cap, due)
        return _exit_code(counts)
    if limit is not None:
        due = min(due, limit)
    with send.factory():
        pass  # connect (TLS, login) once before asking: a wrong port, certificate or password shows now
    for warning in store_health(send.config.root):  # many unconfirmed or long-unchanged addresses
        print(f"warning: {warning}", file=sys.stderr)
    _confirm(send.args, send.config, send.rendered, send.transport_name, due)
    settings = Settings.from_config(send.config, limit=limit)
    progress = progress_for(sys.stdout)
    runner = CampaignRunner(
        journal, prepared.record, send.factory, send.composer, settings,
        max_batch=transport_class(send.transport_name).max_batch, progress=progress,
        suppressed=StoreSuppressions(send.config.root),
    )  # fmt: skip
    try:
        result = runner.run()
    except KeyboardInterrupt:  # a second Ctrl-C: the messages in flight were left as they were
        progress.close()
        print(
            "quit at once: the messages in flight will be 'unknown' (resend to them with --retry-unknown).\n"
            f"To resume, run the same command again:\n  {_resume_command(send.args)}"
        )
        raise
    finally:
        progress.close()
    _summarise(result, send.args)
    if cap is not None and not result.interrupted and result.error is None:
        left = result.counts.get("queued", 0) + result.counts.get("deferred", 0)
        after = daily_cap(send.config, journal, send.transport_name, time.time())
        if left and after is not None and (after.left == 0 or limit == cap.left):
            _report_cap(after, left)
    if result.error is not None:
        raise result.error
    return 130 if result.interrupted else _exit_code(result.counts)


def _capped_limit(limit: int | None, cap: DailyCap | None) -> int | None:
    """This run's limit: --limit, and what today's cap leaves (None: no limit)."""
    if cap is None:
        return limit
    return cap.left if limit is None else min(limit, cap.left)


def _report_cap(cap: DailyCap, left: int) -> None:
    print(
        f"daily limit reached: {cap.sent_today:,} sent today ({cap.reason}: {cap.limit:,}); the rest "
        f"({left:,}) stays queued and goes with the next send of this issue after {utc_text(cap.resets_at)}"
        " (send --due sends it then when the issue has a send_at)"
    )


def _confirm(args: argparse.Namespace, config: Config, rendered: RenderedIssue, transport_name: str, due: int) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CampaignError("no terminal to confirm the send on", fix="add --yes to send without asking")
    where = f" ({config.smtp.host}:{config.smtp.port})" if transport_name == "smtp" else ""
    answer = input(
        f"Send “{rendered.subject}” to {due:,} recipient(s) via {transport_name}{where} "
        f"from {config.from_address}? [y/N] "
    )
    if answer.strip().lower() not in ("y", "yes"):
        raise CampaignError("not sent: the send was not confirmed")


def _summarise(result: RunResult, args: argparse.Namespace) -> None:
    run = result.this_run
    # a deferral is an attempt, not a recipient: one deferred and retried in this run ends sent or failed
    # too, so it is told apart (the campaign's line counts who is still deferred)
    print(
        f"this run: sent {run['sent']:,}, failed {run['failed']:,}"
        + (f", unknown {run['unknown']:,}" if run["unknown"] else "")
        + f" in {result.seconds:.1f} s"
        + (f" ({run['deferred']:,} deferral(s) by the server on the way)" if run["deferred"] else "")
    )
    print(f"campaign: {_totals(result.counts)}")
    if result.interrupted or result.error is not None:
        print(f"stopped; the rest is still queued. To resume, run the same command again:\n  {_resume_command(args)}")
    if result.counts.get("failed"):
        print(
            f"failures and their reasons: broadsheet status {shlex.quote(str(args.issue_dir))}; "
            "send to them again with --retry-failed"
        )
    if result.counts.get("unknown"):
        print("recipients marked unknown may or may not have received it: resend to them with --retry-unknown")


def _resume_command(args: argparse.Namespace) -> str:
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


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _totals(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n:,}" for state, n in counts.items() if n) or "no recipients"


def _exit_code(counts: dict[str, int]) -> int:
    return 1 if counts.get("failed") or counts.get("unknown") else 0
