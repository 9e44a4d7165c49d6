"""Composed messages, checked by parsing their bytes back with the stdlib and dkimpy."""

from __future__ import annotations

import dataclasses
import email.header
import email.utils

import dkim
import pytest
from support.compose import make_config, make_issue, parse, parts, rsa_key_pair, subscriber

from broadsheet.core.compose import Composer, RecipientRejected, unsubscribe_token, verify_unsubscribe_token
from broadsheet.core.config import Dkim
from broadsheet.core.errors import ConfigError, ContentError, TemplateError

SECRET = "s3cret-for-tests-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"


@pytest.fixture(autouse=True)
def unsubscribe_secret(monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)


def compose(person=None, *, issue=None, config=None, test=False):
    composer = Composer(issue or make_issue(), config or make_config(), test=test)
    return composer.compose(person or subscriber())


def assert_wire_format(raw: bytes) -> None:
    assert raw.endswith(b"\r\n")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
        assert b"\r" not in line and b"\n" not in line


def test_headers_present_and_correct():
    message = compose(subscriber("Jane.Doe+news@example.com", "Jane Doe"))
    parsed = parse(message.raw)
    assert parsed["From"] == "The Weekly <news@Example.org>"
    assert parsed["To"].addresses[0].display_name == "Jane Doe"
    assert parsed["To"].addresses[0].addr_spec == "Jane.Doe+news@example.com"
    assert parsed["Subject"] == "Issue 1: hello"
    assert parsed["Reply-To"] == "editor@example.org"
    assert parsed["List-Id"] == "The Weekly <weekly.news.example.org>"
    assert parsed["MIME-Version"] == "1.0"
    assert email.utils.parsedate_to_datetime(parsed["Date"]).utcoffset().total_seconds() == 0
    assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith("@example.org>")
    token = unsubscribe_token("Jane.Doe+news@example.com", "weekly.news.example.org", SECRET)
    url = f"https://news.example.org/unsubscribe?email=Jane.Doe%2Bnews@example.com&token={token}&list=weekly.news.example.org"
    assert parsed["List-Unsubscribe"] == f"<{url}>, <mailto:unsubscribe@example.org?subject=unsubscribe>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parsed.iter_parts())


def test_message_fields_for_api_transports():
    message = compose(subscriber("jane@example.com", "Doe, Jane", city="Leuven"))
    assert (message.recipient, message.sender) == ("jane@example.com", "news@Example.org")
    assert message.to_header == '"Doe, Jane" <jane@example.com>'
    assert message.from_header == "The Weekly <news@Example.org>"
    assert message.subject == "Issue 1: hello"
    assert set(message.headers) == {
        "Date",
        "Message-ID",
        "Reply-To",
        "List-Id",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Feedback-ID",
        "X-Auto-Response-Suppress",
    }
    assert message.merge["city"] == "Leuven"
    assert "Leuven" in message.html and "Hello Doe," in message.text
    assert parse(message.raw)["To"].addresses[0].display_name == "Doe, Jane"


def test_archive_headers_point_at_the_published_page():
    """With base_url, List-Archive names the web archive and Archived-At this issue's page (publish writes both)."""
    message = compose(config=make_config(base_url="https://news.example.org"))
    parsed = parse(message.raw)
    assert parsed["List-Archive"] == "<https://news.example.org/>"
    assert parsed["Archived-At"] == "<https://news.example.org/2021-06-01-test/>"
    assert message.headers["Archived-At"] == parsed["Archived-At"]
    assert "Archived-At" not in compose().headers  # without base_url there is no archive to name


def test_dkim_signature_covers_the_archive_headers(tmp_path):
    raw = compose(config=dkim_config(tmp_path, base_url="https://news.example.org")).raw
    assert dkim.verify(raw, dnsfunc=dns_record)
    signed = parse(raw)["DKIM-Signature"].replace(" ", "").lower().split("h=", 1)[1].split(";", 1)[0].split(":")
    assert "list-archive" in signed and "archived-at" in signed
    assert not dkim.verify(raw.replace(b"2021-06-01-test/>", b"2021-06-02-test/>"), dnsfunc=dns_record)


