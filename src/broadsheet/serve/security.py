"""What every public endpoint does before anything else: Host allow-list, origin and form checks,
per-client rate limits, and the security headers every answer carries."""

from __future__ import annotations

import hashlib
import base64
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from ..tokens import make_token, read_token

FORM_TOKEN_SECONDS = 24 * 3600  # a page's form can be posted for a day


def allowed_hosts(public_url: str) -> frozenset[str]:
    """The ``Host`` values serve answers: the public URL's host, with and without its port."""
    parts = urlsplit(public_url)
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port = parts.port or default
    names = {f"{host}:{port}"}
    if port == default:
        names.add(host)
    return frozenset(names)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, as browsers send it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def security_headers(style_hash: str) -> dict[str, str]:
    """CSP (only our own inline style, images from here, forms to here, never framed), no referrer."""
    policy = (f"default-src 'none'; style-src '{style_hash}'; img-src 'self' data:; form-action 'self'; "
              "frame-ancestors 'none'; base-uri 'none'")
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def style_hash(css: str) -> str:
    """The CSP source for one inline ``<style>`` block."""
    return "sha256-" + base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")


class FormGuard:
    """Cross-site posting protection: every page form carries a signed token bound to its action (the
    path it posts to) and its time; a browser's ``Origin``, when sent, must be one of ours."""

    def __init__(self, list_id: str, secrets: tuple[str, ...], origins: frozenset[str]):
        self.list_id = list_id
        self.secrets = secrets
        self.origins = origins

    def token(self, action: str) -> str:
        return make_token("form", action, self.list_id, self.secrets[0], extra=str(int(time.time())))

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin (a mail provider's one-click POST, old browsers), or one of ours."""
        return origin is None or origin.lower() in self.origins

    def token_ok(self, action: str, token: str | None) -> bool:
        data = read_token("form", token or "", self.list_id, self.secrets)
        if data is None or data.email != action or not data.extra.isdigit():
            return False
        return 0 <= time.time() - int(data.extra) <= FORM_TOKEN_SECONDS

    def allows(self, action: str, form: dict[str, str], origin: str | None, *, origin_suffices: bool = False) -> bool:
        """A page's own form (right token), or — for the sign-up snippet on another site — a listed Origin."""
        if not self.origin_ok(origin):
            return False
        if self.token_ok(action, form.get("form")):
            return True
        return origin_suffices and origin is not None


class RateLimit:
    """At most ``per_minute`` and ``per_hour`` events per client address (sliding windows, in memory)."""

    MAX_CLIENTS = 100_000  # beyond this, the oldest clients are forgotten

    def __init__(self, per_minute: int, per_hour: int):
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        """Count one event for ``client``; False (and not counted) when over either limit."""
        now = time.monotonic() if now is None else now
        with self.lock:
            times = self.seen.pop(client, None) or deque()
            while times and now - times[0] > 3600:
                times.popleft()
            recent = sum(1 for t in times if now - t <= 60)
            allowed = recent < self.per_minute and len(times) < self.per_hour
            if allowed:
                times.append(now)
            self.seen[client] = times  # re-inserted last: dict order is least recently seen first
            if len(self.seen) > self.MAX_CLIENTS:
                del self.seen[next(iter(self.seen))]
            return allowed
