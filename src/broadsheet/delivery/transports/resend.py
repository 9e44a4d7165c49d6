"""Resend: ``POST /emails/batch``, up to 100 emails per call, idempotent, permissive validation.

The ``Idempotency-Key`` is a digest of the exact payload (after the caller's batch key, when one is
given: ``send --test`` gives a fresh one, the campaign runner none), so a request sent again after no
answer is delivered once; ``x-batch-validation: permissive`` makes Resend send the
valid emails and list the others as ``errors`` with their index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import requests

from broadsheet.core.compose.alignment import from_domain
from broadsheet.core.compose.headers import encoded_words
from broadsheet.core.compose.message import Message
from broadsheet.core.errors import TransientTransportError, TransportError

from .base import Delivery, Verdict
from .http import (
    BatchPart,
    HttpTransport,
    PartOutcome,
    about_recipient,
    address,
    api_headers,
    every,
    field_of,
    header,
    json_bytes,
    strings,
)

# Reply-To goes in reply_to. Date and Message-ID change each time a batch is composed again: sent,
# they would change the payload of a retry, and Resend answers a key reused with another payload
# with 409; Resend dates and identifies the message itself.
DROP = frozenset({"reply-to", "date", "message-id"})
MAX_KEY = 256


class ResendTransport(HttpTransport):
    name = "resend"
    provider = "Resend"
    idempotent = True

    @property
    def probe_path(self) -> str:
        return "/domains"  # the account's domains and their verification status

    def read_probe(self, response: requests.Response) -> Verdict:
        if response.status_code == 401 and field_of(response, "name") == "restricted_api_key":
            return "ok", f"{self.secret_env} accepted (a sending-only key: the domains stay unread)"
        if response.status_code != 200:
            return super().read_probe(response)
        listed = field_of(response, "data")
        if not isinstance(listed, list):
            return "fail", "GET /domains answered without a list: not Resend's answer (check resend.base_url)"
        domain = from_domain(self.config)
        states = {str(d.get("name", "")).lower(): d.get("status") for d in listed if isinstance(d, dict)}
        if domain not in states:
            return (
                "warn",
                f"{self.secret_env} accepted, but {domain} (the From domain) is not among the account's domains",
            )
        if states[domain] != "verified":
            return (
                "warn",
                f"{self.secret_env} accepted, but {domain} is {states[domain]} in Resend: finish its DNS set-up",
            )
        return "ok", f"{self.secret_env} accepted; {domain} is verified"

    def payload(self, message: Message) -> dict[str, Any]:
        name, addr = address(message.from_header)
        data: dict[str, Any] = {
            "from": f"{name} <{addr}>" if name else addr,  # Resend refuses encoded words in from
            "to": [_unquoted(message.to_header)],
            "subject": message.subject,
            "html": message.html,
            "text": message.text,
        }
        headers = api_headers(message, DROP)
        if headers:
            data["headers"] = headers
        reply_to = header(message, "Reply-To")
        if reply_to:
            data["reply_to"] = [_unquoted(reply_to)]
        return data

    @staticmethod
    def idempotency_key(body: bytes, batch_key: str | None = None) -> str:
        """The caller's batch key (when given) and a digest of the exact payload: the same request sent
        again gets the same key, and no key is ever reused for a different payload."""
        digest = hashlib.sha256(body).hexdigest()[:40]
        prefix = f"broadsheet/{batch_key}/" if batch_key else "broadsheet/"
        return prefix[: MAX_KEY - len(digest)] + digest

    def send_part(self, messages: BatchPart) -> PartOutcome:
        body = json_bytes([self.payload(m) for m in messages])
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": self.idempotency_key(body, messages.batch_key),
            "x-batch-validation": "permissive",
        }
        response = self.post("/emails/batch", body=body, headers=headers)
        self.raise_for_status(response)
        if response.status_code == 409:
            return self._conflict(messages, response)
        if response.status_code >= 400:
            raise self.request_error(response)
        answer = self.json_answer(response)
        problem = _shape_problem(answer, len(messages))
        if problem:
            raise self.unexpected(response, problem)
        return self._read(messages, answer)

    def _conflict(self, messages: Sequence[Message], response: requests.Response) -> PartOutcome:
        """409: the same key is being processed (retry soon), or was used for another payload
        (that one went through, with results we cannot see)."""
        reason = self.error_text(response)
        if "concurrent" in reason:
            raise TransientTransportError(reason, where=self.where, retry_after=1)
        return every(messages, "unknown", detail=self.detail(reason))

    def _read(self, messages: Sequence[Message], answer: dict[str, Any]) -> PartOutcome:
        """Sent, or failed with Resend's reason (an answer ``_shape_problem`` found nothing wrong in)."""
        refused = {e["index"]: e["message"] for e in answer.get("errors") or []}
        accepted = [i for i in range(len(messages)) if i not in refused]
        if not accepted and not any(about_recipient(reason) for reason in refused.values()):
            raise TransportError(f"refused every email: {self.shorten(refused[0])}", where=self.where)
        outcome = PartOutcome({i: self.failed(messages[i], f"422 {reason}") for i, reason in refused.items()})
        for i, item in zip(accepted, answer["data"], strict=False):
            outcome.deliveries[i] = Delivery(messages[i].recipient, "sent", message_id=item["id"])
        return outcome


def _shape_problem(answer: object, count: int) -> str:
    """What keeps ``answer`` from being Resend's batch answer for ``count`` emails: ``data``, one
    ``{"id"}`` per email sent, and ``errors``, one ``{"index", "message"}`` per email refused."""
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        return "no data array"
    errors = answer.get("errors") or []
    if not isinstance(errors, list) or not all(
        isinstance(e, dict)
        and type(e.get("index")) is int
        and 0 <= e["index"] < count
        and isinstance(e.get("message"), str)
        for e in errors
    ):
        return "errors that name no email of the batch"
    if len({e["index"] for e in errors}) != len(errors) or len(answer["data"]) != count - len(errors):
        return "an answer that does not account for every email"
    if not all(strings(item, "id") for item in answer["data"]):
        return "a sent email without its id"
    return ""


def _unquoted(value: str) -> str:
    """An address for to and reply_to. Resend refuses a quoted display name (``"J. Smith" <…>``):
    such a name goes as RFC 2047 encoded-words instead, as django-anymail sends it."""
    if not value.startswith('"'):
        return value
    name, addr = address(value)
    return f"{encoded_words(name)} <{addr}>"
