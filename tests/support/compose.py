"""Small issues, configs, subscribers and a DKIM key pair for the compose tests."""

from __future__ import annotations

import base64
import email.message
import email.parser
import email.policy
import functools

import pytest

from broadsheet.core.audience import Subscriber
from broadsheet.core.config import Config
from broadsheet.core.render.model import RenderedIssue

HTML = (
    "<html><body><p>Hello {{ subscriber.first_name | default('reader') }} ({{ subscriber.name }})</p>\n"
    '<p>{{ subscriber.city }}</p><a href="{{ view_online_url }}">online</a>\n'
    '<a href="{{ unsubscribe_url }}">unsubscribe</a></body></html>\n'
)
TEXT = "Hello {{ subscriber.first_name | default('reader') }} ({{ subscriber.name }})\n{{ unsubscribe_url }}\n"


def make_issue(*, html: str = HTML, text: str = TEXT, subject: str = "Issue 1: hello") -> RenderedIssue:
    return RenderedIssue(
        slug="2021-06-01-test",
        title="Test",
        subject=subject,
        preheader="",
        mjml="",
        html=html,
        text=text,
        web_html="",
        view_online_url="https://news.example.org/2021-06-01-test/",
    )


def make_config(**overrides) -> Config:
    settings = dict(
        name="The Weekly",
        from_address="The Weekly <news@Example.org>",
        reply_to="editor@example.org",
        list_id="weekly.news.example.org",
        unsubscribe_url="https://news.example.org/unsubscribe?email={email}&token={token}&list={list_id}",
        unsubscribe_mailto="unsubscribe@example.org",
    )
    settings.update(overrides)
    return Config(**settings)


def subscriber(email: str = "jane@example.com", name: str = "Jane Doe", **fields: str) -> Subscriber:
    first_name = fields.pop("first_name", name.split(" ")[0] if name else "")
    values = {**fields, "email": email, "name": name, "first_name": first_name}
    return Subscriber(email=email, name=name, first_name=first_name, fields=values)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)


def parts(raw: bytes) -> tuple[str, str]:
    """The decoded (text, html) of a message, line ends as LF."""
    message = parse(raw)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


@functools.cache
def rsa_key_pair() -> tuple[bytes, bytes]:
    """(PEM private key, DNS TXT record) for DKIM tests; cryptography comes with the test extra (trustme)."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
