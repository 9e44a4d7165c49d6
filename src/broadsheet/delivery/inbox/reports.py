"""What a mail that came back says: delivery status notifications (RFC 3464, and the non-standard
shapes real servers send, read by flufl.bounce), complaint reports (ARF, RFC 5965) and ``mailto:``
unsubscribe requests (the List-Unsubscribe address with subject "unsubscribe").

:func:`read_report` returns the events one mail carries; ``[]`` for a recognised mail that changes nothing
(a delay warning), ``None`` for a mail it does not recognise, :class:`Refused` for a report that may be
forged (both left in the mailbox and counted). Anyone can send a mail, so: with VERP on, a bounce counts
only through a valid token; a complaint report only from a ``feedback_senders`` address, and a
complaint or unsubscribe only when the receiving server authenticated its From (authresults.py).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import logging
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from broadsheet.core.events import MailEvent, iso_utc, short

from .authresults import unauthenticated

# A VERP return path -> the address it was made for (compose.verp.ReturnPaths.recipient_of), or None.
VerpReader = Callable[[str], "str | None"]
# flufl.bounce logs each detector that raises (with its traceback) before raising; a hostile mail must
# not print a traceback: read_report counts such a mail as unrecognised instead.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
logging.getLogger("flufl.bounce").propagate = False

QUOTED_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")


@dataclass(frozen=True)
class Refused:
    """A report not trusted enough to change the store: why (the count's key in the summary)."""

    reason: str


def read_report(
    raw: bytes,
    *,
    unsubscribe_address: str = "",
    verp: VerpReader | None = None,
    feedback_senders: Collection[str] = (),
    authserv_id: str = "",
) -> list[MailEvent] | Refused | None:
    """The events of one mail. ``verp`` (return_path set): bounces only through a valid token;
    ``feedback_senders``: who may send complaint reports; ``authserv_id``: the receiving server whose
    Authentication-Results must show the From of a complaint or unsubscribe mail authenticated."""
    message = email.message_from_bytes(raw)  # compat32: what flufl.bounce reads
    at = iso_utc(_date(message))
    key = _report_key(message, raw)
    content_type = message.get_content_type()
    param = message.get_param("report-type") if content_type == "multipart/report" else None
    report_type = param.lower() if isinstance(param, str) else ""  # an RFC 2231 (encoded) value is no report
    original = _original_headers(message)
    ids = {"message_id": _field(original, "Message-ID") if original else _quoted_message_id(message)}
    if report_type == "feedback-report":
        events = _complaint(message, original, at, key, ids)
        return events and _trusted_complaint(message, feedback_senders, authserv_id, events)
    if report_type == "delivery-status":
        return _dsn(message, at, key, ids, verp)
    bounce = _other_bounce(message, at, key, ids, verp)
    if bounce is not None:
        return bounce
    unsubscribe = _unsubscribe_request(message, unsubscribe_address, at, key)
    why = unauthenticated(message, authserv_id) if unsubscribe else None
    return Refused(f"unsubscribe mail: {why}") if why else unsubscribe


def _tokened(events: list[MailEvent], verp: VerpReader | None, verp_address: str | None) -> list[MailEvent] | Refused:
    """With VERP on, a bounce that changes the store must have come back to a valid token: anyone can
    write a bounce naming any address, only we can make the token."""
    if events and verp is not None and verp_address is None:
        return Refused("bounce: no valid return-path token")
    return events


def _trusted_complaint(
    message: Message, feedback_senders: Collection[str], authserv_id: str, events: list[MailEvent]
) -> list[MailEvent] | Refused:
    """A complaint report only from a provider's feedback loop listed in the config, its From authenticated."""
    if not feedback_senders:
        return Refused("complaint report: [inbox] feedback_senders is empty (your providers' feedback-loop addresses)")
    if _sender(message).lower() not in {s.lower() for s in feedback_senders}:
        return Refused("complaint report: its sender is not in [inbox] feedback_senders")
    why = unauthenticated(message, authserv_id)
    return Refused(f"complaint report: {why}") if why else events


def _complaint(
    message: Message, original: Message | None, at: str, key: str, ids: dict[str, str]
) -> list[MailEvent] | None:
    report = _part(message, "message/feedback-report")
    fields = _fields(report)
    recipients = [a for _, a in getaddresses(fields.get("original-rcpt-to", []))]
    if not recipients and original is not None:
        recipients = [a for _, a in getaddresses(original.get_all("To", []))]
    if report is None or not recipients:
        return None
    detail = f"complaint report ({(fields.get('feedback-type') or ['abuse'])[0].strip()}) from {_sender(message)}"
    return [_event("complaint", r, at, key, short(detail), ids) for r in recipients if "@" in r]


def _dsn(
    message: Message, at: str, key: str, ids: dict[str, str], verp: VerpReader | None
) -> list[MailEvent] | Refused | None:
    status_part = _part(message, "message/delivery-status")
    if status_part is None:
        return _other_bounce(message, at, key, ids, verp)
    blocks = _subparts(status_part)
    events, verp_address = [], _verp_address(message, verp)
    for block in blocks[1:] if len(blocks) > 1 else blocks:  # the first block is about the reporting MTA
        action = _field(block, "Action").lower()
        recipient = verp_address or _address(_field(block, "Original-Recipient") or _field(block, "Final-Recipient"))
        if action != "failed" or not recipient:
            continue  # delayed, delivered, relayed, expanded: not a bounce
        status = _field(block, "Status")
        diagnostic = " ".join(_field(block, "Diagnostic-Code").split())
        kind = "soft_bounce" if status.startswith("4") else "hard_bounce"
        events.append(_event(kind, recipient, at, key, short(f"{status} {diagnostic}".strip()), ids))
    return _tokened(events, verp, verp_address)


def _other_bounce(
    message: Message, at: str, key: str, ids: dict[str, str], verp: VerpReader | None
) -> list[MailEvent] | Refused | None:
    if not _field(message, "From"):
        return None  # every bounce has a From; flufl.bounce's heuristics fail on mails without one
    try:
        temporary, permanent = all_failures(message)
    except Exception:
        return None
    if not permanent and not temporary:
        return None
    verp_address = _verp_address(message, verp)
    if not permanent:
        return []  # a delay warning: the server is still trying
    reason = _reason(message)
    recipients = [verp_address] if verp_address else [a.decode("ascii", "replace") for a in sorted(permanent)]
    return _tokened([_event("hard_bounce", r, at, key, reason, ids) for r in recipients], verp, verp_address)


def _unsubscribe_request(message: Message, unsubscribe_address: str, at: str, key: str) -> list[MailEvent] | None:
    target = unsubscribe_address.removeprefix("mailto:").split("?", 1)[0].strip().lower()
    to = {a.lower() for _, a in getaddresses(message.get_all("To", []) + message.get_all("Delivered-To", []))}
    sender = _sender(message)
    if not target or target not in to or "unsubscribe" not in _field(message, "Subject").lower() or "@" not in sender:
        return None
    return [_event("unsubscribe", sender, at, key, "unsubscribe request by mail (List-Unsubscribe mailto)", {})]


# -- pieces -------------------------------------------------------------------------------------


def _event(kind: str, email_address: str, at: str, key: str, detail: str, ids: dict[str, str]) -> MailEvent:
    return MailEvent(
        kind=kind,
        email=email_address,
        provider="inbox",
        at=at,
        dedupe_key=f"{key}:{email_address.lower()}",
        detail=detail,
        **ids,
    )


def _report_key(message: Message, raw: bytes) -> str:
    """``inbox:`` + a digest of the report's Message-ID (or of its bytes): the same mail read twice is one event."""
    identity = _field(message, "Message-ID").encode("utf-8", "replace") or raw
    return "inbox:" + hashlib.sha256(identity).hexdigest()[:32]


def _part(message: Message, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _fields(part: Message | None) -> dict[str, list[str]]:
    """The header fields of a message/feedback-report part, by lower-case name."""
    if part is None:
        return {}
    payload = part.get_payload()
    blocks = _subparts(part) if isinstance(payload, list) else [email.message_from_string(str(payload))]
    fields: dict[str, list[str]] = {}
    for block in blocks:
        for name, value in block.items():
            fields.setdefault(name.lower(), []).append(str(value))
    return fields


def _original_headers(message: Message) -> Message | None:
    """The headers of the message that bounced or was reported (message/rfc822 or text/rfc822-headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            return next(iter(_subparts(part)), None)
        if kind == "text/rfc822-headers":
            return email.message_from_bytes(_decoded(part))
    return None


def _subparts(part: Message) -> list[Message]:
    """The parts inside a multipart (or message/*) part; [] for a leaf."""
    payload = part.get_payload() if part.is_multipart() else []
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _decoded(part: Message) -> bytes:
    """A leaf part's content with its transfer encoding undone (b"" for a multipart)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _quoted_message_id(message: Message) -> str:
    """The Message-ID of an original quoted in a plain-text bounce (Exim: "a copy of the message")."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            found = QUOTED_MESSAGE_ID.search(_decoded(part).decode("utf-8", "replace"))
            if found:
                return found[1]
    return ""


def _verp_address(message: Message, verp: VerpReader | None) -> str | None:
    """The recipient named by the VERP address the bounce came back to (Delivered-To, X-Original-To, To)."""
    if verp is None:
        return None
    for _, address in getaddresses(
        message.get_all("Delivered-To", []) + message.get_all("X-Original-To", []) + message.get_all("To", [])
    ):
        found = verp(address)
        if found:
            return found
    return None


def _address(field: str) -> str:
    """The address of a DSN recipient field such as ``rfc822; user@example.com``."""
    value = field.split(";", 1)[1] if ";" in field else field
    return parseaddr(value.strip())[1]


def _sender(message: Message) -> str:
    return parseaddr(_field(message, "From"))[1]


def _reason(message: Message) -> str:
    """A line from a non-standard bounce that looks like the server's reason (an SMTP status), if any."""
    for part in message.walk():
        if part.get_content_maintype() == "text" and not part.is_multipart():
            text = _decoded(part).decode("utf-8", "replace")
            for line in text.splitlines():
                if STATUS.search(line) or re.search(r"\b5\d\d\b", line):
                    return short(line)
    return short(_field(message, "Subject"))


def _field(message: Message, name: str) -> str:
    """A header's value as text, stripped ("" when absent; undecodable bytes kept as replacement characters)."""
    value = message.get(name)
    return str(value).strip() if value is not None else ""


def _date(message: Message) -> str | None:
    value = _field(message, "Date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(value)).isoformat()
    except (TypeError, ValueError):
        return None
