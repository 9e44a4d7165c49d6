"""What every public endpoint does before anything else: Host allow-list, origin and form checks,
per-client rate limits, and the security headers every answer carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from urllib.parse import urlsplit

from broadsheet.core.tokens import make_token, read_token

FORM_TOKEN_SECONDS = 24 * 3600  # a page's form can be posted for a day
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


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
    policy = (
        f"default-src 'none'; style-src '{style_hash}'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
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
    """Cross-site posting protection without sessions (double-submit): a page sets a random ``SameSite=Strict``
    cookie and its form carries a signed token bound to the form's action (the path it posts to), its time
    and that cookie. A cross-site post lacks the cookie; a browser's ``Origin``, when it names a site, must
    be one of ours. (Our pages send no referrer, so a browser's own same-origin post says ``Origin: null``.)"""

    COOKIE = "broadsheet_form"

    def __init__(self, list_id: str, secrets: tuple[str, ...], origins: frozenset[str], *, secure: bool):
        self.list_id = list_id
        self.secrets = secrets
        self.origins = origins
        self.secure = secure

    def nonce(self, cookie_header: str | None) -> str:
        """This browser's form nonce from its cookie, or a new one."""
        found = _cookie(cookie_header, self.COOKIE)
        return found if found and NONCE.fullmatch(found) else secrets.token_urlsafe(16)

    def cookie(self, nonce: str) -> str:
        """The Set-Cookie value that gives the browser its nonce for a day."""
        return f"{self.COOKIE}={nonce}; Max-Age={FORM_TOKEN_SECONDS}; Path=/; HttpOnly; SameSite=Strict" + (
            "; Secure" if self.secure else ""
        )

    def token(self, action: str, nonce: str) -> str:
        return make_token("form", action, self.list_id, self.secrets[0], extra=f"{int(time.time())}.{nonce}")

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin (a mail provider's one-click POST), ``null`` (our no-referrer pages), or one of ours."""
        return origin is None or origin == "null" or origin.lower() in self.origins

    def token_ok(self, action: str, token: str | None, cookie_header: str | None) -> bool:
        data = read_token("form", token or "", self.list_id, self.secrets)
        if data is None or data.email != action:
            return False
        issued, _, nonce = data.extra.partition(".")
        cookie = _cookie(cookie_header, self.COOKIE) or ""
        if not issued.isdigit() or not nonce or not hmac.compare_digest(nonce.encode(), cookie.encode()):
            return False
        return 0 <= time.time() - int(issued) <= FORM_TOKEN_SECONDS

    def allows(
        self,
        action: str,
        form: Mapping[str, str],
        origin: str | None,
        cookie_header: str | None,
        *,
        origin_suffices: bool = False,
    ) -> bool:
        """A page's own form (right token and cookie), or — for the sign-up snippet pasted on another of
        our sites — a listed Origin."""
        if not self.origin_ok(origin):
            return False
        if self.token_ok(action, form.get("form"), cookie_header):
            return True
        return origin_suffices and origin is not None and origin != "null"


def _cookie(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class RateLimit:
    """At most ``per_minute`` and ``per_hour`` events per client address (sliding windows, in memory). Each
    client's times are an array of floats, which the garbage collector never walks: a server that has
    seen a hundred thousand clients would otherwise pause for every full collection."""

    MAX_CLIENTS = 100_000  # beyond this, the oldest clients are forgotten

    def __init__(self, per_minute: int, per_hour: int):
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.seen: dict[str, array[float]] = {}
        self.lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> bool:
        """Count one event for ``client``; False (and not counted) when over either limit."""
        now = time.monotonic() if now is None else now
        with self.lock:
            times = self.seen.pop(client, None) or array("d")  # in the order counted: oldest first
            del times[: bisect_left(times, now - 3600)]
            recent = len(times) - bisect_left(times, now - 60)
            allowed = recent < self.per_minute and len(times) < self.per_hour
            if allowed:
                times.append(now)
            self.seen[client] = times  # re-inserted last: dict order is least recently seen first
            if len(self.seen) > self.MAX_CLIENTS:
                del self.seen[next(iter(self.seen))]
            return allowed
