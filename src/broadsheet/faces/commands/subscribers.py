"""broadsheet subscribers ACTION: check a CSV, and keep the subscriber store (.broadsheet/audience.db).

check FILE        count who would receive, list every bad row with line and reason (exit 1 when any)
import FILE.csv   add the CSV's subscribers to the store (--update merges; exit 1 when a row was bad)
export [FILE]     the store as a CSV import reads (stdout by default)
add, remove, forget EMAIL; list; show EMAIL
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from broadsheet.core.config import Config
from broadsheet.core.errors import StoreError

from . import Subparsers, project_config

if TYPE_CHECKING:
    from broadsheet.core.audience import RowProblem
    from broadsheet.data.store import Store

STATUS_CHOICES = ("unconfirmed", "subscribed", "unsubscribed", "bounced", "complained")  # = store.STATUSES


def register(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "subscribers", help="check a subscriber list; keep the subscriber store",
        description="Work with subscriber lists and the subscriber store (.broadsheet/audience.db).",
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="count recipients and report every bad row",
        description="Read FILE as send would: count recipients, say who is left out and why, and list "
        "every bad row with its line number and reason. Exit code 1 when any row is bad.",
    )  # fmt: skip
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--segment", action="append", default=[], metavar="TAG", help="only subscribers with this tag")
    _register_store_actions(actions)
    return parser


def _register_store_actions(actions: Subparsers) -> None:
    imports = actions.add_parser(
        "import", help="add a CSV's subscribers to the store",
        description="Read FILE.csv (the format send reads) into the store. New addresses are added with the "
        "row's status; a row saying unsubscribed, bounced or complained is applied to anyone present. "
        "Bad rows are reported with their line and skipped (exit code 1). Forgotten addresses are never added.",
    )  # fmt: skip
    imports.add_argument("file", type=Path, metavar="FILE.csv")
    imports.add_argument("--update", action="store_true", help="merge name, fields and tags into present subscribers")
    imports.add_argument("--sequence", metavar="NAME",
                         help="the subscribed addresses this import adds enter the sequence NAME")  # fmt: skip
    imports.add_argument("--resubscribe", action="store_true",
                         help="with --update: a row saying subscribed resubscribes someone who unsubscribed, "
                         "bounced or complained")  # fmt: skip
    export = actions.add_parser("export", help="write the store as CSV (stdout by default)",
                                description="Write the store's subscribers as a CSV that import reads.")  # fmt: skip
    export.add_argument("file", type=Path, nargs="?", metavar="FILE")
    export.add_argument("--status", choices=STATUS_CHOICES, help="only subscribers with this status")
    add = actions.add_parser("add", help="add one subscriber", description="Add EMAIL to the store as subscribed.")
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--name", default="", help="the subscriber's name")
    add.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag (repeatable)")
    add.add_argument("--resubscribe", action="store_true",
                     help="the person asked to subscribe again after unsubscribing or being forgotten")  # fmt: skip
    remove = actions.add_parser("remove", help="unsubscribe one address (the event is kept)",
                                description="Unsubscribe EMAIL. An address the store does not know is kept as "
                                "unsubscribed, so no list mails it.")  # fmt: skip
    remove.add_argument("email", metavar="EMAIL")
    forget = actions.add_parser("forget", help="erase one person's data (GDPR); the address stays suppressed",
                                description="Erase EMAIL's address, name, fields, tags and event details from the "
                                "store and the send journal, and delete the outbox's messages to it. Only a keyed hash is kept, so the address is never "
                                "mailed or imported again.")  # fmt: skip
    forget.add_argument("email", metavar="EMAIL")
    listing = actions.add_parser("list", help="list subscribers", description="One line per subscriber: "
                                 "email, status, name, tags.")  # fmt: skip
    listing.add_argument("--status", choices=STATUS_CHOICES, help="only subscribers with this status")
    listing.add_argument("--tag", metavar="TAG", help="only subscribers with this tag")
    show = actions.add_parser(
        "show",
        help="one subscriber's fields and event history",
        description="Show EMAIL's fields, tags, status and every event with its source.",
    )
    show.add_argument("email", metavar="EMAIL")


def run(args: argparse.Namespace) -> int:
    config = project_config(args)
    if args.action == "check":
        return _check(args, config)
    from broadsheet.data.store import Store

    with Store.for_config(config) as store:
        return ACTIONS[args.action](args, store, config)


def _check(args: argparse.Namespace, config: Config) -> int:
    from broadsheet.data.store.recipients import csv_recipients

    subscribers = csv_recipients(args.file, config, args.segment)
    count = sum(1 for _ in subscribers)
    for problem in subscribers.problems:
        print(f"{args.file}:{problem.line}: {problem.reason}" + (f" ({problem.email})" if problem.email else ""))
    print(f"{count:,} recipient(s)")
    for reason, n in sorted(subscribers.skipped.items()):
        print(f"  left out, {reason}: {n:,}")
    if subscribers.problems:
        print(f"{len(subscribers.problems):,} bad row(s): they will be skipped by send")
        return 1
    return 0


def _import(args: argparse.Namespace, store: Store, config: Config) -> int:
    from broadsheet.data.store.importer import import_csv

    def on_problem(problem: RowProblem) -> None:
        print(
            f"{args.file}:{problem.line}: {problem.reason} ({problem.email or 'no address'}); skipped", file=sys.stderr
        )

    started = time.time()
    report = import_csv(store, args.file, update=args.update, resubscribe=args.resubscribe, on_problem=on_problem)
    statuses = ", ".join(f"{status} {n:,}" for status, n in sorted(report.by_status.items()))
    print(
        f"{args.file.name}: {report.rows + report.problems:,} row(s) read; added {report.added:,}"
        + (f" ({statuses})" if statuses else "")
    )
    notes = [
        (report.updated, "merged into present subscribers"),
        (report.opted_out, "unsubscribed, bounced or complained now (the file says so)"),
        (report.resubscribed, "subscribed again (--resubscribe)"),
        (report.forgotten, "row(s) for addresses forgotten at their request: not added again"),
        (report.kept_suppressed, "say subscribed for someone who unsubscribed, bounced or complained: kept suppressed"
                                 " (--update --resubscribe to change that)"),
        (report.problems, "bad row(s) skipped"),
    ]  # fmt: skip
    for count, text in notes:
        if count:
            print(f"  {count:,} {text}")
    if args.sequence:
        from broadsheet.data.store.sequences import enter_added

        entered = enter_added(store, args.sequence, source=args.file.name, since=started, at=time.time())
        print(f"  {entered:,} entered the sequence {args.sequence}")
    left = report.rows - report.added - report.opted_out - report.forgotten  # present rows nothing changed
    if not args.update and left > 0:
        print(f"  {left:,} row(s) for addresses already in the store (or repeated in the file) left as they were"
              " (--update merges the file into them)")  # fmt: skip
    return 1 if report.problems else 0


def _export(args: argparse.Namespace, store: Store, config: Config) -> int:
    if args.file is None:
        written = _write_csv(store, sys.stdout, args.status)
    else:
        try:
            with open(args.file, "w", newline="", encoding="utf-8") as handle:
                written = _write_csv(store, handle, args.status)
        except OSError as exc:
            raise StoreError(f"cannot write the CSV: {exc.strerror}", where=str(args.file)) from None
        print(f"wrote {written:,} subscriber(s) to {args.file}")
    return 0


def _write_csv(store: Store, handle: TextIO, status: str | None) -> int:
    """The store as the CSV ``import`` reads, every cell one a spreadsheet shows as text (``spreadsheet_safe``).
    Rows end in CRLF (RFC 4180), so that a value holding a CR or an LF alone is quoted too."""
    from broadsheet.core.audience.spreadsheet import spreadsheet_safe

    extra = [name for name in store.field_names() if name.lower() not in ("email", "name", "status", "tags")]
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(map(spreadsheet_safe, ["email", "name", "status", "tags", *extra]))
    written = 0
    for subscriber in store.subscribers(status=status):
        cells = [subscriber.email, subscriber.name, subscriber.status, ";".join(subscriber.tags),
                 *(subscriber.fields.get(name, "") for name in extra)]  # fmt: skip
        writer.writerow(map(spreadsheet_safe, cells))
        written += 1
    return written


def _add(args: argparse.Namespace, store: Store, config: Config) -> int:
    present = store.get(args.email)
    if present is not None and present.status != "subscribed" and not args.resubscribe:
        raise StoreError(f"{present.email} is already in the store, {present.status}", where=str(store.path),
                         fix="add --resubscribe if they asked to subscribe again")  # fmt: skip
    if args.resubscribe and present is not None and present.status != "subscribed":
        store.set_status(args.email, "subscribed", source="cli", detail="resubscribed at their request",
                         resubscribe=True)  # fmt: skip
        print(f"resubscribed {present.email} (was {present.status})")
        return 0
    added = store.add(args.email, name=args.name, tags=args.tag, resubscribe=args.resubscribe)
    welcome = config.sequences.welcome
    # imported here: the content reader (Markdown, YAML, Pillow) is not loaded for the other subcommands
    from broadsheet.core.content.sequence import sequence_folder

    if welcome and sequence_folder(welcome, config).is_dir():  # none before the sequence exists
        from broadsheet.data.store.sequences import enter

        enter(store, welcome, [added.email], time.time())
    else:
        welcome = ""
    print(f"added {added.email} (subscribed" + (f"; entered the sequence {welcome})" if welcome else ")"))
    return 0


def _remove(args: argparse.Namespace, store: Store, config: Config) -> int:
    store.valid_address(args.email)  # a typo is an error, not a new suppressed row
    present = store.get(args.email)
    changed = store.set_status(args.email, "unsubscribed", source="cli")
    if present is None and changed:
        print(f"{args.email.strip()} was not in the store: kept as unsubscribed, so no list mails it")
    elif present is None:
        print(f"{args.email.strip()} was forgotten at their request: it stays suppressed")
    elif changed:
        print(f"unsubscribed {present.email} (was {present.status})")
    else:  # unsubscribed already, or suppressed more strongly (bounced, complained): it stays so
        print(f"{present.email} was {present.status} already")
    return 0


def _forget(args: argparse.Namespace, store: Store, config: Config) -> int:
    from broadsheet.delivery.transports.outbox import remove_messages_to
    from broadsheet.usecases.campaign import journal_exists, open_journal_for

    key = store.key(args.email)
    erased = store.forget(args.email)
    journal_rows = 0
    if journal_exists(config):
        with open_journal_for(config) as journal:
            journal_rows = journal.forget(key)
    outbox = config.resolve(config.send.outbox_dir)  # test copies on disk: the address is in each one
    messages = remove_messages_to(outbox, lambda address: store.key(address) == key) if outbox.is_dir() else 0
    places = ([f"{journal_rows:,} send journal row(s)"] if journal_rows else []) + (
        [f"{messages:,} outbox message(s)"] if messages else [])  # fmt: skip
    also = "".join(f" and from {place}" for place in places)
    if erased:
        print(f"forgot {args.email.strip()}: its data is erased from the store{also}; a keyed hash keeps it suppressed")
    else:
        print(f"{args.email.strip()} was forgotten already; it stays suppressed"
              + (f" (erased now{also.removeprefix(' and')})" if also else ""))  # fmt: skip
    return 0


def _list(args: argparse.Namespace, store: Store, config: Config) -> int:
    count = 0
    for subscriber in store.subscribers(status=args.status, tag=args.tag):
        tags = f"  [{', '.join(subscriber.tags)}]" if subscriber.tags else ""
        print(_shown(f"{subscriber.email}  {subscriber.status}  {subscriber.name or '-'}{tags}"))
        count += 1
    print(f"{count:,} subscriber(s)", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, store: Store, config: Config) -> int:
    subscriber = store.get(args.email)
    if subscriber is None:
        if store.is_forgotten(args.email):
            print(
                f"{args.email.strip()} was forgotten at their request: only a keyed hash is kept; it stays suppressed"
            )
            return 0
        raise StoreError(f"{args.email.strip()} is not in the subscriber store", where=str(store.path),
                         fix="see who is with: broadsheet subscribers list")  # fmt: skip
    lines = [subscriber.email, f"  status   {subscriber.status}", f"  name     {subscriber.name or '-'}",
             f"  tags     {', '.join(subscriber.tags) or '-'}"]  # fmt: skip
    lines += _topic_lines(subscriber.tags, store.left_topics(subscriber.email), config.topics)
    lines += [f"  {name:8} {value}" for name, value in subscriber.fields.items()]
    lines += [f"  added    {subscriber.created} (changed {subscriber.updated})", "events:"]
    for event in store.events(subscriber.email):
        extras = [text for text in (event.campaign and f"campaign {event.campaign}", event.detail) if text]
        lines.append(f"  {event.at}  {event.kind:13} {event.source}" + (f"  ({'; '.join(extras)})" if extras else ""))
    print("\n".join(_shown(line) for line in lines))
    return 0


def _topic_lines(tags: tuple[str, ...], left: dict[str, str], topics: dict[str, str]) -> list[str]:
    """One line per topic choice: each configured topic the subscriber is tagged with (in, or left when),
    and each other topic they left (one since dropped from ``[topics]``, or a tag they no longer have)."""
    tagged = {tag.casefold() for tag in tags}
    shown = [(tag, label) for tag, label in topics.items() if tag.casefold() in tagged]
    shown += [(key, "") for key in left if key not in {tag.casefold() for tag, _ in shown}]
    lines = []
    for tag, label in shown:
        when = left.get(tag.casefold())
        named = f"{tag} ({label})" if label else tag
        lines.append(f"  topic    {named}: " + (f"left {when}" if when else "in"))
    return lines


def _shown(text: str) -> str:
    """A line as it is safe to print: control characters (a terminal's escape sequences, line breaks that
    came from a form or a CSV) shown escaped."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


ACTIONS = {
    "import": _import, "export": _export, "add": _add, "remove": _remove, "forget": _forget, "list": _list,
    "show": _show,
}  # fmt: skip
