"""Resend webhooks, signed the Svix / Standard Webhooks way: HMAC-SHA256 over ``id.timestamp.body`` with
the base64 key after ``whsec_`` (BROADSHEET_RESEND_WEBHOOK_SECRET); ``svix-signature`` lists
``v1,<base64>`` signatures separated by spaces, any of which may match; timestamps older or newer than
five minutes are refused. https://docs.svix.com/receiving/verifying-payloads/how-manual
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from broadsheet.core.events import MailEvent, WebhookNotConfigured, WebhookRejected, iso_utc, short

from .checks import WebhookContext, WebhookRequest, header, json_body, require_fresh, table, text

SECRET_ENV = "BROADSHEET_RESEND_WEBHOOK_SECRET"
BOUNCE_KINDS = {"Permanent": "hard_bounce"}  # Transient and Undetermined count as soft
EVENT_KINDS = {"email.complained": "complaint", "email.delivered": "delivered"}


def verify(request: WebhookRequest, context: WebhookContext) -> None:
    check_signature(request.headers, request.body, signing_key(context.secret(SECRET_ENV)), context.clock())


def parse(request: WebhookRequest) -> list[MailEvent]:
    return parse_payload(table(json_body(request.body)), svix_id(request.headers))


def signing_key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookNotConfigured(
            f"{SECRET_ENV} is not a whsec_… signing secret",
            fix="copy the signing secret of the webhook from Resend's dashboard",
        ) from None


def svix_id(headers: Mapping[str, str]) -> str:
    """The message id Svix signs with the body (the same on every delivery of one event)."""
    return header(headers, "svix-id") or header(headers, "webhook-id")


def check_signature(headers: Mapping[str, str], body: bytes, key: bytes, now: float) -> str:
    """The message id once the signature holds and the timestamp is fresh; WebhookRejected otherwise."""
    message_id = svix_id(headers)
    timestamp = header(headers, "svix-timestamp") or header(headers, "webhook-timestamp")
    signatures = header(headers, "svix-signature") or header(headers, "webhook-signature")
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    matches = [
        hmac.compare_digest(expected, given.encode())
        for version, _, given in (part.partition(",") for part in signatures.split())
        if version == "v1"
    ]
    if not (message_id and any(matches)):
        raise WebhookRejected("the Svix signature does not match")
    require_fresh(timestamp, now)
    return message_id


def parse_payload(payload: dict[str, Any], message_id: str) -> list[MailEvent]:
    name, data = text(payload.get("type")), table(payload.get("data"))
    kind: str | None
    if name == "email.bounced":
        bounce = table(data.get("bounce"))
        kind = BOUNCE_KINDS.get(text(bounce.get("type")), "soft_bounce")
        detail = " ".join(
            filter(None, (text(bounce.get("type")), text(bounce.get("subType")), text(bounce.get("message"))))
        )
    else:
        kind, detail = EVENT_KINDS.get(name), ""
    recipients = data.get("to")
    if not kind or not isinstance(recipients, list):
        return []
    return [
        MailEvent(
            kind=kind,
            email=email,
            provider="resend",
            at=iso_utc(payload.get("created_at")),
            dedupe_key=f"resend:{message_id}:{email.lower()}",
            provider_message_id=text(data.get("email_id")),
            detail=short(detail),
        )
        for email in recipients
        if isinstance(email, str) and email
    ]
