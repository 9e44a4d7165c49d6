"""What no API transport may do, whatever answers it: follow a redirect with the credentials, show a
secret, count an answer that is not the provider's as sent, or send again a request whose answer was
lost. Against real local servers: pytest-httpserver and raw sockets on 127.0.0.x."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer
from support.providers import (  # noqa: F401
    ENV,
    FAKES,
    SECRET,
    RawServer,
    api,
    drive,
    make_config,
    make_messages,
    transport_at,
)
from test_api_cli import sample, use_fake  # noqa: F401
from test_send_cli import ISSUE, cli, states
from werkzeug import Request, Response

from broadsheet.core.errors import ConfigError, TransientTransportError, TransportAuthError, TransportError
from broadsheet.delivery.transports.http import UnexpectedAnswer

PROVIDERS = ["postmark", "sendgrid", "mailgun", "ses", "resend"]
PATHS = {provider: FAKES[provider].path for provider in PROVIDERS}
# Every form of the test secrets that must never come out: whole, cut short, Mailgun's Basic credentials.
BASIC = base64.b64encode(f"api:{SECRET}".encode()).decode()
SECRET_FORMS = (SECRET, SECRET[:10], "SESSION-", "AKIDEXAMPLE", BASIC[:12])


def batch(transport, count: int = 3):
    return make_messages(count if transport.max_batch > 1 else 1)


def assert_secret_free(*texts: str) -> None:
    for text in texts:
        for form in SECRET_FORMS:
            assert form not in text, f"{form!r} in {text!r}"


def assert_named_once(transport, *texts: str) -> None:
    """The provider's name once at the start: no "Postmark: Postmark:", no "Postmark host: Postmark …"."""
    for text in texts:
        for prefix in (transport.provider, transport.where):
            assert f"{prefix}: {transport.provider}" not in text, text


@pytest.fixture(scope="module")
def second_address():
    server = HTTPServer(host="127.0.0.2", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def elsewhere(second_address):
    """Another server on another address, where a followed redirect would land."""
    yield second_address
    second_address.clear()


# -- redirects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_and_stops_naming_only_its_host(
    httpserver, elsewhere, monkeypatch, provider, status
):
    fake = FAKES[provider]().install(elsewhere)  # would accept it: the transport would count everyone sent
    target = elsewhere.url_for(PATHS[provider]) + f"?token={SECRET}"
    httpserver.expect_request(PATHS[provider]).respond_with_response(Response("", status, {"Location": target}))
    transport = transport_at(provider, httpserver.url_for("/"), monkeypatch)
    with pytest.raises(TransportError) as caught, transport:
        transport.send_batch(batch(transport))
    error = caught.value
    assert not isinstance(error, TransientTransportError | UnexpectedAnswer)  # stop; the batch stays queued
    assert all(d is None for d in getattr(error, "deliveries", []))
    assert f"HTTP {status}" in str(error) and f"127.0.0.2:{elsewhere.port}" in str(error)
    assert "token" not in str(error)
    assert_secret_free(str(error))
    assert_named_once(transport, str(error))
    assert len(httpserver.log) == 1
    assert fake.calls == 0 and elsewhere.log == []  # nothing, so no credentials, went there


def test_a_see_other_answer_leaves_its_batch_unknown(httpserver, monkeypatch):
    """303 is what a server says after it took a POST: whether it sent the messages is unknown."""
    httpserver.expect_request(PATHS["postmark"]).respond_with_response(
        Response("", 303, {"Location": "https://user:pw@other.example:8443/done?x=1"})
    )
    transport = transport_at("postmark", httpserver.url_for("/"), monkeypatch)
    with pytest.raises(UnexpectedAnswer, match=r"other\.example:8443") as caught, transport:
        transport.send_batch(make_messages(2))
    assert [d.status for d in caught.value.deliveries] == ["unknown", "unknown"]
    assert "pw" not in str(caught.value) and "user" not in str(caught.value)


