"""Resend specifics: idempotency keys make a retried batch safe, permissive per-index errors."""

from __future__ import annotations

from support.providers import BAD, api, drive, make_message, make_messages  # noqa: F401


def test_no_answer_is_retried_with_the_same_key_and_nobody_gets_two(api):
    fake, transport = api("resend")
    fake.script = ["timeout"]
    messages = make_messages(5)
    with transport:
        deliveries = transport.send_batch(messages, batch_key="campaign-7/batch-3")
    assert [d.status for d in deliveries] == ["sent"] * 5
    assert fake.calls == 2 and len(fake.seen) == 1  # the same request again, under the same key
    assert sorted(fake.recipients()) == sorted(m.recipient for m in messages)  # once each
    assert [d.message_id for d in deliveries] == [d["message_id"] for d in fake.delivered]


def test_no_answer_however_often_it_is_sent_again_leaves_the_batch_unknown(api, monkeypatch):
    fake, transport = api("resend")
    monkeypatch.setattr(type(transport), "resend_delays", (1.1,))  # the fake is free again by then
    fake.script = ["timeout", "500"]
    with transport:
        deliveries = transport.send_batch(make_messages(2))
    assert [d.status for d in deliveries] == ["unknown", "unknown"]  # the first may have gone through
    assert fake.calls == 2


def test_the_key_names_campaign_and_batch_and_stays_within_256(api):
    _, transport = api("resend")
    key = transport.idempotency_key(b"[]", "campaign-7/batch-3")
    assert key.startswith("broadsheet/campaign-7/batch-3/") and len(key) <= 256
    assert len(transport.idempotency_key(b"[]", "x" * 400)) == 256
    assert transport.idempotency_key(b"[1]") != transport.idempotency_key(b"[2]")


def test_invalid_emails_fail_by_index_and_the_rest_is_sent(api):
    fake, transport = api("resend")
    messages = make_messages(4)
    messages[2] = make_message(2, local=BAD)
    run = drive(transport, messages)
    final = run.final()
    assert final[messages[2].recipient].status == "failed" and "Invalid `to`" in final[messages[2].recipient].detail
    assert [final[m.recipient].status for i, m in enumerate(messages) if i != 2] == ["sent"] * 3
    assert fake.calls == 1


def test_a_key_reused_for_another_payload_leaves_the_batch_unknown(api):
    fake, transport = api("resend")
    with transport:
        transport.send_batch(make_messages(2), batch_key="b")
        fake.seen[next(iter(fake.seen))] = (b"other", fake.seen[next(iter(fake.seen))][1])
        deliveries = transport.send_batch(make_messages(2), batch_key="b")
    assert [d.status for d in deliveries] == ["unknown", "unknown"]
