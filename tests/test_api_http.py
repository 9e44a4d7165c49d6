"""The shared HTTP layer: retry times, error text, connection failures, the shared-body form."""

from __future__ import annotations

import email.utils
import ssl

import pytest
import requests
import trustme
from pytest_httpserver import HTTPServer
from support.ports import refused_port
from support.providers import ENV, TIMEOUT, PostmarkFake, make_config, make_message, make_messages

from broadsheet.core.errors import TransientTransportError, TransportError
from broadsheet.delivery.transports.base import TransportOptions
from broadsheet.delivery.transports.http import describe_error, retry_after
from broadsheet.delivery.transports.postmark import PostmarkTransport
from broadsheet.delivery.transports.shared_body import personal_values, share_bodies

NOW = 1_800_000_000.0


def answer(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.headers.update(headers)
    return response


@pytest.mark.parametrize(
    "headers, seconds",
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"ratelimit-reset": "4"}, 4.0),  # Resend: seconds from now
        ({"X-RateLimit-Reset": str(int(NOW + 12))}, 12.0),  # SendGrid: epoch seconds
        ({"X-RateLimit-Reset": str(int((NOW + 5) * 1000))}, 5.0),  # epoch milliseconds
        ({"X-RateLimit-Reset": str(int(NOW - 5))}, 0.0),  # already past
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_every_form(headers, seconds):
    assert retry_after(answer(headers), now=NOW) == seconds


@pytest.mark.parametrize(
    "body, text",
    [
        ({"ErrorCode": 406, "Message": "Inactive recipient"}, "406: Inactive recipient"),
        ({"errors": [{"message": "bad", "field": "from"}]}, "bad (from)"),
        ({"message": "Queued"}, "Queued"),
        ({"name": "validation_error", "message": "Invalid `to`"}, "validation_error: Invalid `to`"),
    ],
)
def test_error_text_reads_each_providers_shape(body, text):
    assert describe_error(body) == text


def test_no_connection_is_transient_and_says_nothing_was_sent(monkeypatch):
    monkeypatch.setenv("BROADSHEET_POSTMARK_TOKEN", ENV["postmark"]["BROADSHEET_POSTMARK_TOKEN"])
    with refused_port() as port:
        transport = PostmarkTransport(
            make_config("postmark", f"http://127.0.0.1:{port}"), TransportOptions(timeout=TIMEOUT)
        )
        with pytest.raises(TransientTransportError, match="cannot connect") as caught, transport:
            transport.send_batch(make_messages(1))
    assert "SECRET" not in str(caught.value)


def placeholder(name: str) -> str:
    return f"{{{{{name}}}}}"


def test_personalised_messages_share_one_body():
    messages = make_messages(20)
    groups = share_bodies(messages, placeholder, "{{")
    assert len(groups) == 1 and groups[0].members == list(range(20))
    assert "{{first_name}}" in groups[0].html and "{{list_unsubscribe_1_html}}" in groups[0].html
    assert "reader0" not in groups[0].html


def test_a_body_that_cannot_round_trip_keeps_its_own_literal_text():
    odd = make_message(1, first_name="{{email}}")
    groups = share_bodies([make_message(0), odd, make_message(2)], placeholder, "{{")
    assert [g.members for g in groups] == [[0, 2], [1]]
    assert groups[1].html == odd.html and groups[1].values == [{}]


def test_unsubscribe_urls_count_as_personal_values():
    message = make_message(3)
    values = personal_values(message)
    assert values["email"] == "reader3@example.com"
    assert values["list_unsubscribe_1"].startswith("https://news.example.org/unsubscribe?email=reader3")
    assert "recipient" not in values  # the same value as email


def test_an_untrusted_certificate_stops_and_marks_nobody_unknown(monkeypatch):
    """The TLS handshake failed, so nothing was sent: not unknown, and not worth retrying either."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)  # a CA nobody trusts
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        fake = PostmarkFake().install(server)
        monkeypatch.setenv("BROADSHEET_POSTMARK_TOKEN", ENV["postmark"]["BROADSHEET_POSTMARK_TOKEN"])
        transport = PostmarkTransport(make_config("postmark", server.url_for("/")), TransportOptions(timeout=TIMEOUT))
        with pytest.raises(TransportError, match="certificate") as caught, transport:
            transport.send_batch(make_messages(2))
        assert not isinstance(caught.value, TransientTransportError)
        assert "postmark.base_url" in str(caught.value.fix) and fake.calls == 0
    finally:
        server.clear()
        server.stop()
