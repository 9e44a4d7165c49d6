"""SendGrid's Event Webhook, signed: ECDSA P-256 with SHA-256 over the timestamp header followed by the
raw body, checked with the verification key SendGrid shows (BROADSHEET_SENDGRID_WEBHOOK_KEY, base64 DER
or PEM). https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from broadsheet.core.events import MailEvent, WebhookNotConfigured, WebhookRejected, dedupe_key, iso_utc, short

from .checks import WebhookContext, WebhookRequest, json_body, require_fresh, table, text

KEY_ENV = "BROADSHEET_SENDGRID_WEBHOOK_KEY"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

DROPPED_KINDS = {
    "Bounced Address": "hard_bounce",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribe",
}
EVENT_KINDS = {
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
    "delivered": "delivered",
}


def verify(request: WebhookRequest, context: WebhookContext) -> None:
    key = public_key(context.secret(KEY_ENV))
    timestamp = request.header(TIMESTAMP_HEADER)
    try:
        signature = base64.b64decode(request.header(SIGNATURE_HEADER), validate=True)
        key.verify(signature, timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookRejected("the ECDSA signature does not match") from None
    require_fresh(timestamp, context.clock())


def parse(request: WebhookRequest) -> list[MailEvent]:
    events = json_body(request.body)
    return [e for item in (events if isinstance(events, list) else []) if (e := parse_one(table(item)))]


@lru_cache(maxsize=4)
def public_key(value: str) -> ec.EllipticCurvePublicKey:
    try:
        key = (
            load_pem_public_key(value.encode())
            if "BEGIN" in value
            else load_der_public_key(base64.b64decode(value.strip(), validate=True))
        )
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WebhookNotConfigured(
            f"{KEY_ENV} is not an ECDSA public key",
            fix="copy the verification key from SendGrid's Mail Settings > Event Webhook",
        )
    return key


def parse_one(item: dict[str, Any]) -> MailEvent | None:
    name, email = text(item.get("event")), text(item.get("email"))
    kind: str | None
    if name == "bounce":
        kind = "soft_bounce" if text(item.get("type")) == "blocked" else "hard_bounce"
    elif name == "dropped":
        kind = DROPPED_KINDS.get(text(item.get("reason")))
    else:
        kind = EVENT_KINDS.get(name)  # deferred, processed, open, click: nothing to record
    if not kind or not email:
        return None
    detail = " ".join(filter(None, (text(item.get("status")), text(item.get("reason")), text(item.get("response")))))
    return MailEvent(
        kind=kind,
        email=email,
        provider="sendgrid",
        at=iso_utc(item.get("timestamp")),
        dedupe_key=dedupe_key("sendgrid", text(item.get("sg_event_id")), item),
        provider_message_id=text(item.get("sg_message_id")).split(".filter", 1)[0],  # X-Message-Id + filter suffix
        message_id=text(item.get("smtp-id")),
        detail=short(detail),
    )
