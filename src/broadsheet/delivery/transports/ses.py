"""Amazon SES v2: ``POST /v2/email/outbound-emails`` with our raw message, one per call, SigV4-signed."""

from __future__ import annotations

import base64
import re
from typing import Any

import requests
from requests_aws4auth import AWS4Auth

from broadsheet.core.compose.message import Message
from broadsheet.core.config import secret
from broadsheet.core.errors import ConfigError, TransientTransportError, TransportQuotaError

from .base import Delivery, Verdict
from .http import BatchPart, HttpTransport, PartOutcome, every, field_of, json_bytes, json_of, strings

# Error types (x-amzn-ErrorType) that mean this account or sender cannot send now: stop the campaign.
STOP_TYPES = frozenset(
    {"AccountSuspendedException", "SendingPausedException", "MailFromDomainNotVerifiedException", "NotFoundException"}
)
THROTTLE_TYPES = frozenset({"TooManyRequestsException", "LimitExceededException", "ThrottlingException"})
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")  # us-east-1, eu-central-2, us-gov-west-1


class SesTransport(HttpTransport):
    name = "ses"
    raw_only = True
    provider = "Amazon SES"

    @property
    def base_url(self) -> str:
        return self.config.ses.base_url or f"https://email.{self.config.ses.region}.amazonaws.com"

    @property
    def base_url_key(self) -> str:
        return "ses.base_url" if self.config.ses.base_url else "ses.region"

    def load_credentials(self) -> tuple[str, ...]:
        region = self.config.ses.region
        if not REGION.fullmatch(region):  # it names the host the credentials go to
            raise ConfigError(
                f"ses.region {region!r} is not an AWS region",
                where=self.config.where("ses.region"),
                fix='write the region\'s code, e.g. region = "eu-west-1"',
            )
        access = secret("AWS_ACCESS_KEY_ID", token=True)
        key = secret("AWS_SECRET_ACCESS_KEY", token=True)
        token = secret("AWS_SESSION_TOKEN", required=False, token=True)
        self._signer = AWS4Auth(access, key, region, "ses", session_token=token or None)
        return (key, token, access)  # the key ID too: kept out of every message like the others

    def request_credentials(self) -> dict[str, Any]:
        return {"auth": self._signer}

    @property
    def probe_path(self) -> str:
        return "/v2/email/account"  # GetAccount: sending status and quota of the account in the region

    def read_probe(self, response: requests.Response) -> Verdict:
        if response.status_code != 200:
            return super().read_probe(response)
        account = json_of(response)
        if not isinstance(account, dict):
            return "fail", "GetAccount answered without an account: not SES's answer (check ses.base_url)"
        quota = account.get("SendQuota")
        quota = quota if isinstance(quota, dict) else {}
        day, rate = (quota.get(k) for k in ("Max24HourSend", "MaxSendRate"))
        limits = " ".join(
            f"{n:,.0f} {unit}" if isinstance(n, (int, float)) else f"? {unit}"
            for n, unit in ((day, "a day,"), (rate, "a second"))
        )
        if account.get("SendingEnabled") is False:
            return (
                "fail",
                f"the keys are accepted, but sending is paused for this account ({account.get('EnforcementStatus', '')})",
            )
        if account.get("ProductionAccessEnabled") is False:
            return (
                "warn",
                f"the keys are accepted, but the account is in the SES sandbox: only verified addresses receive ({limits})",
            )
        if account.get("EnforcementStatus", "HEALTHY") != "HEALTHY":
            return (
                "warn",
                f"the keys are accepted; the account's status is {account.get('EnforcementStatus')} ({limits})",
            )
        return "ok", f"the keys are accepted; the account may send {limits}"

    def payload(self, message: Message) -> dict[str, Any]:
        data: dict[str, Any] = {
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": base64.b64encode(message.raw).decode("ascii")}},
        }
        if self.config.ses.configuration_set:
            data["ConfigurationSetName"] = self.config.ses.configuration_set
        return data

    def send_part(self, messages: BatchPart) -> PartOutcome:
        (message,) = messages
        body = json_bytes(self.payload(message))
        response = self.post("/v2/email/outbound-emails", body=body, headers={"Content-Type": "application/json"})
        if response.status_code >= 400 and "daily message quota exceeded" in self.error_text(response).lower():
            raise TransportQuotaError(
                "the daily sending quota is used up",
                where=self.where,
                fix="run the same send again once the quota resets, or ask AWS to raise it",
            )
        self.raise_for_status(response)
        if response.status_code < 400:
            answer = strings(self.json_answer(response), "MessageId")
            if answer is None:
                raise self.unexpected(response, "no MessageId")
            return every(messages, "sent", message_id=answer[0])
        return PartOutcome({0: self._refused(message, response)})

    def _refused(self, message: Message, response: requests.Response) -> Delivery:
        kind = _error_type(response)
        reason = self.error_text(response)
        if kind in STOP_TYPES or (kind == "MessageRejected" and message.sender in reason and "not verified" in reason):
            raise self.auth_error(response, reason=f"{kind}: {reason}")
        if kind in THROTTLE_TYPES or "Maximum sending rate exceeded" in reason:
            raise TransientTransportError(f"throttled: {kind} {reason}", where=self.where)
        return self.failed(message, f"{response.status_code} {kind}: {reason}".replace(" :", ":"))


def _error_type(response: requests.Response) -> str:
    """The AWS error type: the ``x-amzn-ErrorType`` header, else ``__type`` in the body."""
    kind = response.headers.get("x-amzn-ErrorType", "")
    if not kind:
        kind = str(field_of(response, "__type") or "")
    return kind.split(":")[0].rpartition("#")[2]
