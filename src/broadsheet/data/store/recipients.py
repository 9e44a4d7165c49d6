"""Who a send mails: the store, or a CSV filtered through the store, with the suppression file either way.

``recipients_for`` makes the choice (the store when no list is named and it has subscribers), so the
commands do not. Each answer streams Subscribers and has ``path``, ``suppressions``, ``problems``,
``skipped`` and ``fingerprint()`` as ``CsvList`` has. ``StoreSuppressions`` is what a running
campaign asks before each batch.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from broadsheet.core.audience import JournalLoader, RowProblem, Subscriber, first_word, list_fingerprint
from broadsheet.core.audience.addresses import AddressChecker
from broadsheet.core.audience.csvfile import CsvFile, open_csv
from broadsheet.core.audience.model import Selection
from broadsheet.core.config import Config
from broadsheet.core.content.mergetags import STANDARD_FIELDS
from broadsheet.core.errors import AudienceError, BroadsheetError
from broadsheet.data.subscriber_list import CsvList

from ..bulk import attached
from ..db.ledger import Ledger
from ..subscriber_list import check_segments, suppression_keys
from .postgres_list import PostgresStoreList
from .store import PAGE, Store, store_is_set_up, store_location, store_path

LEFT_OUT_BY_STORE = "unsubscribed, bounced, complained or forgotten in the store"
SQL_FUNCTIONS: Mapping[str, Callable[[str], str]] = {"first_word": first_word}  # what StoreList's SQL calls


@dataclass(frozen=True)
class Audience:
    """Who a send mails (``recipients``) and ``rule``, the one line that says how they were chosen."""

    recipients: SendList
    rule: str
    problems: list[RowProblem] = field(default_factory=list)  # bad rows of the list imported into the store


def recipients_for(
    config: Config, list_file: Path | None, segments: Sequence[str], *, import_list: bool = True
) -> Audience:
    """The recipients of a send, by one rule, said on every send:

    - ``--list FILE``: that file, less whom the store has unsubscribed, bounced, complained or forgotten;
    - else, when the store has anyone: the store, with ``[send] list`` imported into it first (new
      addresses added, the list's opt-outs applied, never a resubscribe: the store's suppressions win;
      skipped while the file is unchanged since its last import; only counted when ``import_list`` is
      false, as for a dry run);
    - else ``[send] list`` (checked against the store's suppressions when there is a store file).

    A store in PostgreSQL is read the same way (``PostgresStoreList``), into the SQLite journal."""
    suppressions = suppression_file(config)
    has_store = store_is_set_up(config)  # a damaged one is an error (StoreError), never ignored
    if list_file is None and has_store and _has_subscribers(config):
        listed = Path(config.resolve(config.send.list))
        recipients: StoreList | PostgresStoreList
        if config.database.url:
            recipients = PostgresStoreList(config.database.url, segments=segments, suppressions=suppressions)
        else:
            recipients = StoreList(config.root, segments=segments, suppressions=suppressions)
        if not listed.is_file():
            return Audience(recipients, f"audience: the subscriber store ([send] list {listed.name} does not exist)")
        return _store_with_list(recipients, store_location(config), listed, import_list=import_list)
    path = Path(list_file if list_file is not None else config.resolve(config.send.list))
    fix = "pass --list FILE, set send.list, or fill the store: broadsheet subscribers import FILE.csv"
    csv_list = csv_recipients(path, config, segments, fix=fix)
    named = f"{path.name} (--list)" if list_file is not None else f"{path.name} ([send] list)"
    if not has_store:
        return Audience(csv_list, f"audience: {named}; there is no subscriber store")
    others = "; the store's own subscribers are not mailed" if list_file is not None else ""
    rule = f"audience: {named}, less whom the subscriber store has unsubscribed, bounced or complained{others}"
    return Audience(CheckedCsvList(csv_list, store_location(config)), rule)


def _store_with_list(
    recipients: StoreList | PostgresStoreList, location: Path | str, listed: Path, *, import_list: bool
) -> Audience:
    """The store as the audience, with the configured list imported into it first (or only counted)."""
    from .importer import import_list as import_into

    head = f"audience: the subscriber store, with {listed.name} ([send] list) imported into it first"
    tail = "the store's unsubscribes, bounces and complaints win"
    problems: list[RowProblem] = []
    with Store(location) as store:
        if not import_list:
            new = _new_addresses(store, listed)
            return Audience(recipients, f"{head} ({new:,} new address(es) a send would import; {tail})")
        report = import_into(store, listed, list_fingerprint(listed), on_problem=problems.append)
    if report is None:
        return Audience(recipients, f"{head} (unchanged since it was last imported; {tail})")
    bad = f", {report.problems:,} bad row(s) skipped" if report.problems else ""
    return Audience(recipients, f"{head} ({report.added:,} new address(es){bad}; {tail})", problems)


def _new_addresses(store: Store, path: Path) -> int:
    """How many addresses the list has that the store does not know (nor has forgotten)."""
    new = 0
    for chunk in CsvList(path).chunks():
        emails = [subscriber.email for subscriber in chunk]
        with store._lock:
            known = {key for (key,) in store.select_in(
                "SELECT email_key FROM subscribers WHERE email_key IN ({})", [store.key(e) for e in emails]
            )}  # fmt: skip
        forgotten = {e for e in emails if store.key(e) not in known and store.is_forgotten(e)}
        new += sum(1 for email in emails if store.key(email) not in known and email not in forgotten)
    return new


def find_subscriber(config: Config, email: str, *, list_file: Path | None = None) -> Subscriber:
    """Whom ``preview --as`` and ``send --test --as`` personalise as: the store's subscribed subscriber with
    this address, else the list's (``list_file``, else send.list). AudienceError when neither has one."""
    if Store.exists_for_config(config):
        with Store.for_config(config) as store:
            stored = store.get(email)
        if stored is not None and stored.status == "subscribed":
            first_name = stored.fields.get("first_name", "") or first_word(stored.name)
            fields = {name: value for name, value in stored.fields.items() if name != "first_name"}
            return Subscriber(stored.email, stored.name, first_name, stored.tags, fields)
    path = Path(list_file if list_file is not None else config.resolve(config.send.list))
    if path.exists():
        wanted = email.strip().lower()
        for subscriber in CsvList(path):
            if subscriber.email.lower() == wanted:
                return subscriber
    raise AudienceError(
        f"{email} is not a subscribed address in the store or the list ({path.name})",
        where=str(path),
        fix="pick a subscriber's address (broadsheet subscribers list), or leave out --as",
    )


def first_recipient(config: Config, list_file: Path | None, segments: Sequence[str]) -> Subscriber | None:
    """The first of whom a send would mail; None when there is no one yet (an empty list, or neither a
    list file nor a store with subscribers, as in a new project). A named ``list_file`` must exist."""
    no_list = list_file is None and not config.resolve(config.send.list).exists()
    if no_list and not (store_is_set_up(config) and _has_subscribers(config)):
        return None
    for subscriber in recipients_for(config, list_file, segments, import_list=False).recipients:
        return subscriber
    return None


def csv_recipients(path: Path, config: Config, segments: Sequence[str], *, fix: str | None = None) -> CsvList:
    """The CSV list at ``path`` as a send reads it, with the config's suppression file when it exists."""
    if not path.exists():
        raise AudienceError("subscriber list not found", where=str(path), fix=fix)
    open_csv(path).close()  # a FIFO, a device, a folder: one line saying it is not a regular file
    return CsvList(path, segments=segments, suppressions=suppression_file(config))


def suppression_file(config: Config) -> Path | None:
    """``[send] suppressions`` when that file exists (a missing one suppresses no one; one that is not a
    regular file is an error when read, never silently no one)."""
    path = config.resolve(config.send.suppressions) if config.send.suppressions else None
    return path if path is not None and path.exists() else None


def _has_subscribers(config: Config) -> bool:
    with Store.for_config(config) as store:
        return store.count() > 0


class StoreList:
    """The store's subscribed subscribers, less segments and the suppression file; a segment's tag counts
    only for those who have not left it as a topic (``[topics]``, the unsubscribe page).

    Who they are is one SQL selection (``_rows``), with what a send keeps of each (the journal's data:
    name, first name, tags, fields): a send loads it into its journal with no Python per row
    (``selection``, in address order); a dry run streams it (iterating, in the order they joined).
    """

    def __init__(self, root: Path, *, segments: Sequence[str] = (), suppressions: Path | None = None):
        self.root = root
        self.path = store_path(root)
        self.segments = frozenset(tag.casefold() for tag in segments)
        self.suppressions = suppressions
        self.problems: list[RowProblem] = []
        self.skipped: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def selection(self) -> Iterator[Selection]:
        """Whom a send mails, for the journal to load (``Journal.load_selected``): the store and the
        suppression file's ledger attached as ``store`` and ``ledger``; ``skipped`` is counted on leaving."""
        self.check_segments()
        with Ledger() as ledger:
            ledger.add_suppressed(suppression_keys(self.suppressions, AddressChecker()))
            files = {"store": self.path, "ledger": ledger.path}
            query = self._rows("store") + " ORDER BY s.email_key"  # the UNIQUE index's order: no sort
            yield Selection(query, files, self._segments(), SQL_FUNCTIONS)
            with Store.for_project(self.root) as store, _attached_ledger(store, ledger):
                self.skipped = self._count_skipped(store)

    def load_into(self, loader: JournalLoader) -> int:
        """The store's selection into a journal, in SQL (``selection``)."""
        with self.selection() as selection:
            return loader.selected(selection)

    def __iter__(self) -> Iterator[Subscriber]:
        """The same subscribers as ``selection``, in the order they joined, a page at a time."""
        self.skipped = collections.Counter()
        self.check_segments()
        with Ledger() as ledger, Store.for_project(self.root) as store, _attached_ledger(store, ledger):
            ledger.add_suppressed(suppression_keys(self.suppressions, AddressChecker()))
            query = self._rows("main") + f" AND s.id > :last ORDER BY s.id LIMIT {PAGE}"
            last = 0
            while True:
                with store._lock:
                    page = store.db.execute(query, {**self._segments(), "last": last}).fetchall()
                for _, email, line, data in page:
                    name, first_name, tags, fields = json.loads(data)
                    yield Subscriber(email, name, first_name, tuple(tags), fields, line)
                if len(page) < PAGE:
                    break
                last = page[-1][0]
            self.skipped = self._count_skipped(store)

    def check_segments(self) -> None:
        """AudienceError when a segment is a tag no subscriber of the store has (a typo would mail no one)."""
        if not self.segments:
            return
        with Store.for_project(self.root) as store, store._lock:
            found = "SELECT 1 FROM tags WHERE tag_key = ? LIMIT 1"  # stops at the first: a real tag is quick
            if all(store.db.execute(found, (tag,)).fetchone() for tag in self.segments):
                return
            tags = [tag for (tag,) in store.db.execute("SELECT min(tag) FROM tags GROUP BY tag_key")]
        check_segments(self.segments, tags, where=str(self.path))

    def _rows(self, schema: str) -> str:
        """SQL: (id, email, line, data) of each subscriber of ``schema`` a send mails; data is the journal's
        JSON [name, first name, tags, fields] (``campaign.recipients.journal_chunks`` for a CSV's rows):
        the first name is the ``first_name`` field, else the name's first word; tags in their keys' order."""
        return (
            "SELECT s.id AS id, s.email AS email, 0 AS line, json_array(s.name,"
            " CASE WHEN json_extract(s.fields, '$.first_name') <> '' THEN json_extract(s.fields, '$.first_name')"
            " ELSE first_word(s.name) END,"
            f" json((SELECT json_group_array(tag) FROM (SELECT tag FROM {schema}.tags t WHERE t.subscriber = s.id"
            " ORDER BY t.tag_key))),"
            " json(json_remove(s.fields, '$.first_name'))) AS data"
            f" FROM {schema}.subscribers s WHERE s.status = 'subscribed' AND {self._kept(schema)}"
        )

    def _kept(self, schema: str) -> str:
        """SQL: ``s`` is neither in the suppression file nor (with segments) outside them."""
        kept = "NOT EXISTS (SELECT 1 FROM ledger.suppressed x WHERE x.key = s.email_key)"
        if self.segments:
            kept += f" AND {self._in_segment(schema)}"
        return kept

    def _in_segment(self, schema: str) -> str:
        """SQL: ``s`` has one of the segments' tags and has not left that topic (``topic_choices``)."""
        marks = ", ".join(f":segment{n}" for n in range(len(self.segments)))  # a list SQLite looks up once
        return (
            f"EXISTS (SELECT 1 FROM {schema}.tags t WHERE t.subscriber = s.id AND t.tag_key IN ({marks})"
            f" AND NOT EXISTS (SELECT 1 FROM {schema}.topic_choices c WHERE c.subscriber = s.id"
            " AND c.topic_key = t.tag_key))"
        )

    def _segments(self) -> dict[str, str]:
        """The named values of ``_in_segment``."""
        return {f"segment{n}": tag for n, tag in enumerate(sorted(self.segments))}

    def _count_skipped(self, store: Store) -> collections.Counter[str]:
        """Why the store's other subscribers are not mailed (the suppression file's ledger attached)."""
        skipped: collections.Counter[str] = collections.Counter()
        db = store.db
        subscribed = "FROM subscribers s WHERE s.status = 'subscribed'"
        suppressed = "EXISTS (SELECT 1 FROM ledger.suppressed x WHERE x.key = s.email_key)"
        with store._lock:
            if count := db.execute(f"SELECT count(*) {subscribed} AND {suppressed}").fetchone()[0]:
                skipped["suppressed"] = count
            if self.segments:
                query = f"SELECT count(*) {subscribed} AND NOT {suppressed} AND NOT {self._in_segment('main')}"
                if count := db.execute(query, self._segments()).fetchone()[0]:
                    skipped["not in segment"] = count
            counts = dict(db.execute("SELECT status, count(*) FROM subscribers GROUP BY status").fetchall())
        for status in ("unconfirmed", "unsubscribed", "bounced", "complained"):
            if counts.get(status):
                skipped[status] += counts[status]
        return skipped

    def fingerprint(self) -> str:
        """Changes whenever who is subscribed (or with what) changes, or the suppression file or segments do."""
        with Store.for_project(self.root) as store:
            revision = store.revision()
        suppressions = list_fingerprint(self.suppressions) if self.suppressions is not None else "-"
        text = f"store|{revision}|{suppressions}|{','.join(sorted(self.segments))}"
        return hashlib.sha256(text.encode()).hexdigest()


class CheckedCsvList:
    """A CSV list, less everyone the store knows as unsubscribed, bounced, complained or forgotten."""

    def __init__(self, subscribers: CsvList, store: Path | str):
        self.subscribers = subscribers
        self.store = store  # the store's file or URL (``store_location``)
        self.left_out = 0

    @property
    def path(self) -> Path:
        return self.subscribers.path

    @property
    def suppressions(self) -> Path | None:
        return self.subscribers.suppressions

    @property
    def problems(self) -> list[RowProblem]:
        return self.subscribers.problems

    @property
    def skipped(self) -> collections.Counter[str]:
        both = collections.Counter(self.subscribers.skipped)
        if self.left_out:
            both[LEFT_OUT_BY_STORE] += self.left_out
        return both

    def fingerprint(self) -> str:
        return self.subscribers.fingerprint()  # a later unsubscribe is caught when its batch is claimed

    def __iter__(self) -> Iterator[Subscriber]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[Subscriber]]:
        """The list's chunks, less whom the store suppresses (asked a chunk at a time)."""
        self.left_out = 0
        with Store(self.store) as store:
            yield from self.checked(self.subscribers.chunks(), store)

    def load_into(self, loader: JournalLoader) -> int:
        """The list's ``load_into``, less whom the store suppresses."""
        self.left_out = 0
        with Store(self.store) as store:
            return self.subscribers.load_into(loader, kept=lambda chunks: self.checked(chunks, store))

    def checked(self, chunks: Iterable[list[Subscriber]], store: Store) -> Iterator[list[Subscriber]]:
        """``chunks`` less whom ``store`` suppresses, counted in ``left_out``."""
        for chunk in chunks:
            gone = store.suppressed(subscriber.email for subscriber in chunk)
            if gone:
                kept = [subscriber for subscriber in chunk if subscriber.email not in gone]
                self.left_out += len(chunk) - len(kept)
                chunk = kept
            if chunk:
                yield chunk


