"""Postmark: ``POST /email/batch``, up to 500 messages and 50 MB per call, a result per message."""

from __future__ import annotations

from typing import Any

import requests

from broadsheet.core.compose.message import Message
from broadsheet.core.errors import TransportError

from .base import Delivery, Verdict
from .http import (
    BatchPart,
    HttpTransport,
    PartOutcome,
    about_recipient,
    api_headers,
    field_of,
    header,
    json_bytes,
    json_of,
    prepared_of,
    strings,
)

MAX_CALL_BYTES = 50 * 1000 * 1000  # the batch endpoint's payload limit
MAX_MESSAGE_BYTES = 10 * 1000 * 1000  # one message's limit on the Email API
# ErrorCodes that mean the token or the sender is not good for sending: stop the campaign.
AUTH_CODES = frozenset({10, 400, 401, 405, 412, 413})
# ErrorCodes that mean the MessageStream setting names no stream this server can send through.
STREAM_CODES = frozenset({1221, 1235, 1236})
DEFERRED_CODES = frozenset({100, 429})  # maintenance, rate limit: worth trying again
INACTIVE_RECIPIENT = 406  # Postmark deactivated the address (a hard bounce or a complaint): a hard bounce here
DROP = frozenset({"reply-to", "date"})  # Reply-To goes in ReplyTo; Postmark dates the message itself


class PostmarkTransport(HttpTransport):
    name = "postmark"
    provider = "Postmark"

    def request_credentials(self) -> dict[str, Any]:
        return {"headers": {"X-Postmark-Server-Token": self._secrets[0]}}

    @property
    def probe_path(self) -> str:
        return "/server"  # the server's own settings, readable with its token

    def read_probe(self, response: requests.Response) -> Verdict:
        if response.status_code == 200:
            name = strings(json_of(response), "Name")
            server = f" (server {name[0]!r})" if name else ""
            return "ok", f"{self.secret_env} accepted{server}"
        return super().read_probe(response)

    def split(self, batch: BatchPart) -> list[BatchPart]:
        """Chunks under the 50 MB call limit (one chunk for any ordinary newsletter), each message
        prepared as its JSON."""
        encoded = [json_bytes(self.payload(m)) for m in batch]
        batch = BatchPart(batch, positions=batch.positions, prepared=encoded, batch_key=batch.batch_key)
        parts: list[list[int]] = [[]]
        size = 2
        for position, data in enumerate(encoded):
            if parts[-1] and size + len(data) + 1 > MAX_CALL_BYTES:
                parts.append([])
                size = 2
            parts[-1].append(position)
            size += len(data) + 1
        return [batch.subset(chunk) for chunk in parts]

    def payload(self, message: Message) -> dict[str, Any]:
        data = {
            "From": message.from_header,
            "To": message.to_header,
            "Subject": message.subject,
            "HtmlBody": message.html,
            "TextBody": message.text,
            "MessageStream": self.config.postmark.message_stream,
            "Headers": [{"Name": k, "Value": v} for k, v in api_headers(message, DROP).items()],
        }
        reply_to = header(message, "Reply-To")
        if reply_to:
            data["ReplyTo"] = reply_to
        return data

    def send_part(self, messages: BatchPart) -> PartOutcome:
        encoded = [
            data or json_bytes(self.payload(m)) for m, data in zip(messages, prepared_of(messages), strict=False)
        ]
        outcome = PartOutcome()
        sendable = []
        for position, (message, data) in enumerate(zip(messages, encoded, strict=False)):
            if len(data) > MAX_MESSAGE_BYTES:
                outcome.deliveries[position] = self.failed(message, "message larger than the 10 MB limit")
            else:
                sendable.append(position)
        if not sendable:
            return outcome
        body = b"[" + b",".join(encoded[p] for p in sendable) + b"]"
        response = self.post("/email/batch", body=body, headers={"Content-Type": "application/json"})
        self.raise_for_status(response)
        if response.status_code == 422:
            raise self._whole_request_error(response)
        if response.status_code >= 400:
            raise self.request_error(response)
        answers = self.json_answer(response)
        problem = _shape_problem(answers, len(sendable))
        if problem:
            raise self.unexpected(response, problem)
        results = [self._result(messages[p], a) for p, a in zip(sendable, answers, strict=False)]
        if all(r is None for r in results):
            reason = self.shorten(self._reason(answers[0]))
            code = answers[0].get("ErrorCode")
            if code in AUTH_CODES:
                raise self.auth_error(reason=reason)
            fix = "check postmark.message_stream (the stream's ID)" if code in STREAM_CODES else None
            raise TransportError(f"refused every message: {reason}", where=self.where, fix=fix)
        for p, result, answer in zip(sendable, results, answers, strict=False):
            outcome.deliveries[p] = result or self.deferred(messages[p], self._reason(answer))
        return outcome

    def _result(self, message: Message, answer: dict[str, Any]) -> Delivery | None:
        """This message's Delivery; None when its code says the token, sender or message stream is
        refused, or the message is refused for something every message shares (300 about From)."""
        code = answer["ErrorCode"]
        if code == 0:
            return Delivery(message.recipient, "sent", message_id=answer["MessageID"])
        shared = code == 300 and not about_recipient(str(answer.get("Message", "")))
        if code in AUTH_CODES or code in STREAM_CODES or shared:
            return None
        if code in DEFERRED_CODES:
            return self.deferred(message, self._reason(answer))
        bounce = "hard_bounce" if code == INACTIVE_RECIPIENT else ""
        return self.failed(message, self._reason(answer), bounce=bounce)

    @staticmethod
    def _reason(answer: dict[str, Any]) -> str:
        return f"{answer.get('ErrorCode')} {answer.get('Message', '')}".strip()

    def _whole_request_error(self, response: requests.Response) -> TransportError:
        code = field_of(response, "ErrorCode")
        return self.auth_error(response) if code in AUTH_CODES else self.request_error(response)


def _shape_problem(answers: object, count: int) -> str:
    """What keeps ``answers`` from being Postmark's batch answer for ``count`` messages: an array of
    one object per message, each with an integer ErrorCode, and for 0 (sent) its MessageID and To."""
    if not isinstance(answers, list) or len(answers) != count:
        return f"not an array of {count} results"
    for answer in answers:
        code = answer.get("ErrorCode") if isinstance(answer, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return "a result without an ErrorCode"
        if code == 0 and strings(answer, "MessageID", "To") is None:
            return "a sent result without its MessageID and To"
    return ""
