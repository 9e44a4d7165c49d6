"""The adapter interface every provider's webhook module fulfils, and the checks they share: headers by
any case, secrets from the environment, fresh timestamps, tokens seen once, JSON bodies. Each failure is
a WebhookError (WebhookRejected: 401, WebhookMalformed: 400, …)."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from broadsheet.core.events import MailEvent, WebhookMalformed, WebhookNotConfigured, WebhookRejected

TOLERANCE = 300.0  # seconds a signed timestamp may be away from now (Svix and Mailgun use 5 minutes)


class ReplayGuard:
    """Remembers signed tokens for ``ttl`` seconds, so the same signed request is refused the second time."""

    def __init__(self, ttl: float = TOLERANCE * 2, limit: int = 100_000):
        self.ttl, self.limit = ttl, limit
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, token: str, now: float) -> bool:
        with self._lock:
            while self._seen and (next(iter(self._seen.values())) < now - self.ttl or len(self._seen) >= self.limit):
                self._seen.popitem(last=False)
            if token in self._seen:
                return False
            self._seen[token] = now
            return True


@dataclass
class WebhookContext:
    """What verification needs besides the request: secrets (the environment), the clock, accepted SNS
    topics, the replay guard and the SNS certificate source (replaceable only in tests)."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Callable[[], float] = time.time
    sns_topics: tuple[str, ...] = ()
    replays: ReplayGuard = field(default_factory=ReplayGuard)
    certificates: Any = None  # ses.SnsCertificates

    def secret(self, variable: str) -> str:
        value = self.env.get(variable, "")
        if not value:
            raise WebhookNotConfigured(
                f"the environment variable {variable} is not set",
                fix=f"export {variable}=… where broadsheet serve runs",
            )
        return value


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as it was posted: headers (any case) and the raw body."""

    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return header(self.headers, name)


class Adapter(Protocol):
    """One provider's webhook (a module under ``webhooks/``): all it knows of that provider's signature and
    payload. Nothing after it is provider-specific."""

    def verify(self, request: WebhookRequest, context: WebhookContext) -> None:
        """Return only when the request is the provider's own (signed, fresh, not replayed); else raise a
        WebhookError. A handshake the provider asks for (SNS's subscription confirmation) is done here."""

    def parse(self, request: WebhookRequest) -> list[MailEvent]:
        """The verified request's events, normalised (WebhookMalformed for a body that cannot be read)."""


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header by name, whatever its case ("" when absent)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def require_fresh(timestamp: str, now: float, tolerance: float = TOLERANCE) -> None:
    """Refuse a signed timestamp that is not a number or is more than ``tolerance`` seconds off."""
    try:
        moment = float(timestamp)
    except (TypeError, ValueError):
        raise WebhookRejected("the signed timestamp is missing or not a number") from None
    if not math.isfinite(moment) or abs(now - moment) > tolerance:  # nan compares false with everything
        raise WebhookRejected(f"the signed timestamp is {abs(now - moment):.0f} s away from now (stale or replayed)")


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise WebhookMalformed("the body is not JSON") from None


def text(value: Any) -> str:
    """A string field from hostile JSON: strings as they are, numbers as text, anything else empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def table(value: Any) -> dict[str, Any]:
    """A JSON object from hostile JSON, or an empty one."""
    return value if isinstance(value, dict) else {}
