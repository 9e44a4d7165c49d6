"""Whether the receiving server authenticated a mail's From (RFC 8601 Authentication-Results, read by authres).

Only the topmost Authentication-Results header counts, and only when its authserv-id is ``[inbox] authserv_id``:
the receiving server adds its header above everything the sender wrote, so one the sender put lower in the
message is never read. The From passes with DMARC pass, or with DKIM pass (``header.d``) or SPF pass
(``smtp.mailfrom``) for a domain aligned with it; any DMARC fail refuses. Alignment is relaxed, simplified
without a public suffix list: the same domain, or one a subdomain of the other.
"""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses

import authres

MAX_HEADER_CHARS = 8192  # a real header is far shorter; authres's parser is recursive


def unauthenticated(message: Message, authserv_id: str) -> str | None:
    """Why the From of ``message`` is not to be trusted, or None when its receiving server says it passed."""
    if not authserv_id:
        return "[inbox] authserv_id is not set (the name your receiving server gives in Authentication-Results)"
    senders = getaddresses([str(v) for v in message.get_all("From", [])])
    if len(senders) != 1 or senders[0][1].count("@") != 1:
        return "not one From address"
    from_domain = senders[0][1].rpartition("@")[2].lower().rstrip(".")
    found = message.get_all("Authentication-Results", [])
    if not found:
        return "no Authentication-Results"
    value = " ".join(str(found[0]).split())
    try:
        if len(value) > MAX_HEADER_CHARS:
            raise authres.AuthResError("too long")
        header = authres.AuthenticationResultsHeader.parse_value(value)
    except (authres.AuthResError, RecursionError):
        return "unreadable Authentication-Results"
    if str(header.authserv_id).lower() != authserv_id.lower():
        return f"the topmost Authentication-Results is not from {authserv_id}"
    passed = False
    for result in header.results:
        method, outcome = str(result.method).lower(), str(result.result).lower()
        if method == "dmarc" and outcome == "fail":
            return "DMARC failed"
        if outcome == "pass" and method in ("dmarc", "dkim", "spf"):
            passed = passed or _aligned(method, _properties(result), from_domain)
    return None if passed else "no DMARC pass, nor DKIM or SPF pass aligned with the From domain"


def _properties(result: authres.core.BaseAuthenticationResult) -> dict[str, str]:
    """``ptype.property`` -> value, lower-case (``header.d``, ``smtp.mailfrom``)."""
    return {f"{p.type}.{p.name}".lower(): str(p.value).lower() for p in result.properties}


def _aligned(method: str, properties: dict[str, str], from_domain: str) -> bool:
    if method == "dmarc":
        checked = properties.get("header.from", from_domain)
        return checked.rstrip(".") == from_domain
    if method == "dkim":
        domain = properties.get("header.d") or properties.get("header.i", "").rpartition("@")[2]
    else:
        domain = properties.get("smtp.mailfrom", "").rpartition("@")[2]
    domain = domain.rstrip(".")
    if "." not in domain or "." not in from_domain:
        return False
    return domain == from_domain or domain.endswith("." + from_domain) or from_domain.endswith("." + domain)
