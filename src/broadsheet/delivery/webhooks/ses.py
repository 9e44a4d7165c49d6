"""Amazon SES notifications delivered by SNS (HTTPS subscription, raw message delivery off).

Every SNS message is signed with RSA (SignatureVersion 1: SHA1, 2: SHA256) by the key of a certificate
that SNS names in SigningCertURL. The certificate is fetched (TLS verified) only from
``https://sns.<region>.amazonaws.com/….pem`` and kept; the TopicArn must be one of ``[bounces]
sns_topic_arn`` (anyone can create a topic and sign with Amazon's key, so the topic is what says the
message is ours). A SubscriptionConfirmation is confirmed by fetching its SubscribeURL, from the same hosts.
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from broadsheet.core.events import (
    MailEvent,
    WebhookMalformed,
    WebhookNotConfigured,
    WebhookRejected,
    WebhookUnavailable,
    dedupe_key,
    iso_utc,
    short,
)

from .checks import WebhookContext, WebhookRequest, json_body, table, text

# sns.<region>.amazonaws.com exactly (GovCloud: us-gov-west-1; China: sns.cn-north-1.amazonaws.com.cn), never
# an S3 bucket's host (sns.s3.amazonaws.com, sns.s3-accelerate…, sns.s3-website-…), which anyone can hold
AMAZON_HOST = re.compile(
    r"sns\.(?:[a-z]{2}(?:-gov)?-[a-z]+-\d{1,2}\.amazonaws\.com|cn-[a-z]+-\d{1,2}\.amazonaws\.com\.cn)"
)
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
TIMEOUT = (5.0, 10.0)
FAILED_FOR = 300.0  # seconds a certificate URL Amazon answered no certificate for is refused without a try
FETCH_WAIT = 2.0  # seconds a request waits for another's certificate fetch before answering 503


class SnsCertificates:
    """Fetches and keeps SNS signing certificates, and confirms subscriptions, from Amazon's SNS hosts only.

    Production uses ``SnsCertificates()``: the host must match ``sns.<region>.amazonaws.com`` and TLS is
    verified against the system's trust store. No setting, file or environment variable changes that.
    Tests build one with :meth:`for_local_tests`, which allows one loopback address and port and trusts
    the test CA; nothing else can be allowed that way.
    """

    def __init__(self) -> None:
        self._local: tuple[str, int] | None = None
        self._verify: str | bool = True
        self._cache: dict[str, rsa.RSAPublicKey] = {}
        self._failed: dict[str, float] = {}  # url -> when a fetch of it failed
        self._lock = threading.Lock()
        self._fetching = threading.Lock()  # one fetch at a time: unsigned requests cannot hold every thread

    @classmethod
    def for_local_tests(cls, host: str, port: int, ca_file: str) -> SnsCertificates:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("test certificate sources must be on a loopback address")
        source = cls()
        source._local, source._verify = (host, port), ca_file
        return source

    def allowed(self, url: str) -> bool:
        """True for an https URL on Amazon's SNS hosts (or the one local test server), without user info."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme != "https" or parts.username or parts.password or not parts.hostname:
            return False
        if self._local is not None:
            return (parts.hostname, port) == self._local
        return port in (None, 443) and AMAZON_HOST.fullmatch(parts.hostname) is not None

    def key(self, url: str) -> rsa.RSAPublicKey:
        if not (self.allowed(url) and urlsplit(url).path.endswith(".pem") and not urlsplit(url).query):
            raise WebhookRejected("SigningCertURL is not a certificate on an sns.<region>.amazonaws.com host")
        with self._lock:
            known = self._cache.get(url)
            failed = time.monotonic() - self._failed.get(url, -FAILED_FOR) < FAILED_FOR
        if known is not None:
            return known
        if failed:
            raise WebhookRejected("no SNS signing certificate at that address (asked lately)")
        if not self._fetching.acquire(timeout=FETCH_WAIT):  # answered 503: SNS delivers it again
            raise WebhookUnavailable("another SNS signing certificate is being fetched")
        try:
            response = requests.get(url, timeout=TIMEOUT, verify=self._verify, allow_redirects=False)
        except requests.RequestException:  # the network, not the address: not remembered, tried again
            raise WebhookUnavailable("the SNS signing certificate could not be fetched") from None
        finally:
            self._fetching.release()
        try:
            response.raise_for_status()
            key = x509.load_pem_x509_certificate(response.content).public_key()
        except (requests.RequestException, ValueError):  # Amazon answered, and it is no certificate
            with self._lock:
                if len(self._failed) > 1024:
                    self._failed.clear()
                self._failed[url] = time.monotonic()
            raise WebhookRejected("the SNS signing certificate could not be fetched") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRejected("the SNS signing certificate has no RSA key")
        with self._lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[url] = key
        return key

    def confirm(self, url: str) -> None:
        if not self.allowed(url):
            raise WebhookRejected("SubscribeURL is not on an sns.<region>.amazonaws.com host")
        try:
            requests.get(url, timeout=TIMEOUT, verify=self._verify, allow_redirects=False).raise_for_status()
        except requests.RequestException:
            raise WebhookMalformed("the SNS subscription could not be confirmed (SubscribeURL refused)") from None