def test_each_message_has_its_own_id():
    composer = Composer(make_issue(), make_config())
    ids = {composer.compose(subscriber(f"r{i}@example.com")).headers["Message-ID"] for i in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize(
    "subject", ["Café — naïve résumé 🎉 " * 8, "Plain but long subject " * 20, "Looks encoded: =?utf-8?q?x?="]
)
def test_subject_round_trips_and_folds(subject):
    message = compose(issue=make_issue(subject=subject))
    assert parse(message.raw)["Subject"] == subject
    head = message.raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"https://" not in line)
    if not subject.isascii():
        assert b"Subject: =?utf-8?b?" in head


def test_non_ascii_display_name_is_encoded_and_round_trips():
    message = compose(subscriber("zoe@example.com", "Zoë Ångström"))
    assert b"To: =?utf-8?b?" in message.raw
    assert parse(message.raw)["To"].addresses[0].display_name == "Zoë Ångström"
    assert message.to_header == "Zoë Ångström <zoe@example.com>"


def test_long_display_name_is_split_into_encoded_words():
    name = "Zoë Ångström-Łukasiewicz " * 10
    to = compose(subscriber("zoe@example.com", name)).raw.split(b"\r\nTo: ", 1)[1].split(b"\r\nDate:", 1)[0]
    assert max(len(line) for line in to.split(b"\r\n")) <= 78
    # RFC 2047 decoding (the stdlib address parser wrongly keeps the space between encoded words)
    assert str(email.header.make_header(email.header.decode_header(to.decode().replace("\r\n", "")))) == (
        f"{name} <zoe@example.com>"
    )


def test_every_line_at_most_998_bytes_and_crlf():
    long_value = "x" * 5000
    issue = make_issue(text=TEXT_WITH_FIELD, html="<p>{{ subscriber.note }}</p>" + "y" * 3000)
    message = compose(subscriber("a@example.com", "A " + "b" * 300, note=long_value + "\rbare\nlf"), issue=issue)
    assert_wire_format(message.raw)
    text, html = parts(message.raw)
    assert long_value + "\nbare\nlf" in text
    assert long_value in html


TEXT_WITH_FIELD = "Note: {{ subscriber.note }}\nend"


def test_body_is_personalised_for_each_recipient():
    composer = Composer(make_issue(), make_config())
    ann = composer.compose(subscriber("ann@example.com", "Ann Smith", city="Ghent"))
    bob = composer.compose(subscriber("bob@example.com", "Bob Jones", city="Leuven"))
    ann_text, ann_html = parts(ann.raw)
    assert "Hello Ann (Ann Smith)" in ann_text and "<p>Hello Ann (Ann Smith)</p>" in ann_html
    assert "Ghent" in ann_html and "Bob" not in ann_html + ann_text and "Leuven" not in ann_html
    assert "Hello Bob (Bob Jones)" in parts(bob.raw)[0]
    assert unsubscribe_token("bob@example.com", "weekly.news.example.org", SECRET) in parts(bob.raw)[0]


def test_missing_or_empty_field_falls_back_to_default():
    text, html = parts(compose(subscriber("ann@example.com", "", first_name="")).raw)
    assert text.startswith("Hello reader ()")
    assert "<p></p>" in html  # subscriber.city is undefined: empty


def test_html_escapes_subscriber_values_text_does_not():
    message = compose(subscriber("eve@example.com", "<script>alert(1)</script>"))
    text, html = parts(message.raw)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "<script>alert(1)</script>" in text
    assert parse(message.raw)["To"].addresses[0].display_name == "<script>alert(1)</script>"


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@example.com", "Eve\nX", "Eve\rX"])
def test_line_break_in_name_rejects_the_recipient(name):
    with pytest.raises(RecipientRejected) as caught:
        compose(subscriber("eve@example.com", name))
    assert caught.value.reason == "line break in the name"
    assert caught.value.where == "eve@example.com"


@pytest.mark.parametrize(
    "address", ["eve@example.com\r\nBcc: x@example.com", "Eve <eve@example.com>", "zoë@example.com"]
)
def test_unusable_address_rejects_the_recipient(address):
    with pytest.raises(RecipientRejected):
        compose(subscriber(address, "Eve"))