class StoreSuppressions:
    """Callable: which of the given addresses the store suppresses now. Opens the store when it appears
    (``serve`` may create it while a campaign runs); no store, no suppression."""

    def __init__(self, root: Path, *, url: str = ""):
        """The project's SQLite store, or the PostgreSQL one at ``url`` (``for_config``)."""
        self.root = root
        self.url = url
        self._store: Store | None = None

    @classmethod
    def for_config(cls, config: Config) -> StoreSuppressions:
        return cls(config.root, url=config.database.url)

    def __call__(self, emails: list[str]) -> set[str]:
        if self._store is None:
            if self.url:
                self._store = Store(self.url)  # StoreError when the server is gone: the campaign stops
            elif not store_path(self.root).is_file():
                return set()
            else:
                self._store = Store.for_project(self.root)  # StoreError for a damaged file: the campaign stops
        return self._store.suppressed(emails)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def list_fields(list_path: Path) -> frozenset[str] | None:
    """The fields a subscriber of the CSV list has (the standard ones and every extra column); None if unreadable."""
    try:
        with open_csv(list_path) as stream:
            header = CsvFile(list_path, stream).header
    except (OSError, BroadsheetError):
        return None
    return frozenset(STANDARD_FIELDS) | {name for name in header if name and name.lower() not in ("status", "tags")}


def audience_fields(config: Config) -> frozenset[str] | None:
    """What merge tags may name: when ``send`` would mail the store, its fields and those of the list a send
    imports into it; else the CSV list's."""
    listed = list_fields(config.resolve(config.send.list))
    if Store.exists_for_config(config):  # the only subscriber data lint sees: its command passes these in
        with Store.for_config(config) as store:
            if store.count():
                return frozenset(STANDARD_FIELDS) | frozenset(store.field_names()) | (listed or frozenset())
    return listed


@contextlib.contextmanager
def _attached_ledger(store: Store, ledger: Ledger) -> Iterator[None]:
    """``ledger`` attached to ``store``'s connection as ``ledger``, with the SQL functions of a selection
    (``StoreList``)."""
    for name, function in SQL_FUNCTIONS.items():
        store.db.create_function(name, 1, function, deterministic=True)
    with attached(store.db, [ledger.path], ["ledger"]):  # only read here; a URI needs a connection opened for one
        yield


# who a send mails: what recipients_for gives
SendList: TypeAlias = CsvList | StoreList | PostgresStoreList | CheckedCsvList