def test_a_redirect_in_a_send_stops_it_with_nobody_sent(api, elsewhere, sample, capsys):
    fake = FAKES["postmark"]().install(elsewhere)
    redirector, transport = api("postmark")
    redirector.script = ["307"] * 40
    redirector.answers = {"307": (307, {}, {"Location": elsewhere.url_for("/email/batch")})}
    use_fake(sample, "postmark", transport.base_url, batch_size=10, connections=1)
    assert cli(sample, "send", ISSUE, "--yes") == 2
    out, err = capsys.readouterr()
    assert f"127.0.0.2:{elsewhere.port}" in err and len(err.strip().splitlines()) == 1
    assert set(states(sample).values()) == {"queued"} and len(states(sample)) == 30
    assert fake.calls == 0 and elsewhere.log == []
    assert_secret_free(out, err)


# -- secrets checked when read -------------------------------------------------------------------

VARIABLES = [
    ("postmark", "BROADSHEET_POSTMARK_TOKEN"),
    ("sendgrid", "BROADSHEET_SENDGRID_KEY"),
    ("mailgun", "BROADSHEET_MAILGUN_KEY"),
    ("resend", "BROADSHEET_RESEND_KEY"),
    ("ses", "AWS_ACCESS_KEY_ID"),
    ("ses", "AWS_SECRET_ACCESS_KEY"),
    ("ses", "AWS_SESSION_TOKEN"),
]
MALFORMED = {
    "smart quote": (f"{SECRET}\u201d", "outside ASCII"),
    "accented letter": ("SECRÉT-TOKEN-123", "outside ASCII"),
    "space inside": ("SECRET TOKEN-123", "a space"),
    "header injection": (f"{SECRET}\r\nX-Injected: 1", "a line break"),
    "trailing newline": (f"{SECRET}\n", "a line break"),
    "control character": ("SECRET\x1bTOKEN-123", "a control character"),
}


@pytest.mark.parametrize("provider, variable", VARIABLES)
@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_secret_is_refused_naming_the_variable_never_the_value(monkeypatch, provider, variable, case):
    value, kind = MALFORMED[case]
    for key, good in ENV[provider].items():
        monkeypatch.setenv(key, good)
    monkeypatch.setenv(variable, value)
    from broadsheet.delivery.transports import transport_class

    with pytest.raises(ConfigError) as caught:
        transport_class(provider)(make_config(provider, "https://api.example.com"))
    text = str(caught.value)
    assert variable in text and kind in text and "\n" not in text
    assert_secret_free(text)
    assert "TOKEN" not in text.replace(variable, "")


def test_a_pasted_smart_quote_stops_send_before_anything_is_sent_or_journaled(api, sample, monkeypatch, capsys):
    fake, transport = api("postmark")
    use_fake(sample, "postmark", transport.base_url)
    monkeypatch.setenv("BROADSHEET_POSTMARK_TOKEN", f"\u201c{SECRET}\u201d")
    assert cli(sample, "send", ISSUE, "--yes") == 2
    out, err = capsys.readouterr()
    assert "BROADSHEET_POSTMARK_TOKEN" in err and len(err.strip().splitlines()) == 1
    assert_secret_free(out, err)
    assert fake.calls == 0 and states(sample) == {}


CREDENTIAL_HEADERS = ("Authorization", "X-Postmark-Server-Token", "X-Amz-Security-Token")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_server_echoing_the_credentials_gets_them_blanked_even_where_the_text_is_cut(
    httpserver, monkeypatch, provider
):
    def echo(request: Request) -> Response:  # as a careless gateway might: every header, late in a long text
        secret_first = sorted(request.headers.items(), key=lambda kv: kv[0] not in CREDENTIAL_HEADERS)
        seen = " ".join(f"{k}: {v}" for k, v in secret_first)
        return Response("denied " + "x" * 255 + " " + seen, 403, content_type="text/plain")

    httpserver.expect_request(PATHS[provider]).respond_with_handler(echo)
    transport = transport_at(provider, httpserver.url_for("/"), monkeypatch)
    with pytest.raises(TransportAuthError) as caught, transport:
        transport.send_batch(batch(transport))
    assert_secret_free(str(caught.value), repr(caught.value))
    assert "[secret]" in str(caught.value)  # cut inside it, it would leave part of it
    assert_named_once(transport, str(caught.value))


