"""Postmark specifics: one call per 500, the 50 MB and 10 MB limits, per-message ErrorCodes."""

from __future__ import annotations

import pytest
from support.providers import INACTIVE, api, drive, make_message, make_messages  # noqa: F401

from broadsheet.core.errors import TransportAuthError, TransportError
from broadsheet.delivery.transports import postmark
from broadsheet.delivery.transports.http import json_bytes


def test_a_full_batch_is_one_call_with_postmarks_fields(api):
    fake, transport = api("postmark")
    messages = make_messages(500, filler=1)
    run = drive(transport, messages)
    assert fake.calls == 1 and len(fake.delivered) == 500
    assert all(d.status == "sent" for d in run.final().values())
    first = fake.delivered[0]
    assert first["reply_to"] == "Editors <editors@news.example.org>"
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Reply-To" not in first["headers"]


def test_inactive_recipient_is_failed_with_code_406(api):
    fake, transport = api("postmark")
    messages = [make_message(0), make_message(1, local=INACTIVE), make_message(2)]
    run = drive(transport, messages)
    final = run.final()
    assert final[messages[1].recipient].status == "failed"
    assert "406" in final[messages[1].recipient].detail and "inactive" in final[messages[1].recipient].detail
    assert [final[m.recipient].status for m in (messages[0], messages[2])] == ["sent", "sent"]
    assert len(fake.delivered) == 2


def test_batches_over_the_size_limit_go_out_in_several_calls(api, monkeypatch):
    fake, transport = api("postmark")
    messages = make_messages(10, filler=2)
    one = len(json_bytes(transport.payload(messages[0])))
    monkeypatch.setattr(postmark, "MAX_CALL_BYTES", 3 * one + 10)
    run = drive(transport, messages)
    assert fake.calls == 4 and max(fake.request_sizes) <= 3 * one + 10
    assert sorted(fake.recipients()) == sorted(m.recipient for m in messages)
    assert all(d.status == "sent" for d in run.final().values())


def test_a_message_over_the_message_limit_fails_alone(api, monkeypatch):
    monkeypatch.setattr(postmark, "MAX_MESSAGE_BYTES", 3_000)
    fake, transport = api("postmark")
    messages = [make_message(0, filler=0), make_message(1, filler=50)]
    run = drive(transport, messages)
    assert run.final()[messages[1].recipient].status == "failed"
    assert "10 MB" in run.final()[messages[1].recipient].detail
    assert fake.recipients() == [messages[0].recipient]


def test_an_unconfirmed_sender_stops_the_campaign(api):
    fake, transport = api("postmark")
    fake.script = ["unconfirmed"]
    with pytest.raises(TransportAuthError, match="Sender signature not confirmed"), transport:
        transport.send_batch(make_messages(2))


def test_an_unknown_message_stream_stops_without_failing_anyone(api):
    fake, transport = api("postmark", message_stream="newsletter")
    with pytest.raises(TransportError, match="MessageStream") as caught, transport:
        transport.send_batch(make_messages(3))
    assert not isinstance(caught.value, TransportAuthError)
    assert "postmark.message_stream" in str(caught.value.fix)
    assert fake.delivered == []
