"""Opaque signed tokens for links: unsubscribe, confirmation, bounce addresses (VERP), serve's forms.

A token names a subscriber and a list without showing the address: the address (and ``extra``) is sealed
with AES-SIV (RFC 5297, ``cryptography``'s ``AESSIV``), the purpose and list as associated data. SIV is
deterministic (the same input gives the same token) and any changed bit fails its tag, which OpenSSL
checks in constant time. The 64-byte key comes from the secret through HKDF-SHA256, once per secret.

    token = base64url( version(2) | AES-SIV(email NUL extra; purpose, list_id) )   # SIV(16) | ciphertext

Tokens of version 1 (links already sent) are still read: AES-CTR whose counter block is an HMAC-SHA256
over ``purpose | list_id | email | extra`` (a synthetic IV too), built by hand from AES blocks; the tag is
compared in constant time. Verification tries every secret given (BROADSHEET_SECRET, then
BROADSHEET_SECRET_PREVIOUS while a secret is rotated). Nothing here imports anything but errors/config.

Reference tokens (:func:`make_reference_token`) are the short kind, for VERP bounce addresses whose local
part must stay within 64 characters (RFC 5321) whatever the address: they carry a number (a journal row
id) instead of the address, plus a truncated tag over ``purpose | list_id | number | email`` — the holder
looks the number up and checks the tag against the address found there. Lower-case base32, so a server
that lower-cases the local part changes nothing:

    token = base32( varint(number) | tag(10) )         # 17–24 characters
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import SECRET_ENV, check_signing_secret
from .errors import ConfigError

VERSION = b"\x02"  # AES-SIV
VERSION_1 = b"\x01"  # AES-CTR with an HMAC synthetic IV: read only, for links already sent
TAG_BYTES = 16  # both versions: SIV's and version 1's tag
MAX_TOKEN_CHARS = 700  # a token longer than this is refused before any work
COUNTER_MASK = (1 << 128) - 1
# form: serve's signed page forms (extra = issued); click: a counted link (email = "" or the reader, extra = ClickLink)
PURPOSES = ("unsubscribe", "confirm", "bounce", "form", "click")
PREVIOUS_SECRET_ENV = "BROADSHEET_SECRET_PREVIOUS"
REFERENCE_TAG_BYTES = 10  # 80 bits: a forger must guess online, one bounce at a time
MAX_REFERENCE_CHARS = 24  # a number below 2**35 (5 varint bytes) and the tag, in base32


@dataclass(frozen=True)
class TokenData:
    """What a valid token carries."""

    email: str
    extra: str


class _Keys:
    """One secret's keys: AES-SIV for tokens; a keyed HMAC (copied per token, also for reference tokens)
    and an AES block encryptor per thread for reading version 1."""

    def __init__(self, siv_key: bytes, mac_key: bytes, enc_key: bytes):
        self.siv = AESSIV(siv_key)
        self.mac = hmac.new(mac_key, digestmod=hashlib.sha256)
        self.aes = algorithms.AES(enc_key)
        self.local = threading.local()

    def blocks(self, data: bytes) -> bytes:
        """AES-ECB of whole counter blocks (the keystream of CTR), with this thread's encryptor."""
        encryptor = getattr(self.local, "ecb", None)
        if encryptor is None:
            encryptor = self.local.ecb = Cipher(self.aes, modes.ECB()).encryptor()  # noqa: S305 -- ECB of counter blocks is CTR
        return encryptor.update(data)


@functools.lru_cache(maxsize=8)
def _keys(secret: str) -> _Keys:
    """The keys of a secret (HKDF-SHA256, distinct info per key)."""
    material = secret.encode("utf-8")
    siv_key = HKDF(hashes.SHA256(), 64, salt=b"broadsheet tokens", info=b"aes-siv").derive(material)
    mac_key = HKDF(hashes.SHA256(), 32, salt=b"broadsheet tokens", info=b"mac").derive(material)
    enc_key = HKDF(hashes.SHA256(), 32, salt=b"broadsheet tokens", info=b"enc").derive(material)
    return _Keys(siv_key, mac_key, enc_key)


