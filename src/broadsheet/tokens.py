"""Opaque signed tokens for links: unsubscribe, confirmation, bounce addresses (VERP), serve's forms.

A token names a subscriber and a list without showing the address: the address (and ``extra``) is
encrypted with AES-CTR whose counter block is the token's own tag, an HMAC-SHA256 over
``purpose | list_id | email | extra`` (a synthetic IV, as in SIV: the same input gives the same token,
and any changed bit fails the tag). Both keys come from the secret through HKDF-SHA256, once per secret.

    token = base64url( version(1) | tag(16) | AES-CTR(email NUL extra) )

Verification tries every secret given (BROADSHEET_SECRET, then BROADSHEET_SECRET_PREVIOUS while a
secret is rotated) and compares tags in constant time. Nothing here imports anything but errors/config.

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
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import SECRET_ENV, check_signing_secret
from .errors import ConfigError

VERSION = b"\x01"
TAG_BYTES = 16
MAX_TOKEN_CHARS = 700  # a token longer than this is refused before any work
COUNTER_MASK = (1 << 128) - 1
PURPOSES = ("unsubscribe", "confirm", "bounce", "form")  # form: serve's signed page forms (extra = issued)
PREVIOUS_SECRET_ENV = "BROADSHEET_SECRET_PREVIOUS"
REFERENCE_TAG_BYTES = 10  # 80 bits: a forger must guess online, one bounce at a time
MAX_REFERENCE_CHARS = 24  # a number below 2**35 (5 varint bytes) and the tag, in base32


@dataclass(frozen=True)
class TokenData:
    """What a valid token carries."""

    email: str
    extra: str


class _Keys:
    """One secret's keys: a keyed HMAC (copied per token) and an AES block encryptor per thread."""

    def __init__(self, mac_key: bytes, enc_key: bytes):
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
    """The MAC and encryption keys of a secret (HKDF-SHA256, distinct info per key)."""
    material = secret.encode("utf-8")
    mac_key = HKDF(hashes.SHA256(), 32, salt=b"broadsheet tokens", info=b"mac").derive(material)
    enc_key = HKDF(hashes.SHA256(), 32, salt=b"broadsheet tokens", info=b"enc").derive(material)
    return _Keys(mac_key, enc_key)


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
    keys = _keys(secret)
    plain = email.encode("utf-8") + b"\x00" + extra.encode("utf-8")
    tag = _tag(keys, purpose, list_id, plain)
    return base64.urlsafe_b64encode(VERSION + tag + _ctr(keys, tag, plain)).rstrip(b"=").decode("ascii")


def read_token(purpose: str, token: str, list_id: str, secrets: Sequence[str]) -> TokenData | None:
    """The data of a valid token for ``purpose`` and ``list_id`` under one of ``secrets``; else None."""
    raw = _decode(token)
    if raw is None or raw[:1] != VERSION or len(raw) < 1 + TAG_BYTES + 1:
        return None
    tag, sealed = raw[1 : 1 + TAG_BYTES], raw[1 + TAG_BYTES :]
    for secret in secrets:
        if not secret:
            continue
        keys = _keys(secret)
        plain = _ctr(keys, tag, sealed)
        if hmac.compare_digest(_tag(keys, purpose, list_id, plain), tag):
            email, _, extra = plain.partition(b"\x00")
            try:
                return TokenData(email.decode("utf-8"), extra.decode("utf-8"))
            except UnicodeDecodeError:  # pragma: no cover - a valid tag means we wrote it as UTF-8
                return None
    return None


def _decode(token: str) -> bytes | None:
    if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None


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
    a weak one is a ConfigError (:func:`broadsheet.config.check_signing_secret`)."""
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
    "make_token",
    "read_token",
    "token_secrets",
    "PURPOSES",
    "make_reference_token",
    "read_reference_token",
    "reference_of",
]
