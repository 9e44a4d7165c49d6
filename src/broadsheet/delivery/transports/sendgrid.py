"""SendGrid: ``POST /v3/mail/send``, one shared body with up to 1,000 personalizations per call.

Each recipient is one personalization with its own ``to``, headers and ``substitutions`` (its
values for the placeholders in the shared body). A 400 names the bad personalization in its
``field`` (``personalizations.3.to.0.email``): that recipient fails and the rest are sent again.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from typing import Any

import requests

from broadsheet.core.compose.message import Message

from .base import Verdict
from .http import MAX_ID, BatchPart, PartOutcome, address, every, field_of, header, json_bytes
from .shared_body import SharedBodyTransport, split_headers

# SendGrid's reserved headers (besides the structural ones) and those it takes from fields.
DROP = frozenset({"x-sg-id", "x-sg-eid", "received", "dkim-signature", "reply-to", "date"})
_FIELD = re.compile(r"^personalizations\.(\d+)\b")


class SendgridTransport(SharedBodyTransport):
    name = "sendgrid"
    provider = "SendGrid"
    tag = "[%bs.{}%]"
    max_values_bytes = 10_000  # substitutions per personalization

    @property
    def probe_path(self) -> str:
        return "/v3/scopes"  # the scopes of the key that asks

    def read_probe(self, response: requests.Response) -> Verdict:
        if response.status_code != 200:
            return super().read_probe(response)
        scopes = field_of(response, "scopes")
        if not isinstance(scopes, list):
            return (
                "fail",
                "GET /v3/scopes answered without a list of scopes: not SendGrid's answer (check sendgrid.base_url)",
            )
        if "mail.send" not in scopes:
            return (
                "fail",
                f"{self.secret_env} is accepted but lacks the mail.send scope (give the key Mail Send access)",
            )
        return "ok", f"{self.secret_env} accepted, with the mail.send scope"

    def payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        body, values = self.group_of(messages)
        common, own = split_headers(messages, DROP)
        subjects = {m.subject for m in messages}
        first = messages[0]
        data: dict[str, Any] = {
            "personalizations": [
                self._personalization(m, headers, v, len(subjects) > 1)
                for m, headers, v in zip(messages, own, values, strict=False)
            ],
            "from": _email_object(first.from_header),
            "subject": first.subject,
            "content": [{"type": t, "value": v} for t, v in (("text/plain", body.text), ("text/html", body.html)) if v],
        }
        reply_to = header(first, "Reply-To")
        if reply_to:
            data["reply_to"] = _email_object(reply_to)
        if common:
            data["headers"] = common
        return data

    def _personalization(
        self, message: Message, headers: dict[str, Any], values: dict[str, Any], own_subject: bool
    ) -> dict[str, Any]:
        item: dict[str, Any] = {"to": [_email_object(message.to_header, message.recipient, quote_specials=True)]}
        if own_subject:
            item["subject"] = message.subject
        if headers:
            item["headers"] = headers
        if values:
            item["substitutions"] = {self.placeholder(n): v for n, v in values.items()}
        return item

    def send_part(self, messages: BatchPart) -> PartOutcome:
        body = json_bytes(self.payload(messages))
        response = self.post("/v3/mail/send", body=body, headers={"Content-Type": "application/json"})
        self.raise_for_status(response)
        if response.status_code == 400:
            return self._refused(messages, response)
        if response.status_code >= 400:
            raise self.request_error(response)
        return every(messages, "sent", message_id=self._accepted(response))

    def _accepted(self, response: requests.Response) -> str:
        """The X-Message-Id of SendGrid's answer to an accepted request: 202, no body, the header."""
        if response.status_code != 202:
            raise self.unexpected(response, "a status other than 202")
        if response.content.strip():
            raise self.unexpected(response, "a body where SendGrid sends none")
        message_id = response.headers.get("X-Message-Id", "").strip()
        if not 0 < len(message_id) <= MAX_ID:
            raise self.unexpected(response, "no X-Message-Id")
        return message_id

    def _refused(self, messages: Sequence[Message], response: requests.Response) -> PartOutcome:
        """Fail the personalizations the errors name; send the others again."""
        errors = field_of(response, "errors")
        errors = errors if isinstance(errors, list) else []
        bad: dict[int, str] = {}
        for error in errors:
            match = _FIELD.match(str(error.get("field") or "")) if isinstance(error, dict) else None
            if match and int(match.group(1)) < len(messages):
                bad.setdefault(int(match.group(1)), f"400 {error.get('message', '')} ({error.get('field')})")
        if not bad:
            raise self.request_error(response)
        outcome = PartOutcome({i: self.failed(messages[i], reason) for i, reason in bad.items()})
        rest = [i for i in range(len(messages)) if i not in bad]
        if rest:
            outcome.again.append(rest)
        return outcome


def _email_object(value: str, bare: str = "", *, quote_specials: bool = False) -> dict[str, Any]:
    """``{"email", "name"}``. SendGrid takes no bare , or ; in a personalization's to.name (it would
    not quote them in the To header): with ``quote_specials`` such a name goes quoted."""
    name, addr = address(value)
    if not name:
        return {"email": bare or addr}
    if quote_specials and ("," in name or ";" in name):
        name = f'"{email.utils.quote(name)}"'
    return {"email": bare or addr, "name": name}
