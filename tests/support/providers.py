"""Local fakes of the mail APIs (Postmark, SendGrid, Mailgun, SES v2, Resend) for pytest-httpserver.

Each fake checks every request against the provider's documented contract (method, path, auth,
content type, fields, limits) and answers the way the provider does. Problems are collected in
``violations`` (and answered with the provider's own validation error); ``delivered`` lists what the
provider would have sent, one entry per recipient, with the body as the recipient would get it.
``script`` queues special answers, one per request: "429", "500", "401", "timeout" (the request is
processed, the answer comes after SLOW seconds), then normal answers.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import hashlib
import hmac
import json
import logging
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any

import markupsafe
import pytest
from werkzeug import Request, Response

from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config, Mailgun, Postmark, Resend, Sendgrid, Ses
from broadsheet.core.errors import TransientTransportError
from broadsheet.delivery.transports.base import Delivery, Transport, TransportOptions

SECRET = "SECRET-TOKEN-123"
ACCESS_KEY = "AKIDEXAMPLE"
REGION = "eu-west-1"
SLOW = 1.3  # seconds a "timeout" answer takes: past the read timeout below, which starts first
TIMEOUT = (2.0, 1.0)  # the transports' (connect, read) timeouts in tests: a loaded machine still answers within it
ENV = {
    "postmark": {"BROADSHEET_POSTMARK_TOKEN": SECRET},
    "sendgrid": {"BROADSHEET_SENDGRID_KEY": SECRET},
    "mailgun": {"BROADSHEET_MAILGUN_KEY": SECRET},
    "ses": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": "SESSION-" + SECRET},
    "resend": {"BROADSHEET_RESEND_KEY": SECRET},
}
BAD = "bad-address"  # a recipient every fake refuses as invalid
INACTIVE = "inactive"  # a recipient Postmark/Resend refuse as suppressed


# -- messages ------------------------------------------------------------------------------------

FILLER = '<p style="margin:0 0 12px;font-family:Georgia,serif">Week in review: rivers, tea and trains.</p>\n'


def make_message(n: int, *, first_name: str | None = None, local: str | None = None, filler: int = 20) -> Message:
    """A personalised message like compose makes: escaped values in HTML, an unsubscribe URL with a
    per-recipient token, headers, and ``raw`` bytes that parse back to the same message."""
    first = first_name if first_name is not None else f"Reader{n}"
    address = f"{local or f'reader{n}'}@example.com"
    name = f"{first} Example"
    token = hashlib.sha256(address.encode()).hexdigest()[:16]
    unsubscribe = f"https://news.example.org/unsubscribe?email={address}&token={token}"
    html = (
        f"<html><body><p>Hello {_esc(first)},</p>\n{FILLER * filler}"
        f'<p>Sent to {_esc(address)}. <a href="{_esc(unsubscribe)}">Unsubscribe</a></p></body></html>'
    )
    text = f"Hello {first},\n\nWeek in review.\n\nSent to {address}. Unsubscribe: {unsubscribe}\n"
    headers = {
        "Date": "Sun, 29 Nov 2026 15:00:00 +0000",
        "Message-ID": f"<1764428400.{n}@news.example.org>",
        "Reply-To": "Editors <editors@news.example.org>",
        "List-Id": "Weekly <weekly.news.example.org>",
        "List-Unsubscribe": f"<{unsubscribe}>, <mailto:unsubscribe@news.example.org?subject={token}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "MIME-Version": "1.0",
    }
    to = email.utils.formataddr((name, address))
    raw = _raw("Weekly <newsletter@news.example.org>", to, "Issue 12: rivers", headers, text, html)
    return Message(
        recipient=address,
        sender="newsletter@news.example.org",
        from_header="Weekly <newsletter@news.example.org>",
        to_header=to,
        subject="Issue 12: rivers",
        headers=headers,
        html=html,
        text=text,
        raw=raw,
        merge={"email": address, "name": name, "first_name": first},
    )


def make_messages(count: int, **kwargs: Any) -> list[Message]:
    return [make_message(n, **kwargs) for n in range(count)]


def _esc(value: str) -> str:
    """Escaped as Jinja2's autoescape does it."""
    return str(markupsafe.escape(value))