def test_a_key_echoed_json_escaped_or_url_encoded_is_blanked_too(httpserver, monkeypatch):
    key = "AbC/dEf+GhI=jKl-123"
    httpserver.expect_request(PATHS["postmark"]).respond_with_response(
        Response("no such token: AbC\\/dEf+GhI=jKl-123 (AbC%2FdEf%2BGhI%3DjKl-123)", 403, content_type="text/plain")
    )
    transport = transport_at("postmark", httpserver.url_for("/"), monkeypatch)
    monkeypatch.setenv("BROADSHEET_POSTMARK_TOKEN", key)
    with pytest.raises(TransportAuthError) as caught, transport:
        transport.send_batch(make_messages(1))
    assert str(caught.value).count("[secret]") == 2 and "GhI" not in str(caught.value)


# -- the answer must be the provider's -----------------------------------------------------------

NOT_THEIRS = {
    "a proxy's HTML page": (200, "text/html", "<html><body>Welcome to nginx!</body></html>", "text/html"),
    "an empty object": (200, "application/json", "{}", ""),
    "an empty array": (200, "application/json", "[]", ""),
    "a 204": (204, "", "", ""),
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("answer", NOT_THEIRS)
def test_an_answer_that_is_not_the_providers_leaves_the_batch_unknown_and_stops(
    httpserver, monkeypatch, caplog, provider, answer
):
    status, kind, body, says = NOT_THEIRS[answer]
    headers = {"Content-Type": kind} if kind else {}
    httpserver.expect_request(PATHS[provider]).respond_with_response(Response(body, status, headers))
    transport = transport_at(provider, httpserver.url_for("/"), monkeypatch)
    messages = batch(transport)
    with pytest.raises(UnexpectedAnswer) as caught, transport:
        transport.send_batch(messages)
    deliveries = caught.value.deliveries
    assert [d.status for d in deliveries] == ["unknown"] * len(messages)
    assert f"HTTP {status}" in deliveries[0].detail and says in deliveries[0].detail
    assert deliveries[0].detail.startswith(transport.provider + ": ")
    assert "--retry-unknown" in str(caught.value)
    assert_named_once(transport, str(caught.value), caplog.text, *(d.detail for d in deliveries))


def test_an_endless_answer_is_not_read_to_the_end(httpserver, monkeypatch):
    """A web server sending a big file instead of an answer: reading stops at 10 MB."""

    def endless():
        while True:
            yield b"x" * 65536

    httpserver.expect_request(PATHS["mailgun"]).respond_with_response(
        Response(endless(), 200, content_type="application/octet-stream")
    )
    transport = transport_at("mailgun", httpserver.url_for("/"), monkeypatch)
    with pytest.raises(UnexpectedAnswer, match="more than 10 MB") as caught, transport:
        transport.send_batch(make_messages(2))
    assert {d.status for d in caught.value.deliveries} == {"unknown"}


def answer_with(status: int, body: object, headers: dict | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(text, status, {"Content-Type": "application/json", **(headers or {})})


WRONG_SHAPES = [
    ("sendgrid", Response("", 200, {"X-Message-Id": "abc"}), "other than 202"),
    ("sendgrid", Response("<p>ok</p>", 202, {"X-Message-Id": "abc", "Content-Type": "text/html"}), "a body"),
    ("sendgrid", Response("", 202), "X-Message-Id"),
    ("postmark", answer_with(200, [{"ErrorCode": 0, "MessageID": "a", "To": "x@example.com"}]), "array of 3"),
    ("postmark", answer_with(200, [{"Message": "OK"}] * 3), "ErrorCode"),
    ("postmark", answer_with(200, [{"ErrorCode": 0, "To": "x@example.com"}] * 3), "MessageID"),
    ("mailgun", answer_with(200, {"message": "Queued. Thank you."}), "no id"),
    ("mailgun", answer_with(201, {"id": "<a@b>", "message": "Queued"}), "other than 200"),
    ("mailgun", answer_with(200, {"id": "x" * 5000, "message": "Queued"}), "no id"),  # would fill the journal
    ("ses", answer_with(200, {"MessageId": ""}), "MessageId"),
    ("ses", answer_with(200, "[" * 100_000 + "]" * 100_000), "does not parse"),  # deeper than Python parses
    ("resend", answer_with(200, {"data": [{"id": "a"}]}), "every email"),
    ("resend", answer_with(200, {"data": [{"id": "a"}] * 2, "errors": [{"index": 7, "message": "x"}]}), "errors"),
    ("resend", answer_with(200, {"data": [{"x": 1}] * 3}), "without its id"),
]


@pytest.mark.parametrize("provider, response, says", WRONG_SHAPES)
def test_a_body_of_another_shape_is_not_taken_as_sent(httpserver, monkeypatch, provider, response, says):
    httpserver.expect_request(PATHS[provider]).respond_with_response(response)
    transport = transport_at(provider, httpserver.url_for("/"), monkeypatch)
    with pytest.raises(UnexpectedAnswer, match=says) as caught, transport:
        transport.send_batch(batch(transport))
    assert {d.status for d in caught.value.deliveries} == {"unknown"}


def test_a_proxy_page_in_a_send_marks_one_batch_unknown_and_stops(httpserver, sample, monkeypatch, capsys):
    for key, value in ENV["sendgrid"].items():
        monkeypatch.setenv(key, value)
    httpserver.expect_request(PATHS["sendgrid"]).respond_with_response(
        Response("<html>Access granted</html>", 200, {"Content-Type": "text/html"})
    )
    use_fake(sample, "sendgrid", httpserver.url_for("/"), batch_size=10, connections=1)
    assert cli(sample, "send", ISSUE, "--yes") == 2
    _out, err = capsys.readouterr()
    assert "SendGrid" in err and "text/html" in err and len(err.strip().splitlines()) == 1
    got = list(states(sample).values())
    assert (got.count("unknown"), got.count("queued"), got.count("sent")) == (10, 20, 0)
    assert len(httpserver.log) == 1


# -- the answer lost after the request went out --------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("then", ["silent", "close", "reset"])
def test_a_lost_answer_leaves_the_batch_unknown_and_is_not_sent_again(monkeypatch, caplog, provider, then):
    caplog.set_level(logging.WARNING)
    with RawServer(then) as server:
        transport = transport_at(provider, server.url, monkeypatch)
        transport.resend_delays = (0.01, 0.01)  # Resend sends the very same request again itself
        messages = batch(transport)
        with transport:
            deliveries = transport.send_batch(messages)
    assert [d.status for d in deliveries] == ["unknown"] * len(messages)
    reason = "no answer" if then == "silent" else "connection lost"
    assert deliveries[0].detail.startswith(f"{transport.provider}: {reason}")
    assert all(r.endswith(server.requests[0].partition(b"\r\n\r\n")[2]) for r in server.requests)  # whole bodies
    if provider == "resend":  # with the same Idempotency-Key: Resend delivers it once
        assert len(server.requests) == 3
        keys = {line for r in server.requests for line in r.split(b"\r\n") if line.startswith(b"Idempotency-Key")}
        assert len(keys) == 1
    else:
        assert len(server.requests) == 1
    assert_named_once(transport, caplog.text, *(d.detail for d in deliveries))
    assert_secret_free(caplog.text)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_gateway_timeout_is_an_answer_lost_not_a_refusal(api, provider):
    """504: a load balancer passed the request on and stopped waiting; the provider may have sent it."""
    fake, transport = api(provider)
    fake.answers = {"504": (504, {"message": "upstream request timeout"}, {})}
    fake.script = ["504"]
    transport.resend_delays = (0.01,)
    messages = batch(transport)
    with transport:
        deliveries = transport.send_batch(messages)
    if provider == "resend":  # the very same request again, same key: sent once
        assert [d.status for d in deliveries] == ["sent"] * len(messages) and fake.calls == 2
    else:
        assert [d.status for d in deliveries] == ["unknown"] * len(messages) and fake.calls == 1
        assert deliveries[0].detail.startswith(f"{transport.provider}: answered HTTP 504")


def test_a_send_whose_answers_are_lost_records_everyone_unknown_and_sends_each_once(sample):
    """The real command, so that stderr is what a user sees: the plain-http warning once, one line
    per unknown batch with the provider named once, no secret."""
    env = {**os.environ, **ENV["postmark"]}
    with RawServer("close") as server:
        use_fake(sample, "postmark", server.url, batch_size=10, connections=1, retries=3)
        done = subprocess.run(
            [sys.executable, "-m", "broadsheet", "send", ISSUE, "--yes"],
            cwd=sample,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr  # some unknown
    assert list(states(sample).values()) == ["unknown"] * 30
    assert len(server.requests) == 3  # one request per batch of 10: none sent again
    assert "--retry-unknown" in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 4 and "postmark.base_url is http://127.0.0.1" in lines[0]
    assert all(line.startswith("Postmark: connection lost after sending") for line in lines[1:]), lines
    assert_secret_free(done.stdout, done.stderr)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nobody_listening_is_worth_retrying_and_nothing_is_unknown(monkeypatch, provider):
    with RawServer("close") as server:
        url = server.url
    transport = transport_at(provider, url, monkeypatch)  # the port is closed again now
    with pytest.raises(TransientTransportError, match="cannot connect") as caught, transport:
        transport.send_batch(batch(transport))
    assert not getattr(caught.value, "deliveries", None)
    assert_named_once(transport, str(caught.value))


def test_a_tls_handshake_cut_short_sent_nothing_and_is_worth_retrying(monkeypatch):
    """urllib3 reports it as it reports a TLS read cut short; only the connection knows no byte left."""
    with RawServer("hangup") as server:
        transport = transport_at("postmark", server.url.replace("http://", "https://"), monkeypatch)
        with pytest.raises(TransientTransportError, match="cannot connect"), transport:
            transport.send_batch(make_messages(2))


def test_a_connection_closed_unread_after_the_request_went_out_is_unknown(monkeypatch):
    with RawServer("hangup") as server:
        transport = transport_at("postmark", server.url, monkeypatch)
        with transport:
            deliveries = transport.send_batch(make_messages(2))
    assert [d.status for d in deliveries] == ["unknown", "unknown"]


# -- plain http, base_url and region -------------------------------------------------------------


def test_plain_http_on_this_machine_never_goes_through_a_proxy(api, monkeypatch):
    """HTTP_PROXY would take the key, in clear, to another host; this machine needs no proxy."""
    fake, transport = api("postmark")
    with RawServer("close") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        with transport:
            [delivery] = transport.send_batch(make_messages(1))
    assert delivery.status == "sent" and fake.calls == 1 and proxy.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_credentials_come_from_the_environment_only_never_from_netrc(api, httpserver, monkeypatch, tmp_path, provider):
    """requests would add ~/.netrc's password for the host (replacing a bearer token) unless told not to."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {urlsplit(httpserver.url_for('/')).hostname} login someone password NETRC-PASS\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    _fake, transport = api(provider)  # the fakes refuse any credentials but the provider's own
    run = drive(transport, batch(transport))
    assert {d.status for d in run.final().values()} == {"sent"}
    for request, _ in httpserver.log:
        kind, _, value = request.headers.get("Authorization", "").partition(" ")
        assert kind != "Basic" or b"NETRC-PASS" not in base64.b64decode(value)


def test_plain_http_to_another_host_is_refused(monkeypatch):
    with pytest.raises(ConfigError, match=r"postmark\.base_url is http://.*BROADSHEET_POSTMARK_TOKEN"):
        transport_at("postmark", "http://api.postmarkapp.com", monkeypatch)


def test_plain_http_on_this_machine_is_allowed_with_one_warning(monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    url = "http://127.0.0.1:9/"
    transport_at("resend", url, monkeypatch)
    transport_at("resend", url, monkeypatch)
    warnings = [r.getMessage() for r in caplog.records if "unencrypted" in r.getMessage()]
    assert len(warnings) == 1 and "resend.base_url" in warnings[0] and "BROADSHEET_RESEND_KEY" in warnings[0]


@pytest.mark.parametrize(
    "url, says",
    [
        ("https://apikey:hunter2@api.sendgrid.com", "user name or password"),
        ("ftp://api.sendgrid.com", "https://"),
        ("api.sendgrid.com", "https://"),
    ],
)
def test_a_base_url_that_is_no_plain_https_address_is_refused(monkeypatch, url, says):
    with pytest.raises(ConfigError, match=says) as caught:
        transport_at("sendgrid", url, monkeypatch)
    assert "hunter2" not in str(caught.value)


def test_an_ses_region_that_would_name_another_host_is_refused(monkeypatch):
    for key, value in ENV["ses"].items():
        monkeypatch.setenv(key, value)
    from broadsheet.core.config import Config, Ses
    from broadsheet.delivery.transports.ses import SesTransport

    with pytest.raises(ConfigError, match=r"ses\.region"):
        SesTransport(Config(ses=Ses(region="evil.example/x?")))
    assert SesTransport(Config(ses=Ses(region="us-gov-west-1"))).where == "Amazon SES email.us-gov-west-1.amazonaws.com"


# -- a surprise inside a transport ---------------------------------------------------------------


@pytest.mark.parametrize("after_sending", [True, False])
def test_a_surprise_inside_a_transport_is_scrubbed_and_unknown_only_once_a_request_went_out(api, after_sending):
    """A bug in reading an answer must not mark the batch sent, nor show a secret in its text."""
    fake, transport = api("postmark")

    class Broken(type(transport)):
        def split(self, messages):
            if not after_sending:
                raise KeyError(f"token {SECRET}")
            return super().split(messages)

        def send_part(self, messages):
            super().send_part(messages)
            raise KeyError(f"token {SECRET}")

    broken = Broken(transport.config, transport.options)
    with pytest.raises(TransportError, match="unexpected KeyError") as caught, broken:
        broken.send_batch(make_messages(2))
    assert_secret_free(str(caught.value))
    deliveries = getattr(caught.value, "deliveries", None)
    if after_sending:
        assert [d.status for d in deliveries] == ["unknown", "unknown"] and fake.calls == 1
    else:
        assert deliveries == [] and fake.calls == 0  # declared on every TransportError


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun"])
@pytest.mark.parametrize(
    "refusal, kind", [("401", TransportAuthError), ("redirect", TransportError), ("proxy", UnexpectedAnswer)]
)
def test_a_refusal_part_way_stops_and_keeps_what_was_already_sent(api, provider, refusal, kind):
    """Two senders make two requests: the first is sent, the second stops the campaign. The first
    must stay recorded as sent (resending it would deliver it twice); the second is queued (or
    unknown, for an answer that is not the provider's)."""
    fake, transport = api(provider)
    fake.answers = {
        "redirect": (307, {}, {"Location": "https://elsewhere.example/"}),
        "proxy": (200, "<html></html>", {}),
    }  # a JSON string: the shape of no provider's answer
    fake.script = ["ok", refusal]
    messages = make_messages(4)
    for message in messages[2:]:
        message.from_header = "Other <other@news.example.org>"
    with pytest.raises(kind) as caught, transport:
        transport.send_batch(messages)
    deliveries = caught.value.deliveries
    assert [d.status for d in deliveries[:2]] == ["sent", "sent"]
    assert [d and d.status for d in deliveries[2:]] == (["unknown"] * 2 if refusal == "proxy" else [None, None])
    assert sorted(fake.recipients()) == [m.recipient for m in messages[:2]]


def test_a_long_reason_from_the_server_is_kept_short_in_the_journal(httpserver, monkeypatch):
    reason = "Inactive recipient. " * 500
    httpserver.expect_request(PATHS["postmark"]).respond_with_response(
        answer_with(
            200,
            [{"ErrorCode": 406, "Message": reason}, {"ErrorCode": 0, "MessageID": "m1", "To": "reader1@example.com"}],
        )
    )
    transport = transport_at("postmark", httpserver.url_for("/"), monkeypatch)
    with transport:
        failed, sent = transport.send_batch(make_messages(2))
    assert (failed.status, sent.status) == ("failed", "sent")
    assert failed.detail.startswith("Postmark: 406 Inactive recipient.") and len(failed.detail) <= 520