def test_line_break_in_subject_is_refused_up_front():
    with pytest.raises(ContentError, match="subject"):
        Composer(make_issue(subject="Hello\r\nBcc: x@example.com"), make_config())


def test_test_send_prefixes_the_subject():
    assert parse(compose(test=True).raw)["Subject"] == "[TEST] Issue 1: hello"


def test_escaped_template_syntax_in_content_shows_literally():
    issue = make_issue(html="<p>Use {{ '{{' }} name }} here</p>", text="Use {{ '{{' }} name }} here")
    text, html = parts(compose(issue=issue).raw)
    assert "Use {{ name }} here" in text and "Use {{ name }} here" in html


def test_invalid_template_is_a_template_error():
    with pytest.raises(TemplateError) as caught:
        Composer(make_issue(html="<p>{% if %}</p>"), make_config())
    assert "(html)" in caught.value.where


def test_template_failing_for_one_subscriber_rejects_only_that_one():
    composer = Composer(make_issue(text="{{ subscriber.city.upper() }}"), make_config())
    assert "GHENT" in composer.compose(subscriber(city="Ghent")).text
    with pytest.raises(RecipientRejected, match="template"):
        composer.compose(subscriber())


def test_template_raising_a_python_error_for_one_subscriber_rejects_only_that_one():
    composer = Composer(make_issue(text="{{ 100 // (subscriber.count | int) }}"), make_config())
    assert "50" in composer.compose(subscriber(count="2")).text
    with pytest.raises(RecipientRejected, match=r"template fails for this subscriber: .*ZeroDivisionError"):
        composer.compose(subscriber(count="0"))


def test_unsubscribe_token_verifies_and_hides_the_address():
    token = unsubscribe_token("Jane@Example.com", "weekly.news.example.org", SECRET)
    assert verify_unsubscribe_token("Jane@Example.com", token, "weekly.news.example.org", SECRET)
    assert not verify_unsubscribe_token("john@example.com", token, "weekly.news.example.org", SECRET)
    assert not verify_unsubscribe_token("Jane@Example.com", token, "other.list.example.org", SECRET)
    assert not verify_unsubscribe_token("Jane@Example.com", token, "weekly.news.example.org", "other secret")
    assert "=" not in token and "+" not in token and "/" not in token
    assert "jane" not in token.lower() and "example" not in token.lower()


def test_default_unsubscribe_url_follows_serve_public_url():
    from broadsheet.core.config import Serve
    from broadsheet.core.tokens import read_token

    config = make_config(unsubscribe_url="", serve=Serve(public_url="https://news.example.org/"))
    header = parse(compose(config=config).raw)["List-Unsubscribe"]
    url = header.split(",")[0].strip("<>")
    assert url.startswith("https://news.example.org/u/") and "jane" not in url.lower()
    token = url.rsplit("/", 1)[1]
    assert read_token("unsubscribe", token, "weekly.news.example.org", [SECRET]).email == "jane@example.com"


def test_token_template_needs_the_secret(monkeypatch):
    monkeypatch.delenv("BROADSHEET_SECRET")
    with pytest.raises(ConfigError, match="BROADSHEET_SECRET"):
        Composer(make_issue(), make_config())
    plain = make_config(unsubscribe_url="https://news.example.org/u?e={email}")
    assert parse(compose(config=plain).raw)["List-Unsubscribe"].startswith("<https://news.example.org/u?e=jane@")


def test_mailto_only_unsubscribe_has_no_one_click():
    message = compose(config=make_config(unsubscribe_url="", unsubscribe_mailto="mailto:leave@example.org"))
    parsed = parse(message.raw)
    assert parsed["List-Unsubscribe"] == "<mailto:leave@example.org?subject=unsubscribe>"
    assert "List-Unsubscribe-Post" not in parsed


def test_http_unsubscribe_url_has_no_one_click():
    parsed = parse(compose(config=make_config(unsubscribe_url="http://news.example.org/u?e={email}")).raw)
    assert parsed["List-Unsubscribe"].startswith("<http://")
    assert "List-Unsubscribe-Post" not in parsed