def _raw(from_: str, to: str, subject: str, headers: dict, text: str, html: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = from_, to, subject
    for key, value in headers.items():
        if key != "MIME-Version":
            msg[key] = value
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=email.policy.SMTP)


def make_config(provider: str, base_url: str, **options: Any) -> Config:
    """The default config with this provider's table pointed at the fake."""
    url = base_url.rstrip("/")
    tables = {
        "postmark": ("postmark", Postmark(base_url=url, message_stream="broadcast")),
        "sendgrid": ("sendgrid", Sendgrid(base_url=url)),
        "mailgun": ("mailgun", Mailgun(base_url=url, domain="mg.example.org")),
        "ses": ("ses", Ses(region=REGION, base_url=url, configuration_set=options.pop("configuration_set", "news"))),
        "resend": ("resend", Resend(base_url=url)),
    }
    key, table = tables[provider]
    return replace(Config(), **{key: replace(table, **options)})


# -- a small campaign loop (the campaign room does this for real) --------------------------------


@dataclass
class Run:
    journal: dict[str, list[Delivery]] = field(default_factory=dict)  # recipient -> deliveries in order
    retry_after: list[float | None] = field(default_factory=list)  # of each transient error
    batches: int = 0

    def final(self) -> dict[str, Delivery]:
        return {r: ds[-1] for r, ds in self.journal.items()}


def drive(transport: Transport, messages: list[Message], *, batch_size: int | None = None, attempts: int = 4) -> Run:
    """Send in batches; retry a batch on TransientTransportError (without waiting) and deferred
    recipients in a batch of their own, ``attempts`` times at most."""
    run = Run()
    size = batch_size or transport.max_batch
    with transport:
        queue = [messages[i : i + size] for i in range(0, len(messages), size)]
        tries = 0
        while queue and tries < attempts * (len(messages) + 1):
            batch = queue.pop(0)
            tries += 1
            try:
                deliveries = transport.send_batch(batch)  # as the campaign runner sends: no batch key
            except TransientTransportError as exc:
                run.retry_after.append(exc.retry_after)
                queue.insert(0, batch)
                continue
            run.batches += 1
            assert [d.recipient for d in deliveries] == [m.recipient for m in batch]
            for message, delivery in zip(batch, deliveries, strict=False):
                run.journal.setdefault(message.recipient, []).append(delivery)
            again = [m for m, d in zip(batch, deliveries, strict=False) if d.status == "deferred"]
            if again and len(run.journal[again[0].recipient]) < attempts:
                queue.append(again)
    return run


# -- fakes ---------------------------------------------------------------------------------------


