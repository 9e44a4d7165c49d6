"""Optional DKIM signing with dkimpy, configured by [dkim] domain and selector."""

from __future__ import annotations

from collections.abc import Iterable

import dkim

from ..config import Config, secret
from ..errors import ConfigError

SIGNED_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
)


class DkimSigner:
    """Prepends a DKIM-Signature (relaxed/simple, rsa-sha256) to a raw message."""

    def __init__(self, domain: str, selector: str, private_key: bytes, present_headers: Iterable[str]):
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.private_key = private_key
        present = {name.lower() for name in present_headers}
        self.headers = [name.lower().encode("ascii") for name in SIGNED_HEADERS if name.lower() in present]

    @classmethod
    def from_config(cls, config: Config, present_headers: Iterable[str]) -> DkimSigner | None:
        """A signer when [dkim] domain and selector are set, else None; a bad key is a ConfigError."""
        settings = config.dkim
        if not (settings.domain or settings.selector):
            return None
        if not (settings.domain and settings.selector):
            raise ConfigError(
                "DKIM needs both a domain and a selector", where="broadsheet.toml: [dkim]", fix="set dkim.domain and dkim.selector"
            )
        key, origin = _private_key(config)
        signer = cls(settings.domain, settings.selector, key, present_headers)
        try:
            signer.sign(b"From: a@" + signer.domain + b"\r\n\r\nkey check\r\n")
        except dkim.DKIMException:
            raise ConfigError("the DKIM private key cannot be used", where=origin, fix="give an RSA key in PEM form") from None
        return signer

    def sign(self, raw: bytes) -> bytes:
        signature = dkim.sign(
            raw, self.selector, self.domain, self.private_key,
            canonicalize=(b"relaxed", b"simple"), include_headers=self.headers,
        )
        return signature + raw


def _private_key(config: Config) -> tuple[bytes, str]:
    """The PEM key and where it came from (never the key itself in any message)."""
    if config.dkim.private_key_file:
        path = config.resolve(config.dkim.private_key_file)
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            raise ConfigError(
                "cannot read the DKIM private key file", where=str(path), fix="check dkim.private_key_file"
            ) from None
        return _pem(text), str(path)
    text = secret("dkim", required=False)
    if not text:
        raise ConfigError(
            "DKIM is configured but there is no private key",
            where="broadsheet.toml: [dkim]",
            fix="set dkim.private_key_file or export BROADSHEET_DKIM_KEY",
        )
    return _pem(text), "BROADSHEET_DKIM_KEY"


def _pem(text: str) -> bytes:
    """PEM with plain LF line ends, also when an environment variable carried literal '\\n'."""
    return text.replace("\\n", "\n").replace("\r\n", "\n").strip().encode("ascii", "ignore") + b"\n"
