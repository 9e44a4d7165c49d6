"""Signed webhook requests made the way each provider documents, with real keys made for the test, and a
local HTTPS server (trustme CA) that plays the SNS certificate host.

The signers are written from the providers' documentation, separately from broadsheet's verifiers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class SendgridSigner:
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: float | None = None) -> dict[str, str]:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        }


@dataclass
class MailgunSigner:
    key: str = field(default_factory=lambda: secrets.token_hex(16))

    def body(self, event_data: dict, timestamp: float | None = None, token: str | None = None) -> bytes:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        token = token or secrets.token_hex(25)
        signature = hmac.new(self.key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        return json.dumps(
            {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event_data}
        ).encode()


@dataclass
class SvixSigner:
    raw: bytes = field(default_factory=lambda: os.urandom(24))

    @property
    def secret(self) -> str:
        return "whsec_" + base64.b64encode(self.raw).decode()

    def sign(self, body: bytes, timestamp: float | None = None, message_id: str | None = None) -> dict[str, str]:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        message_id = message_id or f"msg_{uuid.uuid4().hex}"
        mac = hmac.new(self.raw, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        return {
            "svix-id": message_id,
            "svix-timestamp": stamp,
            "svix-signature": f"v1,{base64.b64encode(b'not-this-one').decode()} v1,{base64.b64encode(mac).decode()}",
        }


class SnsSigner:
    """An RSA signing key with its certificate (served by the local 'SNS' host) and SNS's signing scheme."""

    def __init__(self, cert_url: str, key: rsa.RSAPrivateKey | None = None):
        """``key``: another signer's, for a signer that only needs another certificate URL (a key takes a while)."""
        self.cert_url = cert_url
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def message(self, kind: str, version: str = "2", topic: str = TOPIC, **fields) -> dict:
        message = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "SignatureVersion": version,
            "SigningCertURL": self.cert_url,
            **fields,
        }
        order = (
            ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
            if kind == "Notification"
            else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        )
        text = "".join(f"{k}\n{message[k]}\n" for k in order if k in message)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        message["Signature"] = base64.b64encode(self.key.sign(text.encode(), padding.PKCS1v15(), digest)).decode()
        return message

    def notification(self, ses_record: dict, **kwargs) -> bytes:
        return json.dumps(self.message("Notification", Message=json.dumps(ses_record), **kwargs)).encode()


def local_https(tmp_path) -> tuple[ssl.SSLContext, str]:
    """(server TLS context for 127.0.0.1, path of the CA file that trusts it)."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "test-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


def ses_bounce(
    email: str, bounce_type: str = "Permanent", feedback: str | None = None, message_id: str = "ses-1"
) -> dict:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "feedbackId": feedback or str(uuid.uuid4()),
            "timestamp": "2026-12-01T12:00:00.000Z",
            "bouncedRecipients": [
                {"emailAddress": email, "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
        },
        "mail": {"messageId": message_id, "commonHeaders": {"messageId": "<m1@example.org>"}},
    }
