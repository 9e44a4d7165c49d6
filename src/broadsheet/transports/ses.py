"""Amazon SES v2: ``POST /v2/email/outbound-emails`` with our raw message, one per call, SigV4-signed."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from requests_aws4auth import AWS4Auth

from ..compose.message import Message
from ..config import secret
from ..errors import TransientTransportError, TransportAuthError
from .base import Delivery
from .http import HttpTransport, Outcome, every, json_bytes

# Error types (x-amzn-ErrorType) that mean this account or sender cannot send now: stop the campaign.
STOP_TYPES = frozenset(
    {"AccountSuspendedException", "SendingPausedException", "MailFromDomainNotVerifiedException", "NotFoundException"}
)
THROTTLE_TYPES = frozenset({"TooManyRequestsException", "LimitExceededException", "ThrottlingException"})


class SesTransport(HttpTransport):
    name = "ses"
    provider = "Amazon SES"
    secret_env = "AWS_SECRET_ACCESS_KEY"
    max_batch = 1

    @property
    def base_url(self) -> str:
        return self.config.ses.base_url or f"https://email.{self.config.ses.region}.amazonaws.com"

    def load_credentials(self) -> tuple[str, ...]:
        access = secret("AWS_ACCESS_KEY_ID")
        key = secret("AWS_SECRET_ACCESS_KEY")
        token = os.environ.get("AWS_SESSION_TOKEN", "")
        self._signer = AWS4Auth(access, key, self.config.ses.region, "ses", session_token=token or None)
        return (key, token, access)  # the key ID too: kept out of every message like the others

    def request_credentials(self) -> dict:
        return {"auth": self._signer}

    def payload(self, message: Message) -> dict:
        data: dict = {
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": base64.b64encode(message.raw).decode("ascii")}},
        }
        if self.config.ses.configuration_set:
            data["ConfigurationSetName"] = self.config.ses.configuration_set
        return data

    def send_part(self, messages: Sequence[Message]) -> Outcome:
        (message,) = messages
        body = json_bytes(self.payload(message))
        response = self.post("/v2/email/outbound-emails", body=body, headers={"Content-Type": "application/json"})
        if response.status_code >= 400 and "daily message quota exceeded" in self.error_text(response).lower():
            raise TransportAuthError(f"{self.provider}: the daily sending quota is used up", where=self.where,
                                     fix="run the same send again once the quota resets, or ask AWS to raise it")
        self.raise_for_status(response)
        if response.status_code < 300:
            answer = self.json_answer(response)
            message_id = str(answer.get("MessageId", "")) if isinstance(answer, dict) else ""
            return every(messages, "sent", message_id=message_id)
        return Outcome({0: self._refused(message, response)})

    def _refused(self, message: Message, response) -> Delivery:
        kind = _error_type(response)
        reason = self.error_text(response)
        if kind in STOP_TYPES or (kind == "MessageRejected" and message.sender in reason and "not verified" in reason):
            raise self.auth_error(response, reason=f"{kind}: {reason}")
        if kind in THROTTLE_TYPES or "Maximum sending rate exceeded" in reason:
            raise TransientTransportError(f"{self.provider} throttled: {kind} {reason}", where=self.where)
        return self.failed(message, f"{response.status_code} {kind}: {reason}".replace(" :", ":"))


def _error_type(response) -> str:
    """The AWS error type: the ``x-amzn-ErrorType`` header, else ``__type`` in the body."""
    kind = response.headers.get("x-amzn-ErrorType", "")
    if not kind:
        try:
            kind = str(response.json().get("__type", ""))
        except (ValueError, AttributeError):
            kind = ""
    return kind.split(":")[0].rpartition("#")[2]