def test_a_link_the_same_for_every_reader_offers_no_one_click():
    """A one-click POST to a URL that does not say who is leaving would unsubscribe no one (RFC 8058)."""
    parsed = parse(compose(config=make_config(unsubscribe_url="https://news.example.org/unsubscribe")).raw)
    assert parsed["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe>")
    assert "List-Unsubscribe-Post" not in parsed
    personal = parse(compose(config=make_config(unsubscribe_url="https://news.example.org/u/{token}")).raw)
    assert personal["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_from_without_a_name_uses_the_newsletter_name():
    assert compose(config=make_config(from_address="news@example.org")).from_header == "The Weekly <news@example.org>"


@pytest.mark.parametrize(
    "key, value", [("from", "not an address"), ("reply_to", "nobody"), ("list_id", "no dots"), ("name", "Two\\nlines")]
)
def test_bad_sender_settings_are_config_errors_naming_the_line(tmp_path, key, value):
    from broadsheet.core.config import load_config

    path = tmp_path / "broadsheet.toml"
    path.write_text(
        f'# the sender\nname = "The Weekly"\n\n{key} = "{value}"\n'.replace('name = "The Weekly"\n\nname', "name"),
        encoding="utf-8",
    )
    line = path.read_text().splitlines().index(f'{key} = "{value}"') + 1
    with pytest.raises(ConfigError) as caught:
        Composer(make_issue(), load_config(path))
    assert caught.value.where == f"{path}:{line}"


def dkim_config(tmp_path, **overrides):
    pem, _ = rsa_key_pair()
    (tmp_path / "dkim.pem").write_bytes(pem)
    settings = dict(dkim=Dkim(domain="example.org", selector="news", private_key_file="dkim.pem"), root=tmp_path)
    return make_config(**{**settings, **overrides})


def dns_record(name, timeout=5):
    assert name == b"news._domainkey.example.org."
    return rsa_key_pair()[1]


def test_dkim_signature_verifies_and_covers_the_list_headers(tmp_path):
    raw = compose(subscriber("zoe@example.com", "Zoë"), config=dkim_config(tmp_path)).raw
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=dns_record)
    signed = parse(raw)["DKIM-Signature"].replace(" ", "").lower()
    for name in ("from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post"):
        assert name in signed.split("h=", 1)[1].split(";", 1)[0].split(":")
    assert_wire_format(raw)


def test_dkim_fails_after_tampering(tmp_path):
    raw = compose(config=dkim_config(tmp_path)).raw
    assert not dkim.verify(raw.replace(b">unsubscribe</a>", b">stay</a>"), dnsfunc=dns_record)
    assert not dkim.verify(raw.replace(b"Subject: Issue 1", b"Subject: Issue 2"), dnsfunc=dns_record)


def test_dkim_key_from_environment(monkeypatch):
    pem, _ = rsa_key_pair()
    monkeypatch.setenv("BROADSHEET_DKIM_KEY", pem.decode().replace("\n", "\\n"))
    config = make_config(dkim=Dkim(domain="example.org", selector="news"))
    assert dkim.verify(compose(config=config).raw, dnsfunc=dns_record)