class Fake:
    """Base of the provider fakes: script handling, violation log, deliveries."""

    path = "/"
    answers: dict[str, tuple[int, Any, dict]] = {}  # provider-specific script entries: canned answers
    probe_path = ""  # the harmless authenticated GET the provider documents (broadsheet doctor's check)

    def __init__(self) -> None:
        self.script: list[str] = []
        self.violations: list[str] = []
        self.delivered: list[dict[str, Any]] = []
        self.calls = 0
        self.probes = 0  # GETs of probe_path
        self.request_sizes: list[int] = []
        self.slow_until = 0.0

    def install(self, httpserver) -> Fake:
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.handle)
        return self

    def handle(self, request: Request) -> Response:
        self.calls += 1
        self.request_sizes.append(len(request.get_data()))
        mode = self.script.pop(0) if self.script else "ok"
        if request.method == "GET" and self.probe_path and request.path == self.probe_path:
            self.probes += 1
            if mode == "401" or not self.authorized(request):
                return self.unauthorized(request)
            return self.probe(request)
        if request.method != "POST" or request.path != self.path:
            return self.violation(f"{request.method} {request.path}: expected POST {self.path}", status=404)
        if mode == "401" or not self.authorized(request):
            return self.unauthorized(request)
        if mode == "429":
            return self.json({"message": "too many requests"}, 429, {"Retry-After": "2"})
        if mode == "429-reset":  # no Retry-After, a reset time as epoch seconds (SendGrid) instead
            return self.json(
                {"errors": [{"message": "too many requests"}]}, 429, {"X-RateLimit-Reset": str(int(time.time()) + 3)}
            )
        if mode == "500":
            return self.json({"message": "internal error"}, 500)
        if mode in self.answers:
            status, body, headers = self.answers[mode]
            return self.json(body, status, headers)
        response = self.process(request)
        if mode == "timeout":
            self.slow_until = time.monotonic() + SLOW
            time.sleep(SLOW)
        return response

    def probe(self, request: Request) -> Response:
        raise NotImplementedError

    def wait_idle(self) -> None:
        """Let a slow answer finish, so that the shared server is free for the next test."""
        time.sleep(max(0.0, self.slow_until - time.monotonic()) + 0.05 if self.slow_until else 0)

    def violation(self, text: str, status: int = 400) -> Response:
        self.violations.append(text)
        return self.json({"message": text}, status)

    def require(self, condition: bool, text: str) -> None:
        if not condition:
            self.violations.append(text)

    @staticmethod
    def json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
        return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")

    def unauthorized(self, request: Request) -> Response:
        # Echo what came in, as a careless server might: the transport must not repeat it.
        return self.json({"message": f"bad credentials: {request.headers.get('Authorization', '')}"}, 401)

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {SECRET}"

    def process(self, request: Request) -> Response:
        raise NotImplementedError

    def deliver(self, to: str, **parts: Any) -> None:
        self.delivered.append({"to": to, **parts})

    def recipients(self) -> list[str]:
        return [_bare(d["to"]) for d in self.delivered]

    def json_body(self, request: Request) -> Any:
        self.require(request.mimetype == "application/json", f"Content-Type {request.mimetype}")
        return json.loads(request.get_data())


def _bare(address: str) -> str:
    return email.utils.parseaddr(address)[1]


def _invalid(address: str) -> bool:
    return BAD in address or "@" not in address


class PostmarkFake(Fake):
    """``POST /email/batch``: at most 500 messages and 50 MB; answers one result per message."""

    path = "/email/batch"
    probe_path = "/server"  # Get server: the settings of the server the token belongs to
    answers = {"unconfirmed": (422, {"ErrorCode": 401, "Message": "Sender signature not confirmed."}, {})}

    def authorized(self, request: Request) -> bool:
        return request.headers.get("X-Postmark-Server-Token") == SECRET

    def probe(self, request: Request) -> Response:
        return self.json({"ID": 1, "Name": "Weekly", "Color": "blue", "DeliveryType": "Live"})

    def unauthorized(self, request: Request) -> Response:
        token = request.headers.get("X-Postmark-Server-Token", "")
        return self.json({"ErrorCode": 10, "Message": f"Bad or missing Server API token {token}"}, 401)

    def process(self, request: Request) -> Response:
        self.require(request.headers.get("Accept") == "application/json", "Accept must be application/json")
        if len(request.get_data()) > 50 * 1000 * 1000:
            return self.json({"ErrorCode": 300, "Message": "Payload too large"}, 413)
        batch = self.json_body(request)
        if not isinstance(batch, list) or len(batch) > 500:
            self.violations.append(f"batch of {len(batch)} messages")
            return self.json({"ErrorCode": 410, "Message": "Too many batch messages."}, 422)
        return self.json([self.one(m) for m in batch])

    def one(self, message: dict) -> dict:
        for key in ("From", "To", "Subject", "MessageStream"):
            self.require(bool(message.get(key)), f"{key} missing")
        self.require(bool(message.get("HtmlBody") or message.get("TextBody")), "no body")
        for item in message.get("Headers", []):
            self.require(set(item) == {"Name", "Value"}, f"header {item}")
            self.require(item["Name"].lower() not in {"from", "to", "subject", "content-type"}, f"header {item}")
        to = message.get("To", "")
        if message.get("MessageStream") != "broadcast":  # the only stream this server has
            return {"ErrorCode": 1235, "Message": "The 'MessageStream' provided does not exist on this server."}
        if _invalid(message.get("From", "")):
            return {"ErrorCode": 300, "Message": f"Invalid 'From' address: '{message.get('From')}'."}
        if _invalid(to):
            return {"ErrorCode": 300, "Message": f"Invalid 'To' address: '{to}'."}
        if INACTIVE in to:
            return {
                "ErrorCode": 406,
                "Message": f"You tried to send to recipient(s) that have been marked as inactive. Found inactive "
                f"addresses: {_bare(to)}. Inactive recipients are ones that have generated a hard bounce.",
            }
        message_id = str(uuid.uuid4())
        headers = {h["Name"]: h["Value"] for h in message.get("Headers", [])}
        self.deliver(
            to,
            html=message.get("HtmlBody"),
            text=message.get("TextBody"),
            subject=message["Subject"],
            headers=headers,
            message_id=message_id,
            reply_to=message.get("ReplyTo"),
        )
        return {
            "ErrorCode": 0,
            "Message": "OK",
            "MessageID": message_id,
            "To": to,
            "SubmittedAt": "2026-11-29T15:00:00Z",
        }


