"""Who a send mails: the store, or a CSV filtered through the store, with the suppression file either way.

``recipients_for`` makes the choice (the store when no list is named and it has subscribers), so the
commands do not. Each answer streams Subscribers and has ``path``, ``suppressions``, ``problems``,
``skipped`` and ``fingerprint()`` as ``SubscriberList`` has. ``StoreSuppressions`` is what a running
campaign asks before each batch.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeAlias

from ..audience import RowProblem, Subscriber, SubscriberList, list_fingerprint
from ..audience.addresses import AddressChecker
from ..audience.ledger import Ledger
from ..audience.subscriber_list import suppression_keys
from ..config import Config
from ..errors import AudienceError
from .store import Store, StoredSubscriber, store_path

CHECK_CHUNK = 1000  # CSV addresses asked of the store at once
LEFT_OUT_BY_STORE = "unsubscribed, bounced, complained or forgotten in the store"


def recipients_for(config: Config, list_file: Path | None, segments: Sequence[str]) -> Recipients:
    """The recipients of a send: ``--list FILE`` (or send.list when the store is empty) checked against the
    store when there is one, else the store's subscribed subscribers."""
    suppressions = suppression_file(config)
    has_store = store_path(config.root).is_file()  # a damaged one is an error (StoreError), never ignored
    if list_file is None and has_store and _has_subscribers(config.root):
        return StoreList(config.root, segments=segments, suppressions=suppressions)
    path = Path(list_file if list_file is not None else config.resolve(config.send.list))
    fix = "pass --list FILE, set send.list, or fill the store: broadsheet subscribers import FILE.csv"
    csv_list = csv_recipients(path, config, segments, fix=fix)
    return CheckedList(csv_list, config.root) if has_store else csv_list


def csv_recipients(path: Path, config: Config, segments: Sequence[str], *, fix: str | None = None) -> SubscriberList:
    """The CSV list at ``path`` as a send reads it, with the config's suppression file when it exists."""
    if not path.is_file():
        raise AudienceError("subscriber list not found", where=str(path), fix=fix)
    return SubscriberList(path, segments=segments, suppressions=suppression_file(config))


def suppression_file(config: Config) -> Path | None:
    """``[send] suppressions`` when that file exists (a missing one suppresses no one)."""
    path = config.resolve(config.send.suppressions) if config.send.suppressions else None
    return path if path is not None and path.is_file() else None


def _has_subscribers(root: Path) -> bool:
    with Store.for_project(root) as store:
        return store.count() > 0


class StoreList:
    """The store's subscribed subscribers (in the order they joined), less segments and the suppression file."""

    def __init__(self, root: Path, *, segments: Sequence[str] = (), suppressions: Path | None = None):
        self.root = root
        self.path = store_path(root)
        self.segments = frozenset(tag.casefold() for tag in segments)
        self.suppressions = suppressions
        self.problems: list[RowProblem] = []
        self.skipped: collections.Counter[str] = collections.Counter()

    def __iter__(self) -> Iterator[Subscriber]:
        self.skipped = collections.Counter()
        with Ledger() as ledger, Store.for_project(self.root) as store:  # the suppression file on disk
            ledger.add_suppressed(suppression_keys(self.suppressions, AddressChecker()))
            stream = store.subscribers(status="subscribed")
            while chunk := list(itertools.islice(stream, CHECK_CHUNK)):
                suppressed = ledger.suppressed([stored.email.lower() for stored in chunk])
                for stored in chunk:
                    reason = self._left_out(stored, suppressed)
                    if reason:
                        self.skipped[reason] += 1
                        continue
                    yield as_subscriber(stored)
            for status in ("unconfirmed", "unsubscribed", "bounced", "complained"):
                if count := store.count(status):
                    self.skipped[status] += count

    def _left_out(self, stored: StoredSubscriber, suppressed: set[str]) -> str:
        if stored.email.lower() in suppressed:
            return "suppressed"
        if self.segments and not any(tag.casefold() in self.segments for tag in stored.tags):
            return "not in segment"
        return ""

    def fingerprint(self) -> str:
        """Changes whenever who is subscribed (or with what) changes, or the suppression file or segments do."""
        with Store.for_project(self.root) as store:
            revision = store.revision()
        suppressions = list_fingerprint(self.suppressions) if self.suppressions is not None else "-"
        text = f"store|{revision}|{suppressions}|{','.join(sorted(self.segments))}"
        return hashlib.sha256(text.encode()).hexdigest()


class CheckedList:
    """A CSV list, less everyone the store knows as unsubscribed, bounced, complained or forgotten."""

    def __init__(self, subscribers: SubscriberList, root: Path):
        self.subscribers = subscribers
        self.root = root
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

    @property
    def deduplicate(self) -> bool:
        return self.subscribers.deduplicate

    @deduplicate.setter
    def deduplicate(self, value: bool) -> None:
        self.subscribers.deduplicate = value

    def count_duplicates(self, count: int) -> None:
        self.subscribers.count_duplicates(count)

    def __iter__(self) -> Iterator[Subscriber]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[Subscriber]]:
        """The list's chunks, less whom the store suppresses (asked a chunk at a time)."""
        self.left_out = 0
        with Store.for_project(self.root) as store:
            yield from self.checked(self.subscribers.chunks(), store)

    def checked(self, chunks: Iterable[list[Subscriber]], store: Store) -> Iterator[list[Subscriber]]:
        """``chunks`` less whom ``store`` suppresses, counted in ``left_out`` (also for a part of the list
        read by another process: ``campaign.parts``)."""
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

    def __init__(self, root: Path):
        self.root = root
        self._store: Store | None = None

    def __call__(self, emails: list[str]) -> set[str]:
        if self._store is None:
            if not store_path(self.root).is_file():
                return set()
            self._store = Store.for_project(self.root)  # StoreError for a damaged file: the campaign stops
        return self._store.suppressed(emails)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def as_subscriber(stored: StoredSubscriber) -> Subscriber:
    """A stored subscriber as the audience room hands one on (the fields the templates see)."""
    first_name = stored.fields.get("first_name") or (stored.name.split() or [""])[0]
    fields = {name: value for name, value in stored.fields.items() if name != "first_name"}
    return Subscriber(stored.email, stored.name, first_name, stored.tags, fields)


Recipients: TypeAlias = SubscriberList | StoreList | CheckedList  # what recipients_for gives
