"""Unsubscribe links: the per-recipient URL with its opaque token, and the RFC 2369/8058 headers."""

from __future__ import annotations

from urllib.parse import quote

from ..config import Config, secret
from ..errors import ConfigError
from ..render.links import unsubscribe_mailto
from ..tokens import make_token, read_token

# The address `broadsheet doctor` makes its one-click test token for: under .invalid (RFC 2606), so no
# reader has it; `broadsheet serve` answers its one-click POST as any other and records nothing.
PROBE_ADDRESS = "one-click-check@broadsheet.invalid"


def is_personal(unsubscribe_url: str) -> bool:
    """The URL names the reader ({token}, or {email}): only then can following it unsubscribe anyone."""
    return "{token}" in unsubscribe_url or "{email}" in unsubscribe_url


def unsubscribe_token(email: str, list_id: str, secret: str) -> str:
    """The opaque unsubscribe token `broadsheet serve` reads (see broadsheet.core.tokens)."""
    return make_token("unsubscribe", email, list_id, secret)


def verify_unsubscribe_token(email: str, token: str, list_id: str, secret: str) -> bool:
    """True when ``token`` is a valid unsubscribe token for ``email`` on ``list_id``."""
    data = read_token("unsubscribe", token, list_id, (secret,))
    return data is not None and data.email == email


class UnsubscribeLinks:
    """Builds each recipient's unsubscribe URL from ``unsubscribe_url`` ({email} {token} {list_id}).

    ``{token}`` is opaque (the address never shows in the link); ``{email}`` still works for a page of
    one's own, but lint warns about it: an address in a link looks like phishing and leaks into logs.
    """

    def __init__(self, config: Config, *, token_secret: str | None = None, campaign: str = ""):
        """``token_secret`` stands in for BROADSHEET_SECRET where no real link is made (lint, preview);
        ``campaign`` travels in the token (its ``extra``): serve records an unsubscribe against it."""
        self.campaign = campaign
        self.template = _checked(config.unsubscribe_url, "unsubscribe_url")
        self.list_id = config.list_id
        self.quoted_list_id = quote(config.list_id, safe="")
        if token_secret is None:
            token_secret = secret("unsubscribe", required="{token}" in self.template)
        self.secret = token_secret
        self.mailto_url = unsubscribe_mailto(_checked(config.unsubscribe_mailto, "unsubscribe_mailto"))
        self.mailto = f"<{self.mailto_url}>" if self.mailto_url else ""

    def url(self, email: str) -> str:
        if not self.template:
            return ""
        url = self.template
        if "{email}" in url:
            url = url.replace("{email}", quote(email, safe="@"))
        if "{list_id}" in url:
            url = url.replace("{list_id}", self.quoted_list_id)
        if "{token}" in url:
            url = url.replace(
                "{token}", make_token("unsubscribe", email, self.list_id, self.secret, extra=self.campaign)
            )
        return url

    def header_names(self) -> list[str]:
        """The headers :meth:`headers` gives every recipient."""
        return list(self.headers(self.url("reader@example.org")))

    def headers(self, url: str) -> dict[str, str]:
        """List-Unsubscribe (URL and/or mailto) and, with a personal https URL, List-Unsubscribe-Post."""
        links = [f"<{url}>"] if url else []
        if self.mailto:
            links.append(self.mailto)
        if not links:
            return {}
        headers = {"List-Unsubscribe": ", ".join(links)}
        if url.startswith("https://") and is_personal(self.template):  # a one-click POST must say who
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers


def _checked(value: str, key: str) -> str:
    if not value.isascii() or any(char.isspace() or char in '<>"' for char in value):
        raise ConfigError(
            f"'{key}' must be one ASCII URL without spaces, quotes or angle brackets",
            where=f"broadsheet.toml: {key}",
            fix="percent-encode the URL",
        )
    return value
