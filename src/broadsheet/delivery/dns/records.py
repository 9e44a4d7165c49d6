"""The DNS records mail authentication publishes: DKIM keys (RFC 6376 3.6.1) and DMARC policies (RFC 7489
6.3), found and read into their tags."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from broadsheet.core.compose.alignment import organisational_domain

from .resolver import Resolver


def tags(record: str) -> dict[str, str]:
    """``k=v; k=v`` → {k: v}, names lower-case, white space inside values removed (a folded key)."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            found.setdefault(name.strip().lower(), "".join(value.split()))
    return found


def public_key_text(key: rsa.RSAPublicKey) -> str:
    """The ``p=`` value of a DKIM key record: the SubjectPublicKeyInfo, DER, base64."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def dkim_record_text(key: rsa.RSAPublicKey) -> str:
    return f"v=DKIM1; k=rsa; p={public_key_text(key)}"


@dataclass(frozen=True)
class KeyCheck:
    """What the key published at ``name`` is to the private key that signs: ``state`` is one of
    ``match``, ``missing``, ``revoked``, ``other`` (another key), ``unreadable``."""

    name: str
    state: str
    detail: str = ""


def check_dkim_key(resolver: Resolver, selector: str, domain: str, key: rsa.RSAPublicKey) -> KeyCheck:
    """Compare the key published for ``selector`` at ``domain`` with ``key`` (the private key's public half)."""
    name = f"{selector}._domainkey.{domain}".lower()
    records = [tags(text) for text in resolver.txt(name)]
    records = [r for r in records if "p" in r and r.get("v", "DKIM1") == "DKIM1"]
    if not records:
        return KeyCheck(name, "missing")
    published = records[0]
    if not published["p"]:
        return KeyCheck(name, "revoked")
    if published.get("k", "rsa").lower() != "rsa":
        return KeyCheck(name, "other", f"k={published['k']}, while [dkim] signs with an RSA key")
    try:
        found = serialization.load_der_public_key(base64.b64decode(published["p"], validate=True))
    except (binascii.Error, ValueError) as exc:
        return KeyCheck(name, "unreadable", f"p= is not a public key ({type(exc).__name__})")
    if isinstance(found, rsa.RSAPublicKey) and found.public_numbers() == key.public_numbers():
        return KeyCheck(name, "match")
    return KeyCheck(name, "other", "the published key is not the public half of [dkim]'s private key")


def any_txt(resolver: Resolver, name: str) -> bool:
    """Whether ``name`` has a TXT record (a provider's DKIM key behind its fixed selector)."""
    return bool(resolver.txt(name))


@dataclass(frozen=True)
class Dmarc:
    """A DMARC policy: where it was found (the From domain's, or its organisational domain's) and its tags."""

    name: str
    tags: dict[str, str]

    @property
    def policy(self) -> str:
        return self.tags.get("p", "").lower()

    @property
    def strict_dkim(self) -> bool:
        return self.tags.get("adkim", "r").lower() == "s"

    @property
    def strict_spf(self) -> bool:
        return self.tags.get("aspf", "r").lower() == "s"


def find_dmarc(resolver: Resolver, domain: str) -> Dmarc | None:
    """The DMARC record that governs ``domain``: ``_dmarc.<domain>``, else its organisational domain's
    (RFC 7489 6.6.3). A TXT there that does not start ``v=DMARC1`` is not one."""
    names = dict.fromkeys([f"_dmarc.{domain}".lower(), f"_dmarc.{organisational_domain(domain)}"])
    for name in names:
        found = [text for text in resolver.txt(name) if text.replace(" ", "").upper().startswith("V=DMARC1")]
        if found:
            return Dmarc(name, tags(found[0]))
    return None