@functools.lru_cache(maxsize=64)
def _prefixed(keys: _Keys, purpose: str, list_id: str) -> hmac.HMAC:
    """The keyed MAC with ``purpose NUL list_id NUL`` already fed (copied per token)."""
    mac = keys.mac.copy()
    mac.update(b"%s\x00%s\x00" % (purpose.encode("ascii"), list_id.encode("utf-8")))
    return mac


def _tag(keys: _Keys, purpose: str, list_id: str, plain: bytes) -> bytes:
    mac = _prefixed(keys, purpose, list_id).copy()
    mac.update(plain)
    return mac.digest()[:TAG_BYTES]


def _ctr(keys: _Keys, tag: bytes, data: bytes) -> bytes:
    """AES-CTR with ``tag`` as the initial 128-bit big-endian counter (as modes.CTR), built from one
    reusable ECB encryptor: a fresh CTR context per token would cost five times more."""
    size = len(data)
    counters = tag
    if size > 16:
        start = int.from_bytes(tag, "big")
        counters += b"".join([((start + i) & COUNTER_MASK).to_bytes(16, "big") for i in range(1, -(-size // 16))])
    stream = keys.blocks(counters)
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream[:size], "big")).to_bytes(size, "big")


def make_token(purpose: str, email: str, list_id: str, secret: str, *, extra: str = "") -> str:
    """A URL-safe token for ``purpose`` naming ``email`` on ``list_id``; ``extra`` travels with it."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if "\x00" in email or "\x00" in extra:
        raise ValueError("a token cannot carry NUL characters")
    plain = email.encode("utf-8") + b"\x00" + extra.encode("utf-8")
    sealed = _keys(secret).siv.encrypt(plain, _bound(purpose, list_id))
    return base64.urlsafe_b64encode(VERSION + sealed).rstrip(b"=").decode("ascii")


def read_token(purpose: str, token: str, list_id: str, secrets: Sequence[str]) -> TokenData | None:
    """The data of a valid token for ``purpose`` and ``list_id`` under one of ``secrets``; else None.
    Either version: the first byte tells them apart."""
    raw = _decode(token)
    if raw is None or len(raw) < 1 + TAG_BYTES + 1:
        return None
    version, sealed = raw[:1], raw[1:]
    if version not in (VERSION, VERSION_1):
        return None
    for secret in secrets:
        if not secret:
            continue
        keys = _keys(secret)
        plain = _open(keys, purpose, list_id, sealed) if version == VERSION else _open_1(keys, purpose, list_id, sealed)
        if plain is not None:
            email, _, extra = plain.partition(b"\x00")
            try:
                return TokenData(email.decode("utf-8"), extra.decode("utf-8"))
            except UnicodeDecodeError:  # pragma: no cover - a valid tag means we wrote it as UTF-8
                return None
    return None


@functools.lru_cache(maxsize=64)
def _bound(purpose: str, list_id: str) -> list[bytes]:
    """AES-SIV's associated data: what a token is for, as two separate strings (no delimiter to forge);
    one list per pair, shared, never changed."""
    return [purpose.encode("ascii"), list_id.encode("utf-8")]


def _open(keys: _Keys, purpose: str, list_id: str, sealed: bytes) -> bytes | None:
    """The plaintext of a version-2 token when its SIV tag matches."""
    try:
        return keys.siv.decrypt(sealed, _bound(purpose, list_id))
    except InvalidTag:
        return None


def _open_1(keys: _Keys, purpose: str, list_id: str, sealed: bytes) -> bytes | None:
    """The plaintext of a version-1 token when its tag matches (compared in constant time)."""
    tag, ciphertext = sealed[:TAG_BYTES], sealed[TAG_BYTES:]
    plain = _ctr(keys, tag, ciphertext)
    return plain if hmac.compare_digest(_tag(keys, purpose, list_id, plain), tag) else None


def _decode(token: str) -> bytes | None:
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class ClickLink:
    """What a click token carries: the campaign, the link's number in the issue, its address, and the
    reader only when clicks are counted per subscriber ("" otherwise)."""

    campaign: str
    link: int
    url: str
    email: str = ""


def make_click_token(link: ClickLink, list_id: str, secret: str) -> str:
    """A click token: the address travels sealed inside it, so serve redirects without a look-up."""
    extra = json.dumps([link.campaign, link.link, link.url], ensure_ascii=False, separators=(",", ":"))
    return make_token("click", link.email, list_id, secret, extra=extra)


def read_click_token(token: str, list_id: str, secrets: Sequence[str]) -> ClickLink | None:
    """The link of a valid click token; None for a tampered, foreign or malformed one."""
    data = read_token("click", token, list_id, secrets)
    if data is None:
        return None
    try:
        campaign, link, url = json.loads(data.extra)
    except (ValueError, TypeError):  # pragma: no cover - a valid tag means we wrote it
        return None
    if not (isinstance(campaign, str) and isinstance(link, int) and isinstance(url, str)):  # pragma: no cover
        return None
    return ClickLink(campaign, link, url, data.email)


def make_reference_token(purpose: str, number: int, email: str, list_id: str, secret: str) -> str:
    """A short lower-case token naming ``number`` (e.g. a journal row), tied to ``email`` (any case)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    reference = _varint(number)
    raw = reference + _reference_tag(_keys(secret), purpose, list_id, reference, email)
    return base64.b32encode(raw).rstrip(b"=").decode("ascii").lower()


def reference_of(token: str) -> int | None:
    """The number a reference token names, before any check (the caller looks it up), or None."""
    raw = _decode_reference(token)
    return None if raw is None else raw[0]


def read_reference_token(
    purpose: str, token: str, list_id: str, secrets: Sequence[str], email_of: Callable[[int], str | None]
) -> str | None:
    """The address a valid reference token was made for: ``email_of(number)`` when the tag matches it
    under one of ``secrets`` (constant-time check); None for anything else."""
    raw = _decode_reference(token)
    if raw is None:
        return None
    number, reference, tag = raw
    email = email_of(number)
    if email is None:
        return None
    for secret in secrets:
        if secret and hmac.compare_digest(_reference_tag(_keys(secret), purpose, list_id, reference, email), tag):
            return email
    return None


def _reference_tag(keys: _Keys, purpose: str, list_id: str, reference: bytes, email: str) -> bytes:
    mac = _prefixed(keys, purpose, list_id).copy()
    mac.update(b"ref\x00%s\x00%s" % (reference, email.strip().lower().encode("utf-8")))
    return mac.digest()[:REFERENCE_TAG_BYTES]


def _varint(number: int) -> bytes:
    """LEB128: seven bits a byte, low bits first, the high bit set on every byte but the last."""
    if number < 0:
        raise ValueError("a reference token names a number >= 0")
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _decode_reference(token: str) -> tuple[int, bytes, bytes] | None:
    """(number, its varint bytes, tag) of a well-formed reference token, any letter case; else None."""
    if not token or len(token) > MAX_REFERENCE_CHARS or not token.isascii() or not token.isalnum():
        return None
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    except (binascii.Error, ValueError):
        return None
    if base64.b32encode(raw).rstrip(b"=").decode("ascii") != token.upper():
        return None  # spare low bits set: one token, one spelling
    number, shift = 0, 0
    for index, byte in enumerate(raw[:5]):
        number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            size = index + 1
            if len(raw) != size + REFERENCE_TAG_BYTES or (size > 1 and byte == 0):
                return None  # wrong length, or a padded varint (one number, one spelling)
            return number, raw[:size], raw[size:]
    return None


def token_secrets(*, required: bool = True) -> tuple[str, ...]:
    """(BROADSHEET_SECRET, BROADSHEET_SECRET_PREVIOUS) from the environment, the unset ones left out;
    a weak one is a ConfigError (:func:`broadsheet.core.config.check_signing_secret`)."""
    variable = SECRET_ENV["unsubscribe"]
    current = os.environ.get(variable, "")
    if required and not current:
        raise ConfigError(
            f"the environment variable {variable} is not set",
            fix=f"export {variable}=… (a long random string, e.g. from `openssl rand -hex 32`)",
        )
    given = {variable: current, PREVIOUS_SECRET_ENV: os.environ.get(PREVIOUS_SECRET_ENV, "")}
    for name, value in given.items():
        if value:
            check_signing_secret(name, value)
    return tuple(value for value in given.values() if value)


__all__ = [
    "TokenData",
    "ClickLink",
    "make_click_token",
    "read_click_token",
    "make_token",
    "read_token",
    "token_secrets",
    "PURPOSES",
    "make_reference_token",
    "read_reference_token",
    "reference_of",
]
