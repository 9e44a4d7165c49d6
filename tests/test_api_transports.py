"""What every API transport must do, against each provider's local fake (real HTTP, no mocks)."""

from __future__ import annotations

import email
import email.policy
import email.utils

import pytest
from support.providers import BAD, SECRET, api, drive, make_message, make_messages  # noqa: F401

from broadsheet.core.errors import TransportAuthError, TransportError

PROVIDERS = ["postmark", "sendgrid", "mailgun", "ses", "resend"]
HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")


def delivered_once(fake, messages) -> None:
    assert sorted(fake.recipients()) == sorted(m.recipient for m in messages)


def assert_no_secret(run) -> None:
    for deliveries in run.journal.values():
        for delivery in deliveries:
            assert SECRET not in delivery.detail


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_recipient_is_sent_once_with_its_own_body_and_headers(api, provider):
    fake, transport = api(provider)
    messages = make_messages(7)
    messages[3] = make_message(3, first_name="O'Brien & Sons")  # escaped differently in the HTML
    run = drive(transport, messages, batch_size=5 if transport.max_batch > 1 else 1)
    assert {r: d.status for r, d in run.final().items()} == {m.recipient: "sent" for m in messages}
    assert all(d.message_id for d in run.final().values())
    delivered_once(fake, messages)
    by_recipient = {m.recipient: m for m in messages}
    for got in fake.delivered:
        message = by_recipient[email.utils.parseaddr(got["to"])[1]]
        if provider == "ses":
            assert got["raw"] == message.raw
            continue
        assert (got["html"], got["text"]) == (message.html, message.text)
        for name in HEADERS:
            assert got["headers"][name] == message.headers[name]
        sent_headers = {k.lower(): v for k, v in got["headers"].items()}
        if provider != "resend":  # Resend makes its own (see resend.DROP)
            assert sent_headers["message-id"] == message.headers["Message-ID"]
        assert "date" not in sent_headers and "mime-version" not in sent_headers
    assert_no_secret(run)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_invalid_recipient_fails_with_the_providers_reason_and_the_rest_is_sent(api, provider):
    fake, transport = api(provider)
    messages = make_messages(6)
    messages[2] = make_message(2, local=f"{BAD}")  # refused by the provider, not by us
    run = drive(transport, messages)
    final = run.final()
    assert final[messages[2].recipient].status == "failed"
    assert final[messages[2].recipient].detail.startswith(transport.provider)  # with its reason
    assert all(final[m.recipient].status == "sent" for i, m in enumerate(messages) if i != 2)
    delivered_once(fake, [m for i, m in enumerate(messages) if i != 2])
    assert_no_secret(run)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("answer", ["429", "500"])
def test_rate_limit_and_server_errors_are_retried(api, provider, answer):
    fake, transport = api(provider)
    fake.script = [answer]
    messages = make_messages(3)
    run = drive(transport, messages)
    assert all(d.status == "sent" for d in run.final().values())
    assert run.retry_after == ([2.0] if answer == "429" else [None])
    delivered_once(fake, messages)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refused_credentials_stop_with_a_clear_error_and_no_secret(api, provider):
    fake, transport = api(provider)
    fake.script = ["401"]
    with pytest.raises(TransportAuthError) as caught, transport:
        transport.send_batch(make_messages(1))
    text = str(caught.value)
    assert SECRET not in text
    assert "refused" in text and "HTTP 40" in text
    assert fake.delivered == []


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "ses"])
def test_no_answer_after_sending_marks_the_batch_unknown(api, provider):
    fake, transport = api(provider)
    fake.script = ["timeout"]
    messages = make_messages(2 if transport.max_batch > 1 else 1)
    with transport:
        deliveries = transport.send_batch(messages)
    assert [d.status for d in deliveries] == ["unknown"] * len(messages)
    assert "no answer" in deliveries[0].detail
    fake.wait_idle()
    delivered_once(fake, messages)  # the provider did take them: sending again could double them


def test_missing_secret_is_a_config_error_naming_the_variable(api, monkeypatch):
    from broadsheet.core.errors import ConfigError

    _, transport = api("postmark")
    monkeypatch.delenv("BROADSHEET_POSTMARK_TOKEN")
    with pytest.raises(ConfigError, match="BROADSHEET_POSTMARK_TOKEN"):
        type(transport)(transport.config)  # as soon as the transport is made
    with pytest.raises(ConfigError, match="BROADSHEET_POSTMARK_TOKEN"):
        transport.open()


@pytest.mark.parametrize("provider", ["postmark", "resend"])
def test_a_refused_sender_stops_instead_of_failing_every_recipient(api, provider):
    """Per-message answers that blame what all messages share (the From address) are not recipient failures."""
    fake, transport = api(provider)
    messages = make_messages(3)
    for message in messages:
        message.from_header = f"Weekly <{BAD}>"
    with pytest.raises(TransportError, match=r"(?i)from") as caught, transport:
        transport.send_batch(messages)
    assert not isinstance(caught.value, TransportAuthError)
    assert fake.delivered == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_name_that_needs_quotes_reaches_the_to_header_whole(api, provider):
    """SendGrid takes no bare , or ; in to.name, Resend no quoted name: each gets a form it takes."""
    fake, transport = api(provider)
    messages = make_messages(3)
    messages[1] = make_message(1, first_name='Smith, "J. R."; Jr')
    run = drive(transport, messages)
    assert all(d.status == "sent" for d in run.final().values())
    shown = {displayed(got): got for got in fake.delivered}
    assert sorted(shown) == sorted(email.utils.parseaddr(m.to_header) for m in messages)


def displayed(got: dict) -> tuple[str, str]:
    """(display name, address) of the To header the recipient gets."""
    if "raw" in got:
        to = email.message_from_bytes(got["raw"], policy=email.policy.default)["To"]
    else:
        value = email.utils.formataddr((got["name"], got["to"])) if got.get("name") else got["to"]
        to = email.policy.default.header_factory("To", value)  # encoded words decoded, quotes taken off
    [mailbox] = to.addresses
    return mailbox.display_name, mailbox.addr_spec


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend"])
def test_a_transport_keeps_no_state_of_the_requests_it_sent(api, provider):
    """What one request needs (groups, encoded JSON, the batch key) travels with it (a BatchPart), not on
    the transport: after a batch, the instance holds nothing of it."""
    _fake, transport = api(provider)
    with transport:
        before = dict(vars(transport))
        messages = make_messages(3)
        assert [d.status for d in transport.send_batch(messages, batch_key="k")] == ["sent"] * 3
        changed = {name for name, value in vars(transport).items() if before.get(name, object()) is not value}
    assert changed <= {"requests_sent", "session"}
    assert not any(
        m in (v if isinstance(v, (list, tuple, dict)) else ()) for m in messages for v in vars(transport).values()
    )
