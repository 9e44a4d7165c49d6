"""Each provider's suppression lists, read page by page as its API documents, as MailEvents.

Dedupe keys name the list, the address and the provider's time of the entry, so a second sync of the
same lists records nothing new.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from broadsheet.core.config import Config
from broadsheet.core.events import MailEvent, iso_utc, short

from ..webhooks.checks import table, text
from .reader import ApiReader

POSTMARK_REASONS = {"HardBounce": "hard_bounce", "SpamComplaint": "complaint", "ManualSuppression": "unsubscribe"}
SENDGRID_LISTS = {"bounces": "hard_bounce", "spam_reports": "complaint", "unsubscribes": "unsubscribe"}
SENDGRID_PAGE = 500  # the documented maximum limit
MAILGUN_LISTS = {"bounces": "hard_bounce", "complaints": "complaint", "unsubscribes": "unsubscribe"}
MAILGUN_PAGE = 1000
SES_REASONS = {"BOUNCE": "hard_bounce", "COMPLAINT": "complaint"}
SES_PAGE = 1000


def event(provider: str, kind: str, email: str, at: object, list_name: str, detail: str = "") -> MailEvent:
    when = iso_utc(at)
    return MailEvent(
        kind=kind,
        email=email,
        provider=provider,
        at=when,
        dedupe_key=f"sync:{provider}:{list_name}:{email.lower()}:{when}",
        detail=short(detail),
    )


def postmark(reader: ApiReader, config: Config, since: datetime | None) -> Iterator[MailEvent]:
    """GET /message-streams/{stream}/suppressions/dump (the whole list in one answer)."""
    params = {"fromdate": since.strftime("%Y-%m-%d")} if since else None
    stream = quote(config.postmark.message_stream, safe="")
    answer = table(reader.get(f"/message-streams/{stream}/suppressions/dump", params))
    for entry in answer.get("Suppressions") or []:
        entry = table(entry)
        kind = POSTMARK_REASONS.get(text(entry.get("SuppressionReason")))
        email = text(entry.get("EmailAddress"))
        if kind and email:
            yield event(
                "postmark",
                kind,
                email,
                entry.get("CreatedAt"),
                "suppressions",
                f"suppressed by Postmark ({text(entry.get('SuppressionReason'))}, origin {text(entry.get('Origin'))})",
            )


def sendgrid(reader: ApiReader, config: Config, since: datetime | None) -> Iterator[MailEvent]:
    """GET /v3/suppression/{bounces,spam_reports,unsubscribes}?limit=&offset= until a short page."""
    for list_name, kind in SENDGRID_LISTS.items():
        offset = 0
        while reader.another_page():
            params = {"limit": SENDGRID_PAGE, "offset": offset}
            if since:
                params["start_time"] = int(since.timestamp())
            page = reader.get(f"/v3/suppression/{list_name}", params)
            page = page if isinstance(page, list) else []
            for entry in map(table, page):
                email = text(entry.get("email"))
                if email:
                    detail = " ".join(filter(None, (text(entry.get("status")), text(entry.get("reason")))))
                    yield event(
                        "sendgrid",
                        kind,
                        email,
                        entry.get("created"),
                        list_name,
                        detail or f"on SendGrid's {list_name} list",
                    )
            if len(page) < SENDGRID_PAGE:
                break
            offset += SENDGRID_PAGE


def mailgun(reader: ApiReader, config: Config, since: datetime | None) -> Iterator[MailEvent]:
    """GET /v3/{domain}/{bounces,complaints,unsubscribes}?limit=, then each answer's paging.next until empty
    (or until it names a page already read)."""
    domain = quote(config.mailgun.domain, safe="")
    for list_name, kind in MAILGUN_LISTS.items():
        url = f"/v3/{domain}/{list_name}"
        params: dict[str, int] | None = {"limit": MAILGUN_PAGE}  # paging.next carries its own query
        followed: set[str] = set()
        while reader.another_page():
            answer = table(reader.get(url, params))
            items = answer.get("items") or []
            for entry in map(table, items):
                email, created = text(entry.get("address")), _rfc2822(text(entry.get("created_at")))
                if email and (since is None or created is None or created >= since):
                    detail = " ".join(filter(None, (text(entry.get("code")), text(entry.get("error")))))
                    yield event(
                        "mailgun",
                        kind,
                        email,
                        created.isoformat() if created else None,
                        list_name,
                        detail or f"on Mailgun's {list_name} list",
                    )
            url, params = text(table(answer.get("paging")).get("next")), None
            if not items or not url:
                break
            if url in followed:
                reader.notes.append(f"Mailgun's {list_name} list links to a page already read; stopped there")
                break
            followed.add(url)


def ses(reader: ApiReader, config: Config, since: datetime | None) -> Iterator[MailEvent]:
    """GET /v2/email/suppression/addresses (ListSuppressedDestinations), following NextToken."""
    token = ""
    while reader.another_page():
        params: dict[str, str | int] = {"PageSize": SES_PAGE}
        if since:
            params["StartDate"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        if token:
            params["NextToken"] = token
        params = dict(sorted(params.items()))  # SigV4's canonical query is sorted: send it that way
        answer = table(reader.get("/v2/email/suppression/addresses", params))
        for entry in map(table, answer.get("SuppressedDestinationSummaries") or []):
            kind, email = SES_REASONS.get(text(entry.get("Reason"))), text(entry.get("EmailAddress"))
            if kind and email:
                yield event(
                    "ses",
                    kind,
                    email,
                    entry.get("LastUpdateTime"),
                    "suppression",
                    f"on SES's account suppression list ({text(entry.get('Reason'))})",
                )
        token = text(answer.get("NextToken"))
        if not token:
            break


def _rfc2822(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


PULLS = {"postmark": postmark, "sendgrid": sendgrid, "mailgun": mailgun, "ses": ses}
