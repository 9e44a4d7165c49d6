"""Postmark webhooks (Bounce, SpamComplaint, SubscriptionChange, Delivery), protected by the basic-auth
credentials Postmark puts in the webhook URL (https://user:password@host/webhooks/postmark).

Postmark signs nothing; the credentials arrive in the Authorization header and are compared in constant
time with BROADSHEET_POSTMARK_WEBHOOK_USER and BROADSHEET_POSTMARK_WEBHOOK_PASSWORD.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from broadsheet.core.events import MailEvent, WebhookRejected, dedupe_key, iso_utc, short

from .checks import WebhookContext, WebhookRequest, json_body, table, text

USER_ENV = "BROADSHEET_POSTMARK_WEBHOOK_USER"
PASSWORD_ENV = "BROADSHEET_POSTMARK_WEBHOOK_PASSWORD"

# Bounce "Type" -> kind (https://postmarkapp.com/developer/api/bounce-api#bounce-types); others are ignored
BOUNCE_KINDS = {
    "HardBounce": "hard_bounce",
    "BadEmailAddress": "hard_bounce",
    "ManuallyDeactivated": "hard_bounce",
    "SoftBounce": "soft_bounce",
    "Transient": "soft_bounce",
    "DnsError": "soft_bounce",
    "Blocked": "soft_bounce",
    "Unsubscribe": "unsubscribe",
    "SpamComplaint": "complaint",
}
SUPPRESSION_KINDS = {"HardBounce": "hard_bounce", "SpamComplaint": "complaint", "ManualSuppression": "unsubscribe"}


def verify(request: WebhookRequest, context: WebhookContext) -> None:
    check_credentials(request.header("Authorization"), context.secret(USER_ENV), context.secret(PASSWORD_ENV))


def parse(request: WebhookRequest) -> list[MailEvent]:
    return parse_record(json_body(request.body))


def check_credentials(authorization: str, user: str, password: str) -> None:
    scheme, _, encoded = authorization.partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True) if scheme.lower() == "basic" else b""
    except (binascii.Error, ValueError):
        given = b""
    given_user, _, given_password = given.partition(b":")
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    if not (user_ok and password_ok):
        raise WebhookRejected("the basic-auth credentials are missing or wrong")


def parse_record(payload: object) -> list[MailEvent]:
    record = table(payload)
    record_type = text(record.get("RecordType"))
    if record_type in ("Bounce", "SpamComplaint"):
        kind = "complaint" if record_type == "SpamComplaint" else BOUNCE_KINDS.get(text(record.get("Type")))
        email, event_id = text(record.get("Email")), text(record.get("ID"))
        if not kind or not email:
            return []
        return [
            _event(
                kind,
                email,
                record,
                record.get("BouncedAt"),
                event_id and f"bounce:{event_id}",
                short(record.get("Details") or record.get("Description")),
            )
        ]
    if record_type == "SubscriptionChange":
        kind = SUPPRESSION_KINDS.get(text(record.get("SuppressionReason")))
        email = text(record.get("Recipient"))
        if record.get("SuppressSending") is not True or not kind or not email:
            return []  # a reactivation is not a subscription: the subscriber signs up again themselves
        return [
            _event(
                kind,
                email,
                record,
                record.get("ChangedAt"),
                None,
                short(
                    f"suppressed by Postmark ({record.get('SuppressionReason')}, origin {text(record.get('Origin'))})"
                ),
            )
        ]
    if record_type == "Delivery":
        email, message = text(record.get("Recipient")), text(record.get("MessageID"))
        if not email:
            return []
        return [
            _event(
                "delivered",
                email,
                record,
                record.get("DeliveredAt"),
                message and f"delivery:{message}:{email}",
                short(record.get("Details")),
            )
        ]
    return []


def _event(kind: str, email: str, record: dict[str, Any], at: object, event_id: str | None, detail: str) -> MailEvent:
    return MailEvent(
        kind=kind,
        email=email,
        provider="postmark",
        at=iso_utc(at),
        dedupe_key=dedupe_key("postmark", event_id, record),
        provider_message_id=text(record.get("MessageID")),
        detail=detail,
    )
