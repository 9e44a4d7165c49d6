"""The runner asks the subscriber store before each batch: real journal, real store (a SQLite file or a real
PostgreSQL), outbox transport."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest
from conftest import ROOT, SAMPLE_ISSUE
from support.smtpd import write_subscribers

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose import Composer
from broadsheet.core.config import load_config
from broadsheet.core.errors import StoreError
from broadsheet.core.render import build_issue
from broadsheet.data.bulk import attached
from broadsheet.data.store import Store, postgres_list, store_path
from broadsheet.data.store.postgres_list import PostgresStoreList
from broadsheet.data.store.recipients import StoreList, StoreSuppressions
from broadsheet.data.subscriber_list import CsvList
from broadsheet.delivery.transports.base import TransportOptions
from broadsheet.delivery.transports.outbox import OutboxTransport
from broadsheet.usecases.campaign import CampaignRunner, Journal, Settings, prepare_campaign, subscriber_from_row
from broadsheet.usecases.campaign.recipients import journal_chunks


def suppressions_of(root, location) -> StoreSuppressions:
    """What a send asks before each batch, of the store at ``location`` (a SQLite file or a URL)."""
    return StoreSuppressions(root, url=location if isinstance(location, str) else "")


def store_list(root, location, **options) -> StoreList | PostgresStoreList:
    """Whom a send mails from the store at ``location``, as ``recipients_for`` picks it."""
    return PostgresStoreList(location, **options) if isinstance(location, str) else StoreList(root, **options)


@pytest.fixture
def campaign(tmp_path, monkeypatch, store_location):
    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    rendered = build_issue(SAMPLE_ISSUE, load_config(ROOT / "broadsheet.toml"))
    config = dataclasses.replace(load_config(ROOT / "broadsheet.toml"), root=tmp_path)
    people = [email for email, _ in write_subscribers(tmp_path / "list.csv", 12)]
    with Journal.for_project(tmp_path) as journal:
        record = prepare_campaign(journal, slug="x", transport="outbox", issue_dir="i", fingerprint="f",
                                  subscribers=CsvList(tmp_path / "list.csv")).record  # fmt: skip
        composer = Composer(rendered, config)
        make = lambda: CampaignRunner(  # noqa: E731
            journal, record, lambda: OutboxTransport(config, TransportOptions(slug="x")),
            composer, Settings(connections=1, batch_size=4),
            max_batch=4, suppressed=suppressions_of(tmp_path, store_location),
        )  # fmt: skip
        yield config, journal, record, make, people, store_location


def sent_to(config) -> set[str]:
    return {path.name.split("-", 1)[1][:-4] for path in (config.root / "outbox" / "x").glob("*.eml")}


def test_no_store_means_nothing_is_suppressed_and_a_store_that_appears_is_asked(tmp_path):
    check = StoreSuppressions(tmp_path)
    assert check(["ann@example.org"]) == set() and not store_path(tmp_path).exists()
    with Store.for_project(tmp_path) as store:  # as `serve` creates it while a campaign runs
        store.set_status("ann@example.org", "unsubscribed", source="one-click")
    assert check(["ann@example.org", "bob@example.org"]) == {"ann@example.org"}
    check.close()


def test_suppressed_rows_end_skipped_with_the_reason_and_the_rest_are_sent(campaign):
    config, journal, record, make, people, location = campaign
    with Store(location) as store:
        store.set_status(people[5].upper(), "unsubscribed", source="one-click")
        store.set_status(people[9], "bounced", source="webhook:postmark")
        store.add(people[11])
        store.forget(people[11])
    result = make().run()
    assert result.error is None and result.this_run["skipped"] == 3 and result.this_run["sent"] == 9
    assert sent_to(config) == set(people) - {people[5], people[9], people[11]}
    skipped = {
        row[0]: row[1] for row in journal.db.execute("SELECT email, detail FROM recipients WHERE state = 'skipped'")
    }
    assert set(skipped) == {people[5], people[9], people[11]}
    assert all("subscriber store" in detail for detail in skipped.values())
    assert journal.counts(record)["skipped"] == 3


def test_an_unsubscribe_recorded_during_the_run_is_honoured_before_the_next_batch(campaign):
    """As serve records a one-click (in its own connection) while the campaign sends: the next batch skips it."""
    config, journal, record, make, people, location = campaign
    runner = make()

    class Unsubscribing(OutboxTransport):
        def send_one(self, message):
            delivery = super().send_one(message)
            with Store(location) as store:  # after the first copy, someone of a later batch leaves
                store.set_status(people[-1], "unsubscribed", source="one-click")
            return delivery

    runner.transport_factory = lambda: Unsubscribing(config, TransportOptions(slug="x"))
    result = runner.run()
    assert result.error is None and result.this_run["skipped"] == 1 and result.this_run["sent"] == 11
    assert sent_to(config) == set(people) - {people[-1]} and journal.counts(record)["skipped"] == 1


@pytest.mark.parametrize("engine", ["sqlite"])  # a damaged file
def test_a_damaged_store_stops_the_campaign_before_anything_is_sent(campaign):
    config, journal, record, make, _people, _location = campaign
    store_path(config.root).parent.mkdir(exist_ok=True)
    store_path(config.root).write_bytes(b"this is not a database" * 200)
    result = make().run()
    assert isinstance(result.error, StoreError) and "audience.db" in str(result.error)
    assert journal.counts(record)["queued"] == 12 and sent_to(config) == set()


def _stored_list(root, location):
    """A store with what a send from it must tell apart, and the suppression file beside it."""
    with Store(location) as store:
        store.add("zoe@example.org", name="Zoë\tvan Dam", tags=["News", "art"], fields={"city": "Gent"})
        store.add("amy@example.org", name="Amy Lee", fields={"first_name": "Ames", "plan": "pro"}, tags=["news"])
        store.add("BOB@example.org", name="", tags=["art"])  # no name: no first name; not in the segment
        store.add("cy@example.org", name="Cy", tags=["news"], status="unconfirmed")
        store.add("dee@example.org", name="Dee", tags=["news"])
        store.set_status("dee@example.org", "unsubscribed", source="one-click")
        store.add("eve@example.org", name="Eve", tags=["NEWS"])  # suppressed by the file
    suppressions = root / "suppressions.csv"
    suppressions.write_text("email\nEVE@example.org\n", encoding="utf-8")
    return suppressions


@pytest.mark.parametrize("segments", [(), ("news",)])
def test_a_send_from_the_store_loads_who_a_dry_run_streams_with_what_a_csv_send_keeps(
    tmp_path, segments, store_location, monkeypatch
):
    """The journal loads the store's selection (in SQL from SQLite, streamed from PostgreSQL); a dry run
    streams the same selection: the same people with the same name, first name, tags and fields as a CSV
    row of theirs gives, and the same left-out counts, on either engine."""
    monkeypatch.setattr(postgres_list, "STREAM_PAGE", 2)  # PostgreSQL's rows cross in several pages
    suppressions = _stored_list(tmp_path, store_location)
    streamed_list = store_list(tmp_path, store_location, segments=segments, suppressions=suppressions)
    streamed = list(streamed_list)
    loaded_list = store_list(tmp_path, store_location, segments=segments, suppressions=suppressions)
    with Journal.for_project(tmp_path) as journal:
        prepared = prepare_campaign(journal, slug="x", transport="outbox", issue_dir="i", fingerprint="f",
                                    subscribers=loaded_list)  # fmt: skip
        rows = list(journal.rows(prepared.record, ("queued",)))
    loaded = [subscriber_from_row(row) for row in sorted(rows, key=lambda row: row.id)]
    zoe = Subscriber("zoe@example.org", "Zoë\tvan Dam", "Zoë", ("art", "News"), {"city": "Gent"})
    amy = Subscriber("amy@example.org", "Amy Lee", "Ames", ("news",), {"plan": "pro"})
    bob = Subscriber("BOB@example.org", "", "", ("art",), {})
    expected = [zoe, amy, bob] if not segments else [zoe, amy]
    assert streamed == expected  # in the order they joined
    assert loaded == sorted(expected, key=lambda s: s.email.lower())  # ids in address order
    assert prepared.loaded == len(expected)
    left_out = {"suppressed": 1, "unconfirmed": 1, "unsubscribed": 1, **({"not in segment": 1} if segments else {})}
    assert streamed_list.skipped == loaded_list.skipped == left_out
    # what a CSV send keeps of the same person is what the store's selection gave
    (csv_data,) = next(journal_chunks([[amy]]))[0][2:]
    assert json.loads(csv_data) == json.loads(next(row.data for row in rows if row.email == amy.email))


def test_loading_from_the_store_takes_no_lock_on_it(tmp_path):
    """The journal's load attaches the store read-only: serve's one-click unsubscribes are written meanwhile."""
    with Store.for_project(tmp_path) as store:
        store.add("ann@example.org")
    journal = Journal.for_project(tmp_path)
    with (
        journal,
        StoreList(tmp_path).selection() as selection,
        attached(journal.db, list(selection.files.values()), list(selection.files), read_only=True),
    ):
        journal.db.execute("BEGIN IMMEDIATE")  # as the load's transaction
        try:
            journal.db.execute("SELECT count(*) FROM store.subscribers").fetchone()
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                journal.db.execute("UPDATE store.subscribers SET name = 'x'")
            with Store.for_project(tmp_path) as store:  # another writer, meanwhile
                assert store.set_status("ann@example.org", "unsubscribed", source="one-click")
        finally:
            journal.db.execute("ROLLBACK")