SENDGRID_RESERVED = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}


class SendgridFake(Fake):
    """``POST /v3/mail/send``: 1 to 1,000 personalizations; substitutions applied to the content."""

    path = "/v3/mail/send"
    probe_path = "/v3/scopes"  # the scopes of the key that asks
    scopes = ["mail.send", "suppression.read"]

    def probe(self, request: Request) -> Response:
        return self.json({"scopes": self.scopes})

    answers = {"bad-from": (400, {"errors": [{"message": "The from object must be provided.", "field": "from"}]}, {})}

    def process(self, request: Request) -> Response:
        data = self.json_body(request)
        people = data.get("personalizations") or []
        self.require(1 <= len(people) <= 1000, f"{len(people)} personalizations")
        self.require(bool(data.get("from", {}).get("email")), "from.email missing")
        content = data.get("content") or []
        types = [c.get("type") for c in content]
        self.require(types in (["text/plain", "text/html"], ["text/html"], ["text/plain"]), f"content types {types}")
        for where, headers in [("headers", data.get("headers", {}))] + [
            (f"personalizations.{i}.headers", p.get("headers", {})) for i, p in enumerate(people)
        ]:
            bad = [k for k in headers if k.lower() in SENDGRID_RESERVED]
            self.require(not bad, f"reserved headers {bad} in {where}")
        errors = []
        for i, person in enumerate(people):
            to = person.get("to") or [{}]
            size = sum(len(k.encode()) + len(v.encode()) for k, v in (person.get("substitutions") or {}).items())
            self.require(size <= 10000, f"substitutions of {size} bytes")
            if _invalid(to[0].get("email", "")):
                errors.append(
                    {
                        "message": "Does not contain a valid address.",
                        "field": f"personalizations.{i}.to.0.email",
                        "help": "http://sendgrid.com/docs",
                    }
                )
            name = to[0].get("name", "")
            if re.search("[,;]", name) and not re.fullmatch(r'"(?:[^"\\]|\\.)*"', name):
                # "to.name … cannot include either the ; or , characters" (Mail Send limitations);
                # quoted, the name reaches the To header intact (django-anymail's workaround)
                errors.append(
                    {
                        "message": "The to.name cannot include ; or , characters.",
                        "field": f"personalizations.{i}.to.0.name",
                        "help": "http://sendgrid.com/docs",
                    }
                )
        if errors:
            return self.json({"errors": errors}, 400)
        bodies = {c["type"]: c["value"] for c in content}
        for person in people:
            subs = person.get("substitutions") or {}
            html, text = (_substitute(bodies.get(t, ""), subs) for t in ("text/html", "text/plain"))
            headers = {**data.get("headers", {}), **person.get("headers", {})}
            self.deliver(
                person["to"][0]["email"],
                html=html,
                text=text,
                headers=headers,
                subject=person.get("subject", data.get("subject")),
                name=_display_name(person["to"][0]),
                reply_to=data.get("reply_to"),
            )
        return Response("", status=202, headers={"X-Message-Id": uuid.uuid4().hex[:22]})


