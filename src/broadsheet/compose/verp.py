"""VERP: each recipient's own envelope sender, ``[smtp] return_path = "bounces+{token}@example.org"``,
so a bounce names whom it is about whatever the remote server writes in it. The token is opaque
(``tokens.make_token`` with purpose "bounce"): the address never shows in clear.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..config import Config, secret
from ..errors import ConfigError
from ..tokens import make_token, read_token

TOKEN_TEXT = r"[A-Za-z0-9_-]+"  # base64url, as tokens.make_token writes it


class ReturnPaths:
    """The envelope sender (MAIL FROM) per recipient: the VERP address when ``return_path`` is set,
    else ``default`` (the From address)."""

    def __init__(self, config: Config, default: str, *, token_secret: str | None = None):
        self.template = config.smtp.return_path
        self.default = default
        self.list_id = config.list_id
        if self.template:
            self.prefix, self.suffix = _parts(self.template)
            self.secret = token_secret if token_secret is not None else secret("unsubscribe")
            self.pattern = re.compile(re.escape(self.prefix) + f"({TOKEN_TEXT})" + re.escape(self.suffix), re.IGNORECASE)

    def for_recipient(self, email: str) -> str:
        if not self.template:
            return self.default
        return f"{self.prefix}{make_token('bounce', email, self.list_id, self.secret)}{self.suffix}"

    def recipient_of(self, address: str, secrets: Sequence[str]) -> str | None:
        """The recipient a VERP address was made for, when it is one of ours and its token is valid."""
        if not self.template:
            return None
        match = self.pattern.fullmatch(address.strip())
        if match is None:
            return None
        data = read_token("bounce", match[1], self.list_id, secrets)
        return data.email if data else None


def _parts(template: str) -> tuple[str, str]:
    """(text before {token}, text after it) of a valid template: one {token}, in the local part."""
    local, at, domain = template.rpartition("@")
    valid = (template.isascii() and template.count("{token}") == 1 and "{token}" in local and at and domain
             and not any(c.isspace() or c in '<>"()[],;:\\' for c in template))
    if not valid:
        raise ConfigError(f"return_path must be an address with {{token}} in its local part, not {template!r}",
                          where="smtp.return_path", fix='write return_path = "bounces+{token}@example.org"')
    prefix, _, suffix = template.partition("{token}")
    return prefix, suffix