CERTIFICATES = SnsCertificates()  # the one production source; tests pass their own in the WebhookContext


def verify(request: WebhookRequest, context: WebhookContext) -> None:
    """The SNS message signed by Amazon for one of our topics; a subscription to one is confirmed here."""
    message = table(json_body(request.body))
    kind = text(message.get("Type"))
    certificates = context.certificates or CERTIFICATES
    if not context.sns_topics:
        raise WebhookNotConfigured(
            "no SNS topic is accepted",
            where="[bounces] sns_topic_arn",
            fix="set sns_topic_arn to the ARN of the topic SES notifies",
        )
    if text(message.get("TopicArn")) not in context.sns_topics:  # before any certificate is fetched
        raise WebhookRejected("the SNS topic is not one of [bounces] sns_topic_arn")
    check_signature(message, kind, certificates)
    if kind == "SubscriptionConfirmation":
        certificates.confirm(text(message.get("SubscribeURL")))


def parse(request: WebhookRequest) -> list[MailEvent]:
    message = table(json_body(request.body))
    if text(message.get("Type")) != "Notification":
        return []  # a subscription (un)confirmed: no event
    return parse_notification(json_body(text(message.get("Message")).encode()), text(message.get("MessageId")))


def check_signature(message: dict[str, Any], kind: str, certificates: SnsCertificates) -> None:
    fields = SIGNED_FIELDS.get(kind)
    algorithm = HASHES.get(text(message.get("SignatureVersion")))
    if fields is None or algorithm is None:
        raise WebhookRejected("not a signed SNS message (Type or SignatureVersion unknown)")
    signed = "".join(f"{name}\n{text(message[name])}\n" for name in fields if message.get(name) is not None)
    try:
        signature = base64.b64decode(text(message.get("Signature")), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("the SNS signature is not base64") from None
    key = certificates.key(text(message.get("SigningCertURL")))
    try:
        key.verify(signature, signed.encode(), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise WebhookRejected("the SNS signature does not match") from None


def parse_notification(payload: object, sns_id: str) -> list[MailEvent]:
    """SES's notification (notificationType) or event publishing (eventType) record -> events."""
    notification = table(payload)
    name = text(notification.get("notificationType") or notification.get("eventType"))
    mail = table(notification.get("mail"))
    ids = {
        "provider_message_id": text(mail.get("messageId")),
        "message_id": text(table(mail.get("commonHeaders")).get("messageId")),
    }
    if name == "Bounce":
        bounce = table(notification.get("bounce"))
        kind = "hard_bounce" if text(bounce.get("bounceType")) == "Permanent" else "soft_bounce"
        report, people, at = bounce, bounce.get("bouncedRecipients"), bounce.get("timestamp")
    elif name == "Complaint":
        report = table(notification.get("complaint"))
        kind, people, at = "complaint", report.get("complainedRecipients"), report.get("timestamp")
    elif name == "Delivery":
        report = table(notification.get("delivery"))
        people = [{"emailAddress": r} for r in report.get("recipients") or [] if isinstance(r, str)]
        kind, at = "delivered", report.get("timestamp")
    else:
        return []
    event_id = text(report.get("feedbackId")) or sns_id
    events = []
    for person in people if isinstance(people, list) else []:
        email = text(table(person).get("emailAddress"))
        if email:
            detail = " ".join(
                filter(
                    None,
                    (
                        text(table(person).get("status")),
                        text(table(person).get("diagnosticCode")),
                        text(report.get("bounceSubType") or report.get("complaintFeedbackType")),
                    ),
                )
            )
            events.append(
                MailEvent(
                    kind=kind,
                    email=email,
                    provider="ses",
                    at=iso_utc(at),
                    dedupe_key=dedupe_key("ses", event_id and f"{event_id}:{email.lower()}", person),
                    detail=short(detail),
                    **ids,
                )
            )
    return events
