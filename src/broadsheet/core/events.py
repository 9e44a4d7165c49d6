"""What comes back after a send, in one shape whichever way it arrived (webhook, API pull, mailbox)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import BroadsheetError

KINDS: tuple[str, ...] = ("hard_bounce", "soft_bounce", "complaint", "unsubscribe", "delivered")


class WebhookError(BroadsheetError):
    """A webhook request that is not applied: answered ``status`` with ``answer``, recorded nowhere, logged
    at ``level``. The one error a provider's adapter raises (one of the kinds below)."""

    status = 400
    level = logging.INFO
    reply = "bad request"

    @property
    def answer(self) -> str:
        return self.reply


class WebhookRejected(WebhookError):
    """A webhook request whose signature, credentials or timestamp do not hold: answered 401."""

    status, level, reply = 401, logging.WARNING, "refused"


class WebhookNotConfigured(WebhookError):
    """The secret or setting a provider's webhook needs is missing: answered 503."""

    status, level, reply = 503, logging.ERROR, "webhook not configured on this server"


class WebhookUnavailable(WebhookError):
    """What a webhook needs cannot be had just now (a signing certificate): answered 503, so that the
    provider delivers it again (SNS drops a notification answered 4xx)."""

    status, level, reply = 503, logging.WARNING, "try again later"


class WebhookMalformed(WebhookError):
    """A verified webhook request whose body cannot be read: answered 400 with what is wrong."""

    @property
    def answer(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class MailEvent:
    """One thing that happened to one message for one recipient, normalised from a provider's report."""

    kind: str  # one of KINDS
    email: str
    provider: str  # postmark, sendgrid, mailgun, ses, resend, inbox, …
    at: str  # ISO 8601 UTC, e.g. 2026-12-01T14:00:00Z
    dedupe_key: str  # the provider's event id, or a digest of the raw report: recording it twice changes nothing
    provider_message_id: str = ""
    message_id: str = ""  # the RFC 5322 Message-ID, when the report carries it
    campaign: str = ""  # the campaign slug, when known
    detail: str = ""  # the server's or provider's reason, shortened


ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")  # RFC 3463: class.subject.detail
# permanent codes about the message or the sender, not the address: a full mailbox (5.2.2), too big (5.2.3),
# the mail system (5.3.x), the content (5.6.x), policy and security (5.7.x: spam filters, DMARC)
NOT_THE_ADDRESS = {("2", "2"), ("2", "3")}
NOT_THE_ADDRESS_SUBJECTS = {"3", "6", "7"}
HARD_BASIC_CODES = {550, 551, 553}  # without an enhanced code: mailbox unavailable, not local, name not allowed


def rejection_kind(reply: str) -> str:
    """``hard_bounce`` or ``soft_bounce`` for a server's reply refusing a recipient ("550 5.1.1 no such
    user"). The enhanced status code decides: 5.x.x about the address or mailbox is hard; 4.x.x, and
    5.x.x about the message, the sender or policy, are soft (they count toward ``[bounces] soft_limit``)."""
    found = ENHANCED_STATUS.search(reply[:80])
    if found is not None:
        klass, subject, detail = found.groups()
        if klass != "5" or subject in NOT_THE_ADDRESS_SUBJECTS or (subject, detail) in NOT_THE_ADDRESS:
            return "soft_bounce"
        return "hard_bounce"
    code = reply[:3]
    return "hard_bounce" if code.isdigit() and int(code) in HARD_BASIC_CODES else "soft_bounce"


def dedupe_key(provider: str, event_id: str | None, raw: Any) -> str:
    """``provider:event_id`` when the provider names its events, else ``provider:sha256(raw)``."""
    if event_id:
        return f"{provider}:{event_id}"
    data = raw if isinstance(raw, bytes) else json.dumps(raw, sort_keys=True, default=str).encode()
    return f"{provider}:sha256:{hashlib.sha256(data).hexdigest()}"


def iso_utc(value: Any) -> str:
    """An ISO 8601 UTC timestamp from a Unix time (int/float/str) or an ISO string; now when unreadable."""
    moment: datetime | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = _from_unix(float(value))
    elif isinstance(value, str) and value:
        try:
            moment = _from_unix(float(value))
        except ValueError:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                moment = None
    if moment is None:
        moment = datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # at the calendar's edge: 9999-12-31T23:59:59-12:00 is in the year 10000 in UTC
        moment = datetime.now(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"  # strftime's %Y: "1", not "0001"


def short(text: Any, limit: int = 300) -> str:
    """A detail for the events table: one line, printable, at most ``limit`` characters."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _from_unix(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
