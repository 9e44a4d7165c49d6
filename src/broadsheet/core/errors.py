"""The small exception family. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

import errno
import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class BroadsheetError(Exception):
    """Root of every error broadsheet reports to the user.

    ``where`` names the place (``file:line``, a config key, ``host:port``); ``fix`` says what to do.
    """

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" ({self.fix})"
        return one_line(text)


def cannot_listen(exc: OSError | OverflowError, host: str, port: int, fix: str) -> BroadsheetError:
    """A local server's port that cannot be had (taken, privileged, out of range), as one line."""
    taken = getattr(exc, "errno", None) in (errno.EADDRINUSE, errno.EACCES)
    reason = "it is already in use" if taken else str(exc)
    return BroadsheetError(f"cannot listen on port {port}: {reason}", where=f"{host}:{port}", fix=fix)


def one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\r``, ``\\n``, ``\\x00``): a line break in an address or
    a file name must not split the error, nor start a line that looks like another message."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


class ConfigError(BroadsheetError):
    """broadsheet.toml is missing, malformed or has an unknown or mistyped key."""


class ContentError(BroadsheetError):
    """An issue folder, front matter, Markdown file or image is wrong."""


class TemplateError(BroadsheetError):
    """The theme's Jinja2 template or the MJML it produces is wrong."""


class AudienceError(BroadsheetError):
    """The subscriber list cannot be read at all (a bad row is a warning, not this)."""


class TransportError(BroadsheetError):
    """A transport failed as a whole; see the subclasses for what the campaign does next.

    ``deliveries``: the transport's ``Delivery`` for each message of the batch, in order, that was
    settled before the failure (``None`` where nothing is known); the campaign records them. Empty when
    nothing of the batch went out.
    """

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        super().__init__(message, where=where, fix=fix)
        self.deliveries: list[Any] = []  # transports.base.Delivery | None (core cannot import delivery)


class TransportAuthError(TransportError):
    """Credentials refused or sender not verified: stop the campaign, keep the rest queued."""


class TransportQuotaError(TransportError):
    """The provider's sending quota (SES's daily quota) is used up: stop the campaign, keep the rest
    queued, and send again once it resets. Not a credentials problem."""


class TransientTransportError(TransportError):
    """Worth retrying later (network error, 4xx SMTP, 429/5xx HTTP). ``retry_after`` in seconds."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, where: str | None = None, fix: str | None = None
    ):
        super().__init__(message, where=where, fix=fix)
        self.retry_after = retry_after


class CampaignError(BroadsheetError):
    """A send cannot start or go on (journal mismatch, nothing to send, refused by every server)."""


class PublishError(BroadsheetError):
    """The web archive cannot be written (an issue without a date, an output folder that is not ours)."""


class StoreError(BroadsheetError):
    """The subscriber store cannot be opened or refuses a change (bad address, already present, forgotten)."""