def _display_name(email_object: dict) -> str | None:
    """The name a reader sees in the To header SendGrid makes from ``{"email", "name"}``."""
    name = email_object.get("name")
    return email.utils.parseaddr(f"{name} <{email_object['email']}>")[0] if name else name


def _substitute(body: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        body = body.replace(key, value)
    return body


class MailgunFake(Fake):
    """``POST /v3/mg.example.org/messages`` (multipart): at most 1,000 to, recipient-variables."""

    path = "/v3/mg.example.org/messages"
    probe_path = "/v4/domains/mg.example.org"  # Get domain details
    state = "active"

    def probe(self, request: Request) -> Response:
        return self.json({"domain": {"name": "mg.example.org", "state": self.state}, "sending_dns_records": []})

    answers = {
        "404": (404, {"message": "Domain not found: mg.example.org"}, {}),
        "from": (400, {"message": "'from' parameter is not a valid address. please check documentation"}, {}),
    }

    def authorized(self, request: Request) -> bool:
        auth = request.authorization
        return bool(auth) and auth.type == "basic" and auth.username == "api" and auth.password == SECRET

    def unauthorized(self, request: Request) -> Response:
        auth = request.authorization
        return Response(f"Forbidden {auth.password if auth else ''}", status=401)

    def process(self, request: Request) -> Response:
        self.require(request.mimetype == "multipart/form-data", f"Content-Type {request.mimetype}")
        form = request.form
        to = form.getlist("to")
        self.require(1 <= len(to) <= 1000, f"{len(to)} recipients")
        self.require(bool(form.get("from")) and bool(form.get("subject")), "from or subject missing")
        self.require(bool(form.get("html") or form.get("text")), "no body")
        variables = json.loads(form.get("recipient-variables", "null") or "null")
        if len(to) > 1:
            self.require(
                isinstance(variables, dict) and all(_bare(t) in variables for t in to),
                "recipient-variables must name every recipient",
            )
        if any(_invalid(t) for t in to):
            return self.json({"message": "'to' parameter is not a valid address. please check documentation"}, 400)
        headers = {k[2:]: v for k, v in form.items(multi=True) if k.startswith("h:")}
        message_id = f"<{uuid.uuid4().hex}@mg.example.org>"
        for address in to:
            values = (variables or {}).get(_bare(address), {})

            def fill(text: str, values=values) -> str:
                return re.sub(r"%recipient\.([A-Za-z0-9_]+)%", lambda m: str(values.get(m.group(1), "")), text)

            self.deliver(
                address,
                html=fill(form.get("html", "")),
                text=fill(form.get("text", "")),
                subject=fill(form["subject"]),
                headers={k: fill(v) for k, v in headers.items()},
            )
        return self.json({"id": message_id, "message": "Queued. Thank you."})


class SesFake(Fake):
    """``POST /v2/email/outbound-emails``: SigV4 for service ses checked by recomputing it."""

    path = "/v2/email/outbound-emails"
    probe_path = "/v2/email/account"  # GetAccount
    account = {
        "SendingEnabled": True,
        "ProductionAccessEnabled": True,
        "EnforcementStatus": "HEALTHY",
        "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 0.0},
    }

    def probe(self, request: Request) -> Response:
        self.require(request.headers.get("X-Amz-Security-Token") == "SESSION-" + SECRET, "session token missing")
        return self.json(self.account)

    answers = {
        "throttle": (
            429,
            {"message": "Maximum sending rate exceeded."},
            {"x-amzn-ErrorType": "TooManyRequestsException:"},
        ),
        "quota": (429, {"message": "Daily message quota exceeded."}, {"x-amzn-ErrorType": "TooManyRequestsException:"}),
        "mailfrom": (
            400,
            {"message": "Mail from domain not verified"},
            {"x-amzn-ErrorType": "MailFromDomainNotVerifiedException:"},
        ),
    }

    def authorized(self, request: Request) -> bool:
        problem = sigv4_problem(request, ACCESS_KEY, SECRET, REGION, "ses")
        if problem:
            self.violations.append(problem)
        return problem is None

    def unauthorized(self, request: Request) -> Response:
        return self.json(
            {
                "message": f"The security token included in the request is invalid: "
                f"{request.headers.get('X-Amz-Security-Token', '')} "
                f"{request.headers.get('Authorization', '')}"
            },
            403,
            {"x-amzn-ErrorType": "UnrecognizedClientException:"},
        )

    def process(self, request: Request) -> Response:
        data = self.json_body(request)
        self.require(data.get("ConfigurationSetName") in (None, "news"), "ConfigurationSetName")
        self.require(request.headers.get("X-Amz-Security-Token") == "SESSION-" + SECRET, "session token missing")
        raw = base64.b64decode(data["Content"]["Raw"]["Data"])
        destination = (data.get("Destination") or {}).get("ToAddresses") or []
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        to = destination[0] if destination else str(parsed["To"])
        if _invalid(to):
            return self.json({"message": f"Illegal address {to}"}, 400, {"x-amzn-ErrorType": "BadRequestException:"})
        if INACTIVE in to:
            return self.json(
                {"message": "Address is on the account-level suppression list"},
                400,
                {"x-amzn-ErrorType": "MessageRejected:"},
            )
        message_id = f"0100{uuid.uuid4().hex}-000000"
        self.deliver(to, raw=raw, message_id=message_id)
        return self.json({"MessageId": message_id})


def sigv4_problem(request: Request, access: str, secret: str, region: str, service: str) -> str | None:
    """None when the Authorization header is a valid AWS Signature V4 for these keys, recomputed here
    from the request as received; else what is wrong."""
    header = request.headers.get("Authorization", "")
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
        header,
    )
    if not match:
        return f"not a SigV4 Authorization header: {header[:40]}"
    key_id, day, sig_region, sig_service, signed, signature = match.groups()
    if (key_id, sig_region, sig_service) != (access, region, service):
        return f"credential scope {key_id}/{sig_region}/{sig_service}"
    amz_date = request.headers.get("X-Amz-Date", "")
    body = request.get_data()
    payload_hash = hashlib.sha256(body).hexdigest()
    if request.headers.get("X-Amz-Content-Sha256") != payload_hash:
        return "x-amz-content-sha256 does not match the body"
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names:
        return f"signed headers {signed}"
    canonical_headers = "".join(f"{n}:{' '.join(request.headers.get(n, '').split())}\n" for n in names)
    canonical = "\n".join(
        [request.method, request.path, request.query_string.decode(), canonical_headers, signed, payload_hash]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else "signature does not match"


class ResendFake(Fake):
    """``POST /emails/batch``: at most 100 emails, Idempotency-Key, permissive validation."""

    path = "/emails/batch"
    probe_path = "/domains"  # List domains
    domains = [{"id": "d1", "name": "example.org", "status": "verified", "region": "eu-west-1"}]
    sending_only = False  # a key with sending access only: 401 restricted_api_key

    def probe(self, request: Request) -> Response:
        if self.sending_only:
            return self.json(
                {
                    "statusCode": 401,
                    "name": "restricted_api_key",
                    "message": "This API key is restricted to only send emails",
                },
                401,
            )
        return self.json({"object": "list", "has_more": False, "data": self.domains})

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, tuple[bytes, Response]] = {}

    def process(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "")
        self.require(0 < len(key) <= 256, f"Idempotency-Key {key!r}")
        self.require(request.headers.get("x-batch-validation") == "permissive", "x-batch-validation")
        body = request.get_data()
        if key in self.seen:
            earlier, answer = self.seen[key]
            if earlier != body:
                return self.json({"name": "invalid_idempotent_request", "message": "same key, other payload"}, 409)
            return Response(answer.get_data(), status=answer.status_code, content_type="application/json")
        emails = self.json_body(request)
        if not isinstance(emails, list) or not 1 <= len(emails) <= 100:
            return self.violation(f"batch of {len(emails)}", 422)
        data, errors = [], []
        for index, item in enumerate(emails):
            for name in ("from", "to", "subject"):
                self.require(bool(item.get(name)), f"{name} missing")
            self.require(isinstance(item.get("to"), list) and len(item["to"]) <= 50, "to must be a list")
            self.require("=?" not in item.get("from", ""), "encoded word in from")
            headers = item.get("headers", {})
            self.require(isinstance(headers, dict), "headers must be an object")
            to = item["to"][0]
            if _invalid(item.get("from", "")):
                errors.append({"index": index, "message": "Invalid `from` field."})
                continue
            if _invalid(to) or to.startswith('"'):  # Resend refuses a quoted display name (django-anymail)
                errors.append({"index": index, "message": "Invalid `to` field."})
                continue
            email_id = str(uuid.uuid4())
            data.append({"id": email_id})
            self.deliver(
                to,
                html=item.get("html"),
                text=item.get("text"),
                subject=item["subject"],
                headers=headers,
                reply_to=item.get("reply_to"),
                message_id=email_id,
            )
        answer = self.json({"data": data, "errors": errors})
        self.seen[key] = (body, answer)
        return answer


