"""Optional DKIM signing (RFC 6376, rsa-sha256, relaxed/simple), configured by [dkim] domain and selector.

Canonicalisation is done here; the RSA signature is OpenSSL's (``cryptography``), about ten times
faster than dkimpy's pure-Python RSA. Tests verify every signature with dkimpy, an independent
implementation.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..config import Config, secret
from ..errors import ConfigError

SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Archive",
    "Archived-At",
    "List-Help",
    "List-Subscribe",
    "Feedback-ID",
    "X-Auto-Response-Suppress",
    "MIME-Version",
    "Content-Type",
)
# Named once more in h= than present (RFC 6376 5.4.2, a copy added in transit breaks the signature: an absent
# one is signed as absent), so that nobody can add a second From or a second one-click link to a signed message.
OVERSIGNED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


FOLD_NAMES_AT = 64  # characters of h= on one line
FOLDED_WHITESPACE = re.compile(rb"\r\n(?=[ \t])")
WHITESPACE_RUN = re.compile(rb"[ \t]+")


class DkimSigner:
    """Prepends a DKIM-Signature (relaxed/simple, rsa-sha256) to a raw CRLF message."""

    def __init__(self, domain: str, selector: str, private_key: bytes, present_headers: Iterable[str]):
        self.domain = domain
        self.selector = selector
        self.key = _rsa_key(private_key)
        present = {name.lower() for name in present_headers}
        self.headers = [name.lower() for name in SIGNED_HEADERS if name.lower() in present]
        self.oversigned = [name.lower() for name in OVERSIGNED]

    @classmethod
    def from_config(cls, config: Config, present_headers: Iterable[str]) -> DkimSigner | None:
        """A signer when [dkim] domain and selector are set, else None; a bad key is a ConfigError."""
        settings = config.dkim
        if not (settings.domain or settings.selector):
            return None
        if not (settings.domain and settings.selector):
            raise ConfigError(
                "DKIM needs both a domain and a selector",
                where="broadsheet.toml: [dkim]",
                fix="set dkim.domain and dkim.selector",
            )
        key, origin = _private_key(config)
        try:
            return cls(settings.domain, settings.selector, key, present_headers)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ConfigError(
                "the DKIM private key cannot be used", where=origin, fix="give an RSA key in PEM form"
            ) from None

    def sign(self, raw: bytes) -> bytes:
        head, _, body = raw.partition(b"\r\n\r\n")
        fields = _header_fields(head)
        body_hash = base64.b64encode(hashlib.sha256(_simple_body(body)).digest()).decode()
        present = [name for name in self.headers if name in fields]
        names = _folded_names([*present, *self.oversigned])  # a name past its instances signs nothing more
        tags = (
            f"v=1; a=rsa-sha256; c=relaxed/simple; d={self.domain}; s={self.selector};\r\n"
            f"\tt={int(time.time())}; h={names};\r\n\tbh={body_hash};\r\n\tb="
        )
        unsigned = b"DKIM-Signature: " + tags.encode("ascii")
        data = b"".join(_relaxed_header(fields[name]) + b"\r\n" for name in present) + _relaxed_header(unsigned)
        signature = base64.b64encode(self.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        folded = b"\r\n\t".join(signature[i : i + 72] for i in range(0, len(signature), 72))
        return unsigned + folded + b"\r\n" + raw


def _folded_names(names: list[str]) -> str:
    """``a:b:c`` for h=, folded before a colon so that no line passes the preferred 78 characters."""
    lines, line = [], ""
    for name in names:
        if line and len(line) + len(name) > FOLD_NAMES_AT:
            lines.append(line)
            line = ""
        line += (":" if line or lines else "") + name
    return "\r\n\t".join([*lines, line])


def _rsa_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA key")
    return key


def _header_fields(head: bytes) -> dict[str, bytes]:
    """Each header's last occurrence, as its whole raw field (name, colon, folded value)."""
    fields: dict[str, bytes] = {}
    for field in re.split(rb"\r\n(?![ \t])", head):
        name = field.split(b":", 1)[0].strip().lower().decode("ascii", "replace")
        fields[name] = field
    return fields


def _relaxed_header(field: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded, white space runs as one space, none around the colon."""
    name, _, value = field.partition(b":")
    value = WHITESPACE_RUN.sub(b" ", FOLDED_WHITESPACE.sub(b"", value)).strip(b" \t")
    return name.strip().lower() + b":" + value


def _simple_body(body: bytes) -> bytes:
    """RFC 6376 3.4.3: trailing empty lines removed, ending in exactly one CRLF."""
    body = body.rstrip(b"\r\n") if body.endswith(b"\r\n") else body
    return (body + b"\r\n") if body else b"\r\n"


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
