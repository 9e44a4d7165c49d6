"""Mailgun webhooks (JSON, "signature" + "event-data"): HMAC-SHA256 of timestamp and token with the
webhook signing key (BROADSHEET_MAILGUN_WEBHOOK_KEY); stale timestamps and tokens seen before are refused.
https://documentation.mailgun.com/docs/mailgun/user-manual/events/webhooks/#securing-webhooks
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from broadsheet.core.events import MailEvent, WebhookRejected, dedupe_key, iso_utc, short

from .checks import WebhookContext, WebhookRequest, json_body, require_fresh, table, text

KEY_ENV = "BROADSHEET_MAILGUN_WEBHOOK_KEY"
EVENT_KINDS = {"complained": "complaint", "unsubscribed": "unsubscribe", "delivered": "delivered"}


def verify(request: WebhookRequest, context: WebhookContext) -> None:
    key = context.secret(KEY_ENV)
    signature = table(table(json_body(request.body)).get("signature"))
    timestamp, token, given = (text(signature.get(k)) for k in ("timestamp", "token", "signature"))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest().encode()
    if not (token and hmac.compare_digest(expected, given.lower().encode())):
        raise WebhookRejected("the HMAC signature does not match")
    now = context.clock()
    require_fresh(timestamp, now)
    if not context.replays.first_time(f"mailgun:{token}", now):
        raise WebhookRejected("this signed token was used before (replayed request)")


def parse(request: WebhookRequest) -> list[MailEvent]:
    event = parse_one(table(table(json_body(request.body)).get("event-data")))
    return [event] if event else []


def parse_one(data: dict[str, Any]) -> MailEvent | None:
    name, email = text(data.get("event")), text(data.get("recipient"))
    kind: str | None
    if name == "failed":
        kind = "hard_bounce" if text(data.get("severity")) == "permanent" else "soft_bounce"
    else:
        kind = EVENT_KINDS.get(name)  # accepted, opened, clicked, …: nothing to record
    if not kind or not email:
        return None
    status = table(data.get("delivery-status"))
    message_id = text(table(table(data.get("message")).get("headers")).get("message-id"))
    detail = " ".join(
        filter(
            None,
            (
                text(status.get("code")),
                text(status.get("message")) or text(status.get("description")),
                text(data.get("reason")),
            ),
        )
    )
    return MailEvent(
        kind=kind,
        email=email,
        provider="mailgun",
        at=iso_utc(data.get("timestamp")),
        dedupe_key=dedupe_key("mailgun", text(data.get("id")), data),
        provider_message_id=message_id,
        message_id=message_id,
        detail=short(detail),
    )
