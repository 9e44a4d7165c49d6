"""API transports with the real rooms around them: the sample issue through Composer, and a
campaign through the runner and its journal, against the local provider fakes."""

from __future__ import annotations

import dataclasses
import email.utils

import pytest
from conftest import ROOT, SAMPLE_ISSUE
from support.providers import INACTIVE, SECRET, TIMEOUT, api, drive  # noqa: F401  # noqa: F401

from broadsheet.core.audience import Subscriber
from broadsheet.core.compose import Composer, RecipientRejected
from broadsheet.core.config import load_config
from broadsheet.core.errors import TransportAuthError
from broadsheet.core.render import build_issue
from broadsheet.data.subscriber_list import CsvList
from broadsheet.delivery.transports.base import TransportOptions
from broadsheet.delivery.transports.postmark import PostmarkTransport
from broadsheet.delivery.transports.resend import ResendTransport
from broadsheet.usecases.campaign import CampaignRunner, Journal, Settings, prepare_campaign

PROVIDERS = ["postmark", "sendgrid", "mailgun", "ses", "resend"]


@pytest.fixture(scope="module")
def rendered():
    return build_issue(SAMPLE_ISSUE, load_config(ROOT / "broadsheet.toml"))


def sample_config(transport, **changes):
    """The sample project's config with the transport's table (pointed at the fake)."""
    table = {transport.name: getattr(transport.config, transport.name)}
    return dataclasses.replace(load_config(ROOT / "broadsheet.toml"), **table, **changes)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_composed_sample_issue_arrives_as_composed(api, provider, rendered, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    fake, transport = api(provider)
    transport.config = sample_config(transport)
    composer = Composer(rendered, transport.config)
    people = [(f"reader{i}@example.com", f"Zoë{i} O'Hara") for i in range(12)]
    messages = [
        composer.compose(Subscriber(email=e, name=n, first_name=n.split()[0], fields={"email": e}, line=i))
        for i, (e, n) in enumerate(people)
    ]
    run = drive(transport, messages)
    assert all(d.status == "sent" for d in run.final().values())
    assert sorted(fake.recipients()) == sorted(e for e, _ in people)
    if provider in ("sendgrid", "mailgun"):
        assert fake.calls == 1  # one shared body for all twelve
    by_address = {email.utils.parseaddr(d["to"])[1]: d for d in fake.delivered}
    for message in messages:
        got = by_address[message.recipient]
        if provider == "ses":
            assert got["raw"] == message.raw
        else:
            assert (got["html"], got["text"]) == (message.html, message.text)
            assert got["headers"]["List-Unsubscribe"] == message.headers["List-Unsubscribe"]


@pytest.fixture
def postmark_campaign(api, tmp_path, rendered, monkeypatch):
    """(fake, runner factory, journal, record) for 40 subscribers, one of them inactive at Postmark."""
    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    fake, transport = api("postmark")
    config = sample_config(transport, root=tmp_path)
    emails = [f"{INACTIVE}7@example.com" if i == 7 else f"reader{i:02d}@example.com" for i in range(40)]
    (tmp_path / "list.csv").write_text("email,name\n" + "".join(f"{e},Reader {i}\n" for i, e in enumerate(emails)))
    journal = Journal.for_project(tmp_path)
    record = prepare_campaign(
        journal,
        slug=rendered.slug,
        transport="postmark",
        issue_dir="i",
        fingerprint="f",
        subscribers=CsvList(tmp_path / "list.csv"),
    ).record
    composer = Composer(rendered, config)

    def runner() -> CampaignRunner:
        return CampaignRunner(
            journal,
            record,
            lambda: PostmarkTransport(config, TransportOptions(timeout=TIMEOUT)),
            composer,
            Settings(connections=2, batch_size=8, retry_delay=0.01),
            max_batch=500,
            rejected=(RecipientRejected,),
        )

    yield fake, runner, journal, record, emails
    journal.close()


def test_a_campaign_through_postmark_journals_every_recipient_once(postmark_campaign):
    fake, runner, journal, record, emails = postmark_campaign
    fake.script = ["500"]
    result = runner().run()
    assert result.error is None
    counts = journal.counts(record)
    assert (counts["sent"], counts["failed"]) == (39, 1)
    assert sum(counts.values()) == 40
    [(address, state, _, detail, _)] = list(journal.problems(record))
    assert (address, state) == (emails[7], "failed") and "406" in detail
    assert sorted(fake.recipients()) == sorted(e for e in emails if INACTIVE not in e)


def test_refused_credentials_stop_the_campaign_and_keep_everyone_queued(postmark_campaign):
    fake, runner, journal, record, _ = postmark_campaign
    fake.script = ["401"] * 4
    result = runner().run()
    assert isinstance(result.error, TransportAuthError) and SECRET not in str(result.error)
    counts = journal.counts(record)
    assert counts["queued"] == 40 and counts["failed"] == counts["sent"] == 0


def test_a_resend_batch_composed_again_for_its_retry_is_not_delivered_twice(api, rendered, monkeypatch):
    """The runner composes a batch again for each attempt: the payload, and so the key, must not change."""
    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    fake, transport = api("resend")
    transport.config = sample_config(transport)
    composer = Composer(rendered, transport.config)
    people = [Subscriber(email=f"r{i}@example.com", name=f"R {i}", first_name="R", fields={}, line=i) for i in range(3)]
    fake.script = ["timeout"]
    with transport:
        first = transport.send_batch([composer.compose(p) for p in people])  # sent again at once
        deliveries = transport.send_batch([composer.compose(p) for p in people])  # as after a crash
    assert [d.status for d in first] == [d.status for d in deliveries] == ["sent"] * 3
    assert sorted(fake.recipients()) == [p.email for p in people]


def test_an_unanswered_resend_batch_in_a_campaign_reaches_everyone_once(api, tmp_path, rendered, monkeypatch):
    """The runner claims retried rows again in another order and with other rows, so only the very
    same request, with its key, is safe to send again: the transport retries it itself."""
    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    fake, transport = api("resend")
    config = sample_config(transport, root=tmp_path)
    emails = [f"reader{i:02d}@example.com" for i in range(11)]
    (tmp_path / "list.csv").write_text("email,name\n" + "".join(f"{e},Reader {i}\n" for i, e in enumerate(emails)))
    journal = Journal.for_project(tmp_path)
    record = prepare_campaign(
        journal,
        slug=rendered.slug,
        transport="resend",
        issue_dir="i",
        fingerprint="f",
        subscribers=CsvList(tmp_path / "list.csv"),
    ).record
    composer = Composer(rendered, config)
    fake.script = ["timeout"]
    runner = CampaignRunner(
        journal,
        record,
        lambda: ResendTransport(config, TransportOptions(timeout=TIMEOUT)),
        composer,
        Settings(connections=1, batch_size=10, retry_delay=0.01),
        max_batch=100,
        rejected=(RecipientRejected,),
    )
    result = runner.run()
    fake.wait_idle()
    journal.close()
    assert result.error is None
    assert sorted(fake.recipients()) == emails  # once each


def test_a_used_up_ses_quota_stops_the_campaign_as_a_quota_error_keeping_the_rest_queued(
    api, tmp_path, rendered, monkeypatch
):
    from broadsheet.core.errors import TransportQuotaError
    from broadsheet.delivery.transports.ses import SesTransport

    monkeypatch.setenv("BROADSHEET_SECRET", "s-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    fake, transport = api("ses")
    config = sample_config(transport, root=tmp_path)
    (tmp_path / "list.csv").write_text("email\n" + "".join(f"reader{i:02d}@example.com\n" for i in range(12)))
    with Journal.for_project(tmp_path) as journal:
        record = prepare_campaign(
            journal,
            slug=rendered.slug,
            transport="ses",
            issue_dir="i",
            fingerprint="f",
            subscribers=CsvList(tmp_path / "list.csv"),
        ).record
        fake.script = ["ok", "ok", "ok", "quota"]
        result = CampaignRunner(
            journal,
            record,
            lambda: SesTransport(config, TransportOptions(timeout=TIMEOUT)),
            Composer(rendered, config),
            Settings(connections=1, retry_delay=0.01),
        ).run()
        counts = journal.counts(record)
    assert isinstance(result.error, TransportQuotaError) and not isinstance(result.error, TransportAuthError)
    assert "quota" in str(result.error)
    assert (counts["sent"], counts["queued"], counts["failed"], counts["unknown"]) == (3, 9, 0, 0)
    assert len(fake.delivered) == 3