def test_unusable_dkim_key_is_a_config_error_without_the_key(monkeypatch):
    monkeypatch.setenv("BROADSHEET_DKIM_KEY", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----")
    with pytest.raises(ConfigError) as caught:
        Composer(make_issue(), make_config(dkim=Dkim(domain="example.org", selector="news")))
    assert caught.value.where == "BROADSHEET_DKIM_KEY" and "c2VjcmV0" not in str(caught.value)


def signed_names(raw: bytes) -> list[str]:
    """The h= tag of the message's DKIM-Signature, lower-cased, in order."""
    value = "".join(parse(raw)["DKIM-Signature"].split())
    return value.split("h=", 1)[1].split(";", 1)[0].lower().split(":")


OVERSIGNED = ("From", "To", "Subject", "Date", "Reply-To", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")


@pytest.mark.parametrize("name", OVERSIGNED)
def test_a_second_copy_of_a_signed_header_breaks_the_signature(tmp_path, name):
    """h= names each of these once more than present (RFC 6376 5.4.2): a copy added in transit, at the top
    where a receiver would show it, no longer verifies; the message as sent does."""
    raw = compose(config=dkim_config(tmp_path, base_url="https://news.example.org")).raw
    assert dkim.verify(raw, dnsfunc=dns_record)
    head, _, body = raw.partition(b"\r\n\r\n")
    forged = {
        "From": b"From: Your Bank <security@bank.example>",
        "List-Unsubscribe": b"List-Unsubscribe: <https://evil.example/x>",
    }
    added = forged.get(name, f"{name}: added in transit".encode())
    lines = head.split(b"\r\n")
    end_of_signature = next(i for i, line in enumerate(lines) if i and not line.startswith((b"\t", b" ")))
    tampered = b"\r\n".join([*lines[:end_of_signature], added, *lines[end_of_signature:]]) + b"\r\n\r\n" + body
    assert not dkim.verify(tampered, dnsfunc=dns_record)
    h_tag = signed_names(raw)
    present = 0 if name == "Reply-To" and b"\r\nReply-To:" not in head else 1
    assert h_tag.count(name.lower()) == present + 1


def test_an_absent_reply_to_is_signed_as_absent(tmp_path):
    raw = compose(config=dkim_config(tmp_path, reply_to="")).raw
    assert b"\r\nReply-To:" not in raw and dkim.verify(raw, dnsfunc=dns_record)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert not dkim.verify(head + b"\r\nReply-To: thief@evil.example\r\n\r\n" + body, dnsfunc=dns_record)


def test_feedback_id_names_the_campaign_list_and_sender_and_no_reader(tmp_path):
    raw = compose(subscriber("jane@example.com", "Jane"), config=dkim_config(tmp_path)).raw
    parsed = parse(raw)
    campaign, mailing, kind, sender = parsed["Feedback-ID"].split(":")
    assert (campaign, mailing, kind) == ("2021-06-01-test", "weekly.news.example.org", "newsletter")
    assert sender == "example"  # the From domain without its last label
    assert "jane" not in parsed["Feedback-ID"].lower()
    assert "feedback-id" in signed_names(raw) and dkim.verify(raw, dnsfunc=dns_record)
    assert parse(compose(test=True).raw)["Feedback-ID"].split(":")[2] == "test"


def test_feedback_id_takes_the_configured_sender_id_or_can_be_turned_off():
    from broadsheet.core.config import Send

    chosen = parse(compose(config=make_config(send=Send(feedback_sender_id="bcecc-news"))).raw)
    assert chosen["Feedback-ID"].endswith(":newsletter:bcecc-news")
    assert "Feedback-ID" not in parse(compose(config=make_config(send=Send(feedback_id=False))).raw)


def test_a_slug_a_feedback_id_cannot_carry_becomes_a_digest():
    issue = dataclasses.replace(make_issue(), slug="2021-06-01-成都: a b")
    value = parse(compose(issue=issue).raw)["Feedback-ID"]
    assert value.count(":") == 3 and " " not in value and value.isascii()


@pytest.mark.parametrize(
    "value, ok",
    [("bcecc-news", True), ("abcd", False), ("a" * 16, False), ("news:list", False), ("news list", False)],
)
def test_a_feedback_sender_id_that_would_break_the_header_is_one_line(tmp_path, value, ok):
    from broadsheet.core.config import load_config

    path = tmp_path / "broadsheet.toml"
    path.write_text(f'[send]\nfeedback_sender_id = "{value}"\n')
    if ok:
        assert load_config(path).send.feedback_sender_id == value
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:2"


def test_list_help_and_list_subscribe_point_at_the_archive_and_the_sign_up_page():
    from broadsheet.core.config import Serve

    parsed = parse(compose(config=make_config(base_url="https://news.example.org",
                                              serve=Serve(public_url="https://join.example.org"))).raw)  # fmt: skip
    assert parsed["List-Help"] == "<https://news.example.org/>"
    assert parsed["List-Subscribe"] == "<https://join.example.org/subscribe>"
    bare = parse(compose().raw)
    assert "List-Help" not in bare and "List-Subscribe" not in bare  # no pages, no headers


def test_out_of_office_replies_are_asked_to_stay_away():
    assert parse(compose().raw)["X-Auto-Response-Suppress"] == "OOF, AutoReply"
