"""Unsubscribe links: the signed token, the per-recipient URL, and the RFC 2369/8058 headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from ..config import Config, secret
from ..errors import ConfigError


def unsubscribe_token(email: str, secret: str) -> str:
    """HMAC-SHA256 of the lower-cased address, URL-safe base64 without padding."""
    digest = hmac.new(secret.encode("utf-8"), email.lower().encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_unsubscribe_token(email: str, token: str, secret: str) -> bool:
    """True when ``token`` is the one :func:`unsubscribe_token` gives for ``email``."""
    return hmac.compare_digest(unsubscribe_token(email, secret), token)


class UnsubscribeLinks:
    """Builds each recipient's unsubscribe URL from ``unsubscribe_url`` ({email} {token} {list_id})."""

    def __init__(self, config: Config, *, token_secret: str | None = None):
        """``token_secret`` stands in for BROADSHEET_SECRET where no real link is made (lint, preview)."""
        self.template = _checked(config.unsubscribe_url, "unsubscribe_url")
        self.list_id = quote(config.list_id, safe="")
        if token_secret is None:
            token_secret = secret("unsubscribe", required="{token}" in self.template)
        self.secret = token_secret
        mailto = _checked(config.unsubscribe_mailto, "unsubscribe_mailto").removeprefix("mailto:")
        if mailto and "?" not in mailto:
            mailto += "?subject=unsubscribe"
        self.mailto = f"<mailto:{mailto}>" if mailto else ""

    def url(self, email: str) -> str:
        if not self.template:
            return ""
        url = self.template.replace("{email}", quote(email, safe="@")).replace("{list_id}", self.list_id)
        if "{token}" in url:
            url = url.replace("{token}", unsubscribe_token(email, self.secret))
        return url

    def header_names(self) -> list[str]:
        """The headers :meth:`headers` gives every recipient."""
        return list(self.headers(self.url("reader@example.org")))

    def headers(self, url: str) -> dict[str, str]:
        """List-Unsubscribe (URL and/or mailto) and, with an https URL, List-Unsubscribe-Post."""
        links = [f"<{url}>"] if url else []
        if self.mailto:
            links.append(self.mailto)
        if not links:
            return {}
        headers = {"List-Unsubscribe": ", ".join(links)}
        if url.startswith("https://"):
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers


def _checked(value: str, key: str) -> str:
    if not value.isascii() or any(char.isspace() or char in "<>\"" for char in value):
        raise ConfigError(
            f"'{key}' must be one ASCII URL without spaces, quotes or angle brackets",
            where=f"broadsheet.toml: {key}",
            fix="percent-encode the URL",
        )
    return value
