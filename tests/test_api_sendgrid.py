"""SendGrid specifics: one shared body with substitutions, 400 field errors, rate-limit resets."""

from __future__ import annotations

import json

import pytest
from support.providers import BAD, api, drive, make_message, make_messages  # noqa: F401

from broadsheet.core.errors import TransportAuthError, TransportError


def test_a_batch_shares_one_body_and_each_recipient_gets_their_own(api):
    fake, transport = api("sendgrid")
    messages = make_messages(300, filler=300)  # about 25 kB of HTML each
    run = drive(transport, messages)
    assert fake.calls == 1
    assert all(d.status == "sent" for d in run.final().values())
    assert fake.request_sizes[0] < sum(len(m.html) + len(m.text) for m in messages) / 20
    got = {d["to"]: d for d in fake.delivered}
    for message in messages:
        assert (got[message.recipient]["html"], got[message.recipient]["text"]) == (message.html, message.text)
        assert got[message.recipient]["name"] == message.merge["name"]


def test_bad_recipients_named_in_fields_fail_and_the_rest_is_sent_again(api):
    fake, transport = api("sendgrid")
    messages = make_messages(8)
    for n in (1, 6):
        messages[n] = make_message(n, local=f"{BAD}{n}")
    run = drive(transport, messages)
    final = run.final()
    for n in (1, 6):
        assert final[messages[n].recipient].status == "failed"
        assert f"personalizations.{n}.to.0.email" in final[messages[n].recipient].detail
    assert sorted(fake.recipients()) == sorted(m.recipient for i, m in enumerate(messages) if i not in (1, 6))
    assert fake.calls == 2


def test_a_request_error_not_about_a_recipient_stops_without_failing_anyone(api):
    fake, transport = api("sendgrid")
    fake.script = ["bad-from"]
    with pytest.raises(TransportError, match="from") as caught, transport:
        transport.send_batch(make_messages(3))
    assert not isinstance(caught.value, TransportAuthError)


def test_the_rate_limit_reset_time_is_honoured(api):
    fake, transport = api("sendgrid")
    fake.script = ["429-reset"]
    run = drive(transport, make_messages(2))
    assert 1.5 <= run.retry_after[0] <= 3.5


def test_values_found_elsewhere_in_the_body_still_arrive_exactly(api):
    fake, transport = api("sendgrid")
    messages = make_messages(4)
    messages[1] = make_message(1, first_name="Week")  # also in the static text: "Week in review"
    messages[2] = make_message(2, first_name="[%bs.email%]")  # looks like a placeholder
    drive(transport, messages)
    got = {d["to"]: d for d in fake.delivered}
    assert all(got[m.recipient]["html"] == m.html and got[m.recipient]["text"] == m.text for m in messages)


def test_without_the_shared_body_each_recipient_is_a_request(api):
    fake, transport = api("sendgrid")
    transport.shared_body = False
    messages = make_messages(3)
    drive(transport, messages)
    assert fake.calls == 3
    payload = json.dumps(transport.payload(messages[:1]))
    assert "substitutions" not in payload


def test_a_long_personal_value_keeps_its_body_literal_and_within_the_substitution_limit(api):
    fake, transport = api("sendgrid")
    messages = make_messages(3)
    long_name = "Reader " + "x" * 12_000
    messages[1] = make_message(1, first_name=long_name)
    run = drive(transport, messages)
    assert all(d.status == "sent" for d in run.final().values())  # the fake checks the 10,000-byte limit
    got = {d["to"]: d for d in fake.delivered}
    assert got[messages[1].recipient]["html"] == messages[1].html
    assert fake.calls == 2  # the others still share one body


def test_no_answer_to_one_request_leaves_only_its_recipients_unknown(api):
    """A batch that takes two requests: the first times out, so the second was never sent."""
    fake, transport = api("sendgrid")
    messages = make_messages(3)
    messages[2] = make_message(2, first_name="Reader " + "x" * 12_000)  # a body of its own: a second request
    fake.script = ["timeout"]
    with transport:
        deliveries = transport.send_batch(messages)
    fake.wait_idle()
    assert [d.status for d in deliveries] == ["unknown", "unknown", "deferred"]
    assert sorted(fake.recipients()) == sorted(m.recipient for m in messages[:2]) and fake.calls == 1


def test_many_personal_values_stay_within_the_substitution_limit(api):
    """Each value under 500 characters, but together over SendGrid's 10,000 bytes per personalization."""
    fake, transport = api("sendgrid")
    messages = make_messages(3)
    many = make_message(1)
    extra = {f"field{n}": f"value {n} " + "y" * 440 for n in range(25)}
    many.merge.update(extra)
    many.html = many.html.replace("</body>", "".join(f"<p>{v}</p>" for v in extra.values()) + "</body>")
    many.text += "".join(f"{v}\n" for v in extra.values())
    messages[1] = many
    run = drive(transport, messages)  # the fake checks the limit
    assert all(d.status == "sent" for d in run.final().values())
    got = {d["to"]: d for d in fake.delivered}
    assert all(got[m.recipient]["html"] == m.html and got[m.recipient]["text"] == m.text for m in messages)
