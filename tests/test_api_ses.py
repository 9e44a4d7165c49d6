"""Amazon SES v2 specifics: SigV4 checked server-side, the raw message, SES error types."""

from __future__ import annotations

import email
import email.policy

import pytest
from support.providers import ACCESS_KEY, INACTIVE, api, drive, make_message, make_messages  # noqa: F401  # noqa: F401

from broadsheet.core.errors import TransientTransportError, TransportAuthError, TransportQuotaError


def test_requests_are_signed_for_ses_and_carry_our_raw_message(api):
    fake, transport = api("ses")
    messages = make_messages(3)
    run = drive(transport, messages)
    assert fake.calls == 3 and fake.violations == []  # the fake recomputed every signature
    for message, got in zip(messages, fake.delivered, strict=False):
        assert got["raw"] == message.raw
        parsed = email.message_from_bytes(got["raw"], policy=email.policy.default)
        assert parsed["List-Unsubscribe"] == message.headers["List-Unsubscribe"]
        assert run.final()[message.recipient].message_id == got["message_id"]


def test_a_wrong_secret_key_is_refused_and_not_repeated(api, monkeypatch):
    fake, transport = api("ses")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "WRONG-KEY-456")
    with pytest.raises(TransportAuthError) as caught, transport:
        transport.send_batch(make_messages(1))
    assert fake.violations == ["signature does not match"]
    fake.violations.clear()
    assert "WRONG-KEY-456" not in str(caught.value)
    assert ACCESS_KEY not in str(caught.value)  # AWS_ACCESS_KEY_ID is a secret too (README)
    assert "SESSION-[secret]" not in str(caught.value)  # the session token blanked whole, not around the key


def test_a_rejected_message_fails_alone(api):
    _fake, transport = api("ses")
    run = drive(transport, [make_message(0, local=INACTIVE), make_message(1)])
    final = run.final()
    assert final[f"{INACTIVE}@example.com"].status == "failed"
    assert "MessageRejected" in final[f"{INACTIVE}@example.com"].detail
    assert final["reader1@example.com"].status == "sent"


def test_throttling_is_retried_and_an_unverified_domain_stops(api):
    fake, transport = api("ses")
    fake.script = ["throttle", "mailfrom"]
    with transport:
        with pytest.raises(TransientTransportError):
            transport.send_batch(make_messages(1))
        with pytest.raises(TransportAuthError, match="MailFromDomainNotVerified"):
            transport.send_batch(make_messages(1))


def test_the_daily_quota_stops_the_campaign_instead_of_retrying(api):
    fake, transport = api("ses")
    fake.script = ["quota"]
    with transport, pytest.raises(TransportQuotaError, match="daily sending quota is used up") as caught:
        transport.send_batch(make_messages(1))
    assert not isinstance(caught.value, TransportAuthError)
    assert fake.delivered == []
