"""The composed message: what compose hands to every transport."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Message:
    """One personalised message for one recipient.

    ``raw`` is the complete RFC 5322 message (CRLF line ends, every line at most 998 bytes) for
    transports that take raw bytes (SMTP, outbox, SES); the other fields serve API transports that
    take structured JSON. ``headers`` holds every header but From, To and Subject, already
    encoded where needed and checked for CR/LF.
    """

    recipient: str  # bare address: RCPT TO and the journal key
    sender: str  # bare envelope sender: MAIL FROM
    from_header: str
    to_header: str
    subject: str
    headers: dict[str, str]
    html: str
    text: str
    raw: bytes
    merge: dict[str, str] = field(default_factory=dict)  # the subscriber fields used, for API substitutions