FAKES: dict[str, type[Fake]] = {
    "postmark": PostmarkFake,
    "sendgrid": SendgridFake,
    "mailgun": MailgunFake,
    "ses": SesFake,
    "resend": ResendFake,
}


# -- a server that takes the request and loses the answer --------------------------------------


class RawServer:
    """A TCP server on 127.0.0.1 that reads each whole HTTP request (headers and Content-Length body)
    and then, by ``then``: "silent" holds the connection and never answers, "close" closes it without
    a word, "reset" aborts it (RST); "hangup" closes each connection as soon as it is made, reading
    nothing. ``requests`` holds each request as received."""

    def __init__(self, then: str):
        self.then = then
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            if self.then == "hangup":  # before reading anything (before a TLS handshake, too)
                conn.close()
                continue
            conn.settimeout(5)
            self.requests.append(_read_request(conn))
            if self.then == "silent":
                self._held.append(conn)
                continue
            if self.then == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length and len(body) < int(length.group(1)):
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def transport_at(provider: str, base_url: str, monkeypatch, **options: Any) -> Transport:
    """An unopened transport for ``provider`` pointed at ``base_url``, test secrets in the environment."""
    from broadsheet.delivery.transports import transport_class

    for key, value in ENV[provider].items():
        monkeypatch.setenv(key, value)
    return transport_class(provider)(make_config(provider, base_url, **options), TransportOptions(timeout=TIMEOUT))


# -- fixture -------------------------------------------------------------------------------------


@pytest.fixture
def api(httpserver, monkeypatch, caplog):
    """``api(provider, **options) -> (fake, transport)``: the fake installed on the local server and
    an unopened transport pointed at it, with test secrets in the environment. Afterwards, checks
    that no request broke the contract and that no secret reached the log."""
    from broadsheet.delivery.transports import transport_class

    caplog.set_level(logging.DEBUG)
    made: list[Fake] = []

    def make(provider: str, **options: Any) -> tuple[Fake, Transport]:
        for key, value in ENV[provider].items():
            monkeypatch.setenv(key, value)
        fake = FAKES[provider]().install(httpserver)
        made.append(fake)
        config = make_config(provider, httpserver.url_for("/"), **options)
        return fake, transport_class(provider)(config, TransportOptions(timeout=TIMEOUT))

    yield make
    for fake in made:
        fake.wait_idle()
    assert SECRET not in caplog.text
    for fake in made:
        assert fake.violations == [], fake.violations
