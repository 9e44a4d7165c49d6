"""Mailgun: ``POST /v3/{domain}/messages`` as multipart form, one shared body for up to 1,000 recipients.

``recipient-variables`` carries each recipient's values for the ``%recipient.x%`` placeholders in
the body, the subject and the ``h:`` headers, and makes Mailgun send everyone a message of their own.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests

from broadsheet.core.compose.message import Message
from broadsheet.core.config import secret
from broadsheet.core.errors import ConfigError

from .base import Verdict
from .http import BatchPart, PartOutcome, about_recipient, every, json_bytes, json_of, strings
from .shared_body import SharedBodyTransport, split_headers

DROP = frozenset({"date"})  # Mailgun dates the message itself
_HEADER_VAR = re.compile(r"[^A-Za-z0-9]")


class MailgunTransport(SharedBodyTransport):
    name = "mailgun"
    provider = "Mailgun"
    tag = "%recipient.{}%"

    def load_credentials(self) -> tuple[str, ...]:
        domain = self.config.mailgun.domain
        if not domain or "/" in domain:
            raise ConfigError("set the Mailgun sending domain", where="mailgun.domain", fix='domain = "mg.example.org"')
        return (secret("mailgun", token=True),)

    def request_credentials(self) -> dict[str, Any]:
        return {"auth": ("api", self._secrets[0])}

    @property
    def probe_path(self) -> str:
        return f"/v4/domains/{quote(self.config.mailgun.domain, safe='')}"  # the sending domain and its state

    def read_probe(self, response: requests.Response) -> Verdict:
        domain = self.config.mailgun.domain
        if response.status_code == 404:
            return (
                "fail",
                f"Mailgun has no domain {domain} for this key (check mailgun.domain, and mailgun.base_url's region)",
            )
        if response.status_code in (401, 403):
            status, text = super().read_probe(response)
            return status, text + " (a domain sending key may only send: doctor needs the account's API key)"
        if response.status_code != 200:
            return super().read_probe(response)
        details = json_of(response)
        state = details.get("domain", {}).get("state") if isinstance(details, dict) else None
        if state == "active":
            return "ok", f"{self.secret_env} accepted; {domain} is active"
        return (
            "warn",
            f"{self.secret_env} accepted, but {domain} is {state or 'in an unknown state'}: verify its DNS records in Mailgun",
        )

    def secret_forms(self, secrets: tuple[str, ...]) -> tuple[str, ...]:
        """The key, and the Basic credentials it makes (a server may echo the Authorization header)."""
        return (*secrets, *(base64.b64encode(f"api:{s}".encode()).decode("ascii") for s in secrets))

    def fields(self, messages: Sequence[Message]) -> list[tuple[str, tuple[None, str]]]:
        body, values = self.group_of(messages)
        common, own = split_headers(messages, DROP)
        variables = [dict(v) for v in values]
        subjects = {m.subject for m in messages}
        subject = messages[0].subject
        if len(subjects) > 1:
            subject = self.placeholder("bs_subject")
            for v, m in zip(variables, messages, strict=False):
                v["bs_subject"] = m.subject
        fields = [("from", messages[0].from_header), *(("to", m.to_header) for m in messages), ("subject", subject)]
        fields += [("html", body.html)] if body.html else []
        fields += [("text", body.text)] if body.text else []
        fields += [(f"h:{k}", v) for k, v in common.items()]
        for name in dict.fromkeys(k for h in own for k in h):
            var = "h_" + _HEADER_VAR.sub("_", name).lower()
            fields.append((f"h:{name}", self.placeholder(var)))
            for v, headers in zip(variables, own, strict=False):
                v[var] = headers.get(name, "")
        recipient_variables = {m.recipient: v for m, v in zip(messages, variables, strict=False)}
        fields.append(("recipient-variables", json_bytes(recipient_variables).decode("utf-8")))
        return [(k, (None, v)) for k, v in fields]

    def send_part(self, messages: BatchPart) -> PartOutcome:
        path = f"/v3/{quote(self.config.mailgun.domain, safe='')}/messages"
        response = self.post(path, files=self.fields(messages))
        self.raise_for_status(response)
        if response.status_code == 404:
            raise self.auth_error(response)  # unknown sending domain (or the wrong region)
        if response.status_code == 400:
            reason = self.error_text(response)
            if not about_recipient(reason):
                raise self.request_error(response)
            return self.bisect(messages, f"400 {reason}")
        if response.status_code >= 400 or "Mailgun Magnificent API" in response.text:
            raise self.request_error(response)  # the latter: base_url or domain points at no endpoint
        answer = strings(self.json_answer(response), "id", "message")
        if answer is None:
            raise self.unexpected(response, "no id and message")
        return every(messages, "sent", message_id=answer[0])
