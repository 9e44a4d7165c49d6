"""What a send reaches for besides the DNS: the transport's credentials, the secret that signs links, and the
one-click unsubscribe address mailbox providers POST to (RFC 8058)."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from broadsheet.core.compose.unsubscribe import PROBE_ADDRESS, UnsubscribeLinks
from broadsheet.core.config import MAKE_SIGNING_SECRET, SECRET_ENV, Config, weak_secret
from broadsheet.core.errors import BroadsheetError
from broadsheet.core.providers import delivers
from broadsheet.delivery.transports import TransportOptions, transport_class

from .checks import Check, Status

SECRET_VARIABLE = SECRET_ENV["unsubscribe"]


def credentials_check(config: Config, transport: str, timeout: float) -> Check:
    """The transport's own harmless authenticated step (``Transport.verify``): SMTP logs in and quits, an API
    answers a documented read. Nothing is sent."""
    try:
        made = transport_class(transport)(config, TransportOptions(timeout=(timeout, timeout)))
        status, what = made.verify()
    except BroadsheetError as exc:
        return Check("credentials", "fail", f"{transport}: {exc}", fix=exc.fix or "")
    return Check("credentials", status, f"{transport}: {what}")


def secret_check(config: Config, transport: str) -> Check:
    """BROADSHEET_SECRET set and strong (``config.weak_secret``, the rule ``send`` and ``serve`` apply)."""
    value = os.environ.get(SECRET_VARIABLE, "")
    needed = "{token}" in config.unsubscribe_url or bool(config.smtp.return_path)
    status: Status = "fail" if needed and delivers(transport) else "warn"
    fix = f"make one with {MAKE_SIGNING_SECRET} and export {SECRET_VARIABLE}=<it> (keep it: old links need it)"
    if not value:
        if not needed:
            return Check("secret", "ok", f"{SECRET_VARIABLE} is not set, and no link or return path needs it")
        return Check("secret", status, f"{SECRET_VARIABLE} is not set: unsubscribe links cannot be signed", fix=fix)
    why = weak_secret(value)
    if why is not None:
        return Check("secret", status, f"{SECRET_VARIABLE} is too weak to sign links: {why}", fix=fix)
    return Check("secret", "ok", f"{SECRET_VARIABLE} is set and strong enough")


def public_url_scheme(config: Config) -> Check | None:
    """Without the network: the one-click address is https (providers ignore http ones). None: nothing to say."""
    url = config.unsubscribe_url
    if not url.startswith(("http://", "https://")):
        return Check(
            "public-url", "warn", "no one-click unsubscribe address (RFC 8058): Gmail and Yahoo require one of bulk senders",
            fix='set [serve] public_url = "https://…" where broadsheet serve is reached',
        )  # fmt: skip
    if url.startswith("http://") and not _loopback(url):
        return Check(
            "public-url", "fail", f"the unsubscribe address {_origin(url)} is http://: mailbox providers only POST to https",
            fix="serve it over https (a proxy in front of broadsheet serve) and write https:// in [serve] public_url",
        )  # fmt: skip
    return None


def public_url_check(config: Config, timeout: float) -> Check:
    """POST a one-click unsubscribe for doctor's own test address (``PROBE_ADDRESS``, which serve answers and
    does not record): 200 without a redirect is what providers need. http:// on this machine is a warn (a test
    set-up), anywhere else a fail."""
    early = public_url_scheme(config)
    if early is not None:
        return early
    secret = os.environ.get(SECRET_VARIABLE, "")
    if "{token}" in config.unsubscribe_url and (not secret or weak_secret(secret)):
        return Check(
            "public-url", "warn", f"not tried: a test token needs {SECRET_VARIABLE} (see the secret check)",
            fix=f"export {SECRET_VARIABLE}",
        )  # fmt: skip
    import requests  # here: a send runs this module's checks that need no network, without requests

    from broadsheet.delivery.web import one_click_post

    url = UnsubscribeLinks(config, token_secret=secret or None).url(PROBE_ADDRESS)
    origin = _origin(url)
    try:
        answer = one_click_post(url, timeout=timeout)
    except requests.exceptions.SSLError:
        return Check(
            "public-url", "fail", f"{origin}: its TLS certificate is not trusted; providers will not POST there",
            fix="install a certificate from a public CA (Let's Encrypt)",
        )  # fmt: skip
    except requests.RequestException as exc:
        return Check(
            "public-url", "fail", f"{origin} does not answer ({type(exc).__name__})", fix="start broadsheet serve there"
        )
    if 300 <= answer.status < 400:
        return Check(
            "public-url", "fail", f"{origin} answers the one-click POST with a redirect ({answer.status}); providers do not follow it",
            fix="point [serve] public_url at the address that answers itself (no http→https or www redirect)",
        )  # fmt: skip
    if answer.status != 200:
        return Check(
            "public-url", "fail", f"{origin} answers the one-click POST with HTTP {answer.status}, not 200",
            fix="check that broadsheet serve runs there with this project's BROADSHEET_SECRET and list_id",
        )  # fmt: skip
    if url.startswith("http://"):
        return Check(
            "public-url", "warn", f"{origin} answers the one-click POST with 200, over http:// on this machine",
            fix="in production write https:// in [serve] public_url: providers only POST to https",
        )  # fmt: skip
    return Check("public-url", "ok", f"{origin} answers the one-click POST with 200, no redirect")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
