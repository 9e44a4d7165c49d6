"""The small exception family. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


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
        return text


class ConfigError(BroadsheetError):
    """broadsheet.toml is missing, malformed or has an unknown or mistyped key."""


class ContentError(BroadsheetError):
    """An issue folder, front matter, Markdown file or image is wrong."""


class TemplateError(BroadsheetError):
    """The theme's Jinja2 template or the MJML it produces is wrong."""


class AudienceError(BroadsheetError):
    """The subscriber list cannot be read at all (a bad row is a warning, not this)."""


class TransportError(BroadsheetError):
    """A transport failed as a whole; see the subclasses for what the campaign does next."""


class TransportAuthError(TransportError):
    """Credentials refused or sender not verified: stop the campaign, keep the rest queued."""


class TransientTransportError(TransportError):
    """Worth retrying later (network error, 4xx SMTP, 429/5xx HTTP). ``retry_after`` in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class CampaignError(BroadsheetError):
    """A send cannot start or go on (journal mismatch, nothing to send, refused by every server)."""


class StoreError(BroadsheetError):
    """The subscriber store cannot be opened or refuses a change (bad address, already present, forgotten)."""
