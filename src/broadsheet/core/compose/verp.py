"""VERP: each recipient's own envelope sender, ``[smtp] return_path = "bounces+{token}@example.org"``,
so a bounce names whom it is about whatever the remote server writes in it. The token is a short
reference token (``tokens.make_reference_token``, purpose "bounce"): the recipient's journal row id and a
tag over it and the address, lower-case base32, at most 24 characters — the address never shows, and the
local part stays within RFC 5321's 64 characters however long the address is. ``broadsheet inbox`` reads
it back through the journal (``Journal.email_of_row``). A message composed without a journal row (a test
send, a confirmation mail) goes out from the From address. Tokens of the first, long kind
(``tokens.make_token``) are still read, for bounces of mail sent before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..config import Config, secret
from ..errors import ConfigError
from ..tokens import MAX_REFERENCE_CHARS, make_reference_token, read_reference_token, read_token

TOKEN_TEXT = r"[A-Za-z0-9_-]+"  # base32 (reference tokens) or base64url (tokens of the first kind)
MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
EmailOfRow = Callable[[int], "str | None"]  # a journal row id -> its address (Journal.email_of_row)


class ReturnPaths:
    """The envelope sender (MAIL FROM) per recipient: the VERP address when ``return_path`` is set,
    else ``default`` (the From address)."""

    def __init__(self, config: Config, default: str, *, token_secret: str | None = None) -> None:
        self.template = config.smtp.return_path
        self.default = default
        self.list_id = config.list_id
        if self.template:
            self.prefix, self.suffix = _parts(self.template)
            self.secret = token_secret if token_secret is not None else secret("unsubscribe")
            self.pattern = re.compile(
                re.escape(self.prefix) + f"({TOKEN_TEXT})" + re.escape(self.suffix), re.IGNORECASE
            )

    def for_recipient(self, email: str, row: int | None = None) -> str:
        """The envelope sender for ``email`` in journal row ``row`` (the From address without a row)."""
        if not self.template or row is None:
            return self.default
        return f"{self.prefix}{make_reference_token('bounce', row, email, self.list_id, self.secret)}{self.suffix}"

    def recipient_of(self, address: str, secrets: Sequence[str], email_of: EmailOfRow | None = None) -> str | None:
        """The recipient a VERP address was made for, when it is one of ours and its token is valid:
        looked up with ``email_of`` (the journal) for reference tokens, read from tokens of the first kind."""
        if not self.template:
            return None
        match = self.pattern.fullmatch(address.strip())
        if match is None:
            return None
        token = match[1]
        if len(token) <= MAX_REFERENCE_CHARS:
            if email_of is None:
                return None
            return read_reference_token("bounce", token, self.list_id, secrets, email_of)
        data = read_token("bounce", token, self.list_id, secrets)
        return data.email if data else None


def _parts(template: str) -> tuple[str, str]:
    """(text before {token}, text after it) of a valid template: one {token}, in the local part."""
    local, at, domain = template.rpartition("@")
    valid = (
        template.isascii()
        and template.count("{token}") == 1
        and "{token}" in local
        and at
        and domain
        and not any(c.isspace() or c in '<>"()[],;:\\' for c in template)
    )
    if not valid:
        raise ConfigError(
            f"return_path must be an address with {{token}} in its local part, not {template!r}",
            where="smtp.return_path",
            fix='write return_path = "bounces+{token}@example.org"',
        )
    prefix, _, suffix = template.partition("{token}")
    if len(local) - len("{token}") + MAX_REFERENCE_CHARS > MAX_LOCAL_PART:
        raise ConfigError(
            f"return_path's local part leaves no room for a {MAX_REFERENCE_CHARS}-character token"
            f" within {MAX_LOCAL_PART} characters: {template!r}",
            where="smtp.return_path",
            fix='shorten the text before the @, e.g. "bounces+{token}@example.org"',
        )
    return prefix, suffix
