"""Mailgun specifics: multipart, recipient-variables, %recipient.x% placeholders, unknown domain."""

from __future__ import annotations

from dataclasses import replace

import pytest
from support.providers import BAD, api, drive, make_message, make_messages  # noqa: F401

from broadsheet.core.errors import ConfigError, TransportAuthError, TransportError


def test_a_batch_is_one_call_and_everyone_gets_their_own_message(api):
    fake, transport = api("mailgun")
    messages = make_messages(250)
    messages[5].subject = "A subject of its own"
    run = drive(transport, messages)
    assert fake.calls == 1
    assert all(d.status == "sent" for d in run.final().values())
    got = {d["to"]: d for d in fake.delivered}
    for message in messages:
        mine = got[message.to_header]
        assert (mine["html"], mine["text"], mine["subject"]) == (message.html, message.text, message.subject)
        assert mine["headers"]["Message-ID"] == message.headers["Message-ID"]
        assert mine["headers"]["List-Unsubscribe"] == message.headers["List-Unsubscribe"]


def test_a_refused_recipient_is_found_by_halving_and_fails_alone(api):
    fake, transport = api("mailgun")
    messages = make_messages(8)
    messages[5] = make_message(5, local=BAD)
    run = drive(transport, messages)
    final = run.final()
    assert final[messages[5].recipient].status == "failed"
    assert "not a valid address" in final[messages[5].recipient].detail
    assert sorted(fake.recipients()) == sorted(m.recipient for i, m in enumerate(messages) if i != 5)
    assert fake.calls <= 1 + 2 * 3


def test_an_unknown_domain_stops_the_campaign(api):
    fake, transport = api("mailgun")
    fake.script = ["404"]
    with pytest.raises(TransportAuthError, match="Domain not found"), transport:
        transport.send_batch(make_messages(2))


def test_a_refused_sender_is_not_blamed_on_recipients(api):
    fake, transport = api("mailgun")
    fake.script = ["from"]
    with pytest.raises(TransportError, match="from"), transport:
        transport.send_batch(make_messages(2))
    assert fake.calls == 1


def test_the_sending_domain_is_required(api):
    _, transport = api("mailgun")
    config = replace(transport.config, mailgun=replace(transport.config.mailgun, domain=""))
    with pytest.raises(ConfigError, match="domain"):
        type(transport)(config)
