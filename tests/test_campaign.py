"""The campaign runner: stopping cleanly, resuming, limits, rates, backoff — with the real pipeline."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from conftest import ROOT, SAMPLE_ISSUE
from support.smtpd import Sink, smtp_server, write_subscribers

from broadsheet.core.compose import Composer, RecipientRejected
from broadsheet.core.config import Smtp, load_config
from broadsheet.core.render import build_issue
from broadsheet.data.subscriber_list import CsvList
from broadsheet.delivery.transports.base import TransportOptions
from broadsheet.delivery.transports.outbox import OutboxTransport
from broadsheet.delivery.transports.smtp import SmtpTransport
from broadsheet.usecases.campaign import CampaignRunner, Settings, prepare_campaign
from broadsheet.usecases.campaign.ratelimit import RateLimiter, TokenBucket


@pytest.fixture(scope="module")
def rendered():
    return build_issue(SAMPLE_ISSUE, load_config(ROOT / "broadsheet.toml"))


@pytest.fixture
def campaign(tmp_path, rendered, monkeypatch, open_journal):
    """(config, journal, record, composer) for 60 subscribers in a fresh project folder, the journal on each
    engine."""
    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    config = dataclasses.replace(load_config(ROOT / "broadsheet.toml"), root=tmp_path)
    write_subscribers(tmp_path / "list.csv", 60)
    journal = open_journal()
    prepared = prepare_campaign(
        journal,
        slug=rendered.slug,
        transport="t",
        issue_dir="i",
        fingerprint="f",
        subscribers=CsvList(tmp_path / "list.csv"),
    )
    yield config, journal, prepared.record, Composer(rendered, config)
    journal.close()


def runner(campaign, make_transport, **settings) -> CampaignRunner:
    _config, journal, record, composer = campaign
    return CampaignRunner(
        journal,
        record,
        make_transport,
        composer,
        Settings(**{"connections": 2, "batch_size": 5, **settings}),
        max_batch=5,
        rejected=(RecipientRejected,),
    )


def smtp_config(config, host, port):
    return dataclasses.replace(config, smtp=Smtp(host=host, port=port, security="none", username=""))


def test_stopping_finishes_in_flight_batches_and_resuming_sends_the_rest_once(campaign):
    config, journal, record, _ = campaign
    sink = Sink(delay=0.01)
    with smtp_server(sink) as (host, port):
        smtp = smtp_config(config, host, port)
        first = runner(campaign, lambda: SmtpTransport(smtp))
        threading.Thread(target=lambda: (_wait_for(lambda: len(sink.received) >= 12), first.stop.set())).start()
        result = first.run()
        assert result.interrupted
        counts = journal.counts(record)
        assert counts["sending"] == 0 and counts["queued"] > 0
        assert counts["sent"] == len(sink.received) == result.this_run["sent"]
        second = runner(campaign, lambda: SmtpTransport(smtp)).run()
    assert not second.interrupted and second.error is None
    assert journal.counts(record)["sent"] == 60
    assert set(sink.recipients().values()) == {1} and len(sink.recipients()) == 60


def test_batches_that_finish_together_are_recorded_in_one_transaction_even_when_stopping(campaign):
    """Group commit: batches finished while the journal was busy are recorded together, and a stop (Ctrl-C,
    SIGTERM) arriving then still records every one of them before the run ends."""
    config, journal, record, _ = campaign
    together = threading.Barrier(3, timeout=10)

    class Together(OutboxTransport):
        waited = False

        def send_batch(self, messages):
            if not self.waited:  # each connection's first batch finishes with the others'
                self.waited = True
                together.wait()
            return super().send_batch(messages)

    run = runner(campaign, lambda: Together(config, TransportOptions(slug="x")), connections=3)
    recorded = []
    write = journal.record

    def record_slowly(outcomes):
        outcomes = list(outcomes)
        if not recorded:  # while the first batches are written, the rest come back, then the stop
            _wait_for(lambda: len(outcomes) + 5 * run.events.qsize() >= 15)
            run.stop.set()
        recorded.append(outcomes)
        write(outcomes)

    journal.record = record_slowly
    result = run.run()
    assert result.interrupted and result.error is None
    assert sum(len(outcomes) for outcomes in recorded) == 15 and len(recorded) < 3  # three batches
    counts = journal.counts(record)
    assert (counts["sent"], counts["sending"], counts["queued"]) == (15, 0, 45)
    assert len(list((config.root / "outbox" / "x").iterdir())) == 15


def test_limit_sends_at_most_n_in_a_run(campaign):
    config, journal, record, _ = campaign
    result = runner(campaign, lambda: OutboxTransport(config, TransportOptions(slug="x")), limit=7).run()
    assert result.this_run["sent"] == 7
    assert journal.counts(record)["queued"] == 53
    assert len(list((config.root / "outbox" / "x").iterdir())) == 7


def test_rate_per_second_is_shared_by_all_workers(campaign):
    config, _journal, _record, _ = campaign
    started = time.monotonic()
    result = runner(
        campaign,
        lambda: OutboxTransport(config, TransportOptions(slug="x")),
        connections=3,
        rate_per_second=20,
        limit=30,
    ).run()
    assert result.this_run["sent"] == 30
    # a burst of 20 (one second's worth), then the other 10 at 20/s; a limit per worker would send all at once
    assert time.monotonic() - started >= 0.45


def test_an_unexpected_transport_crash_marks_its_batch_unknown_and_stops(campaign):
    config, journal, record, _ = campaign

    class Broken(OutboxTransport):
        def send_batch(self, messages):
            raise RuntimeError("boom")

    result = runner(campaign, lambda: Broken(config), connections=1).run()
    assert "boom" in str(result.error)
    counts = journal.counts(record)
    assert (counts["unknown"], counts["queued"], counts["sending"]) == (5, 55, 0)


def test_an_unexpected_compose_error_stops_the_campaign_instead_of_hanging(campaign):
    config, journal, record, composer = campaign

    class Buggy:
        def compose(self, subscriber, *, row=None):
            if subscriber.email == "reader0007@example.com":
                raise RuntimeError("compose bug")
            return composer.compose(subscriber)

    run = CampaignRunner(
        journal,
        record,
        lambda: OutboxTransport(config, TransportOptions(slug="x")),
        Buggy(),
        Settings(connections=1, batch_size=5),
        max_batch=5,
        rejected=(RecipientRejected,),
    )
    done = []
    worker = threading.Thread(target=lambda: done.append(run.run()), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done, "the campaign hung after a worker's unexpected error"
    assert "compose bug" in str(done[0].error)
    counts = journal.counts(record)
    assert (counts["sent"], counts["queued"], counts["sending"]) == (5, 55, 0)  # nothing of that batch went out


def test_many_recipients_rejected_by_compose_do_not_stop_the_campaign(campaign):
    config, journal, record, composer = campaign

    class Lacking:
        def compose(self, subscriber, *, row=None):  # the first 30 rows lack what the theme needs
            if subscriber.line <= 31:
                raise RecipientRejected("the issue template fails for this subscriber: 'company' is undefined")
            return composer.compose(subscriber)

    result = CampaignRunner(
        journal,
        record,
        lambda: OutboxTransport(config, TransportOptions(slug="x")),
        Lacking(),
        Settings(connections=2, batch_size=5),
        max_batch=5,
        rejected=(RecipientRejected,),
    ).run()
    assert result.error is None  # the server refused no one: nothing says the transport is broken
    assert (result.this_run["failed"], result.this_run["sent"]) == (30, 30)


def test_backoff_doubles_with_jitter(campaign):
    run = runner(campaign, lambda: None, retry_delay=2.0)
    assert 1.0 <= run._backoff(1) <= 3.0
    assert 8.0 <= run._backoff(4) <= 24.0


def test_token_bucket_and_limiter():
    now = [0.0]
    bucket = TokenBucket(rate=10, capacity=10, clock=lambda: now[0])
    assert bucket.wait_time(10) == 0
    bucket.take(10)
    assert bucket.wait_time(5) == pytest.approx(0.5)
    now[0] = 1.0
    assert bucket.wait_time(10) == 0
    limiter = RateLimiter(per_second=0, per_hour=3600, clock=lambda: now[0])
    assert limiter.burst() == 0 and not limiter.unlimited
    assert limiter.acquire(60) is True  # a minute's worth at once, then one a second
    assert limiter.buckets[1].wait_time(1) == pytest.approx(1.0)


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
