"""The runner asks the subscriber store before each batch: real journal, real store file, outbox transport."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import ROOT, SAMPLE_ISSUE
from support.smtpd import write_subscribers

from broadsheet.audience import SubscriberList
from broadsheet.campaign import CampaignRunner, Journal, Settings, prepare_campaign
from broadsheet.compose import Composer
from broadsheet.config import load_config
from broadsheet.errors import StoreError
from broadsheet.render import build_issue
from broadsheet.store import Store, store_path
from broadsheet.store.recipients import StoreSuppressions
from broadsheet.transports.base import TransportOptions
from broadsheet.transports.outbox import OutboxTransport


@pytest.fixture
def campaign(tmp_path, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "s")
    rendered = build_issue(SAMPLE_ISSUE, load_config(ROOT / "broadsheet.toml"))
    config = dataclasses.replace(load_config(ROOT / "broadsheet.toml"), root=tmp_path)
    people = [email for email, _ in write_subscribers(tmp_path / "list.csv", 12)]
    with Journal.for_project(tmp_path) as journal:
        record = prepare_campaign(journal, slug="x", transport="outbox", issue_dir="i", fingerprint="f",
                                  subscribers=SubscriberList(tmp_path / "list.csv")).record  # fmt: skip
        composer = Composer(rendered, config)
        make = lambda: CampaignRunner(  # noqa: E731
            journal, record, lambda: OutboxTransport(config, TransportOptions(slug="x")),
            composer, Settings(connections=1, batch_size=4),
            max_batch=4, suppressed=StoreSuppressions(tmp_path),
        )  # fmt: skip
        yield config, journal, record, make, people


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
    config, journal, record, make, people = campaign
    with Store.for_project(config.root) as store:
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


def test_a_damaged_store_stops_the_campaign_before_anything_is_sent(campaign):
    config, journal, record, make, _people = campaign
    store_path(config.root).parent.mkdir(exist_ok=True)
    store_path(config.root).write_bytes(b"this is not a database" * 200)
    result = make().run()
    assert isinstance(result.error, StoreError) and "audience.db" in str(result.error)
    assert journal.counts(record)["queued"] == 12 and sent_to(config) == set()
