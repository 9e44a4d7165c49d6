"""DMARC alignment of the domains a send authenticates with: the one check ``lint``, ``send`` and ``doctor``
share.

DMARC (RFC 7489) passes when DKIM's ``d=`` (or SPF's envelope domain) is aligned with the From domain:
the same domain (strict), or the same organisational domain (relaxed, the default), found with the
Public Suffix List (``publicsuffixlist`` bundles it: no look-up at run time). Gmail, Yahoo and Outlook.com
turn away bulk mail that aligns neither.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from publicsuffixlist import PublicSuffixList

from ..config import Config
from ..providers import PROVIDERS
from .composer import Sender

Status = Literal["ok", "warn", "fail"]


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled list once (about 10,000 rules)


def organisational_domain(domain: str) -> str:
    """The registered domain under its public suffix (``news.bcecc-news.eu`` → ``bcecc-news.eu``); a public
    suffix itself, or a name under no known suffix, is its own."""
    name = domain.strip().rstrip(".").lower()
    return _suffixes().privatesuffix(name) or name


def aligned(domain: str, from_domain: str, *, strict: bool = False) -> bool:
    """DMARC identifier alignment: the same name (strict), or the same organisational domain (relaxed)."""
    a, b = domain.strip().rstrip(".").lower(), from_domain.strip().rstrip(".").lower()
    if not a or not b:
        return False
    return a == b if strict else organisational_domain(a) == organisational_domain(b)


def from_domain(config: Config) -> str:
    """The domain of the From address (a ConfigError when ``from`` is not an address)."""
    return Sender.from_config(config).domain


def envelope_domain(config: Config, transport: str) -> str | None:
    """The domain of the envelope sender (Return-Path) a send over ``transport`` gets, or None when the
    provider uses a return path of its own (its bounce domain, unless one is set up with it)."""
    provider = PROVIDERS.get(transport)
    if provider is not None and provider.signing_domain_key == "mailgun.domain":
        return config.mailgun.domain.lower() or None  # Mailgun's envelope is bounce+…@the sending domain
    if provider is not None and not provider.keeps_signature:
        return None
    if config.smtp.return_path and transport == "smtp":
        return config.smtp.return_path.rpartition("@")[2].lower()
    return from_domain(config)


@dataclass(frozen=True)
class Alignment:
    """What the DKIM alignment check found: ``domain`` is the ``d=`` a send is signed with ("" when unsigned
    or the provider's choice), ``key`` the setting that names it."""

    status: Status
    message: str
    fix: str = ""
    domain: str = ""
    key: str = "dkim.domain"


def dkim_alignment(config: Config, transport: str, *, strict: bool = False) -> Alignment:
    """Is the DKIM signature of a send over ``transport`` aligned with the From domain? ``fail``: signed for
    another organisation's domain (DMARC fails; ``send`` refuses it unless --force); ``warn``: nothing signs
    for the From domain that broadsheet can see; ``ok`` otherwise. ``strict``: the DMARC record's adkim=s."""
    sender = from_domain(config)
    provider = PROVIDERS.get(transport)
    if provider is not None and provider.signing_domain_key:
        domain = config.mailgun.domain.lower()
        return _judge(domain, sender, strict, key=provider.signing_domain_key, by=f"{transport} signs")
    if config.dkim.domain and (provider is None or provider.keeps_signature):
        return _judge(config.dkim.domain.lower(), sender, strict, key="dkim.domain", by="[dkim] signs")
    if provider is not None and provider.signs:
        return Alignment(
            "ok",
            f"{transport} DKIM-signs each message for the domain verified with it (keep {sender} verified there)",
        )
    if provider is not None and not provider.delivers:
        return Alignment("ok", f"the {transport} mails no one: nothing to sign")
    return Alignment(
        "warn",
        f"no [dkim]: messages leave unsigned unless the SMTP server signs them for {sender}; "
        "Gmail, Yahoo and Outlook.com turn away bulk mail without aligned DKIM or SPF",
        fix=f'set [dkim] domain = "{sender}", a selector and private_key_file, and publish the public key '
        "(broadsheet doctor shows the record)",
    )


def _judge(domain: str, sender: str, strict: bool, *, key: str, by: str) -> Alignment:
    """The same name passes without the Public Suffix List (read on first use, about 10,000 rules)."""
    if domain == sender or aligned(domain, sender, strict=strict):
        return Alignment("ok", f"{by} with d={domain}, aligned with From {sender}", domain=domain, key=key)
    how = "the same domain" if strict else f"the same organisational domain ({organisational_domain(sender)})"
    return Alignment(
        "fail",
        f"{by} with d={domain}, which is not aligned with From {sender} ({how} is needed): DMARC fails, and "
        "Gmail, Yahoo and Outlook.com turn the mail away",
        fix=f"set {key} to {sender} (or a name under {organisational_domain(sender)}) and publish its DKIM key, "
        "or send from an address at " + domain,
        domain=domain,
        key=key,
    )
