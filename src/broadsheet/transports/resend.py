"""Resend: ``POST /emails/batch``, up to 100 emails per call, idempotent, permissive validation.

The ``Idempotency-Key`` comes from the batch key the campaign passes (campaign and batch), so a
retried batch is never delivered twice; ``x-batch-validation: permissive`` makes Resend send the
valid emails and list the others as ``errors`` with their index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..compose.headers import encoded_words
from ..compose.message import Message
from ..errors import TransientTransportError, TransportError
from .base import Delivery
from .http import (
    AmbiguousSend, HttpTransport, Outcome, about_recipient, address, api_headers, every, header, json_bytes,
)

# Reply-To goes in reply_to. Date and Message-ID change each time a batch is composed again: sent,
# they would change the payload of a retry, and Resend answers a key reused with another payload
# with 409; Resend dates and identifies the message itself.
DROP = frozenset({"reply-to", "date", "message-id"})
MAX_KEY = 256


class ResendTransport(HttpTransport):
    name = "resend"
    provider = "Resend"
    secret_env = "BROADSHEET_RESEND_KEY"
    max_batch = 100
    idempotent = True

    def payload(self, message: Message) -> dict:
        name, addr = address(message.from_header)
        data: dict = {
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

    def idempotency_key(self, body: bytes) -> str:
        """The campaign's batch key (when given) and a digest of the exact payload: a retried batch
        gets the same key, and no key is ever reused for a different payload."""
        digest = hashlib.sha256(body).hexdigest()[:40]
        prefix = f"broadsheet/{self.batch_key}/" if self.batch_key else "broadsheet/"
        return prefix[: MAX_KEY - len(digest)] + digest

    def send_part(self, messages: Sequence[Message]) -> Outcome:
        body = json_bytes([self.payload(m) for m in messages])
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": self.idempotency_key(body),
            "x-batch-validation": "permissive",
        }
        response = self.post("/emails/batch", body=body, headers=headers)
        self.raise_for_status(response)
        if response.status_code == 409:
            return self._conflict(messages, response)
        if response.status_code >= 300:
            raise self.request_error(response)
        return self._read(messages, self.json_answer(response))

    def _conflict(self, messages: Sequence[Message], response) -> Outcome:
        """409: the same key is being processed (retry soon), or was used for another payload
        (that one went through, with results we cannot see)."""
        reason = self.error_text(response)
        if "concurrent" in reason:
            raise TransientTransportError(f"{self.provider}: {reason}", where=self.where, retry_after=1)
        detail = self.redact(f"{self.provider}: {reason}")
        return every(messages, "unknown", detail=detail)

    def _read(self, messages: Sequence[Message], answer: object) -> Outcome:
        data = answer.get("data") if isinstance(answer, dict) else None
        errors = (answer.get("errors") if isinstance(answer, dict) else None) or []
        refused = {e["index"]: e.get("message", "") for e in errors if isinstance(e, dict) and "index" in e}
        accepted = [i for i in range(len(messages)) if i not in refused]
        if not isinstance(data, list) or len(data) != len(accepted):
            raise AmbiguousSend(f"{self.provider}: the answer does not account for every email")
        if not accepted and not any(about_recipient(reason) for reason in refused.values()):
            raise TransportError(f"{self.provider} refused every email: {self.redact(refused[0])}", where=self.where)
        outcome = Outcome({i: self.failed(messages[i], f"422 {reason}") for i, reason in refused.items()})
        for i, item in zip(accepted, data):
            message_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            outcome.deliveries[i] = Delivery(messages[i].recipient, "sent", message_id=message_id)
        return outcome


def _unquoted(value: str) -> str:
    """An address for to and reply_to. Resend refuses a quoted display name (``"J. Smith" <…>``):
    such a name goes as RFC 2047 encoded-words instead, as django-anymail sends it."""
    if not value.startswith('"'):
        return value
    name, addr = address(value)
    return f"{encoded_words(name)} <{addr}>"
