"""Address validation with email-validator, fast for large lists.

Most addresses are plain ASCII dot-atoms; for those the local part is checked with email-validator's
own pattern and the domain (the slow part, and the only one a DNS check needs) once per domain.
Anything else goes through the full ``validate_email``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import itemgetter

from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT, EMAIL_MAX_LENGTH

CASE_INSENSITIVE = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
# A dot-atom local part (email-validator's own pattern) and a domain, split at the only "@".
PLAIN = re.compile("(" + DOT_ATOM_TEXT.pattern.removesuffix(r"\Z") + r")@([^@]*)\Z")
# The same for each line of many addresses: ("", "") for a line that is not such an address.
PLAIN_LINES = re.compile("^(?:(" + DOT_ATOM_TEXT.pattern.removesuffix(r"\Z") + r")@([^@\n]*)|.*)$", re.MULTILINE)
DOMAINS_KEPT = 100_000  # validated domains remembered


class InvalidAddress(ValueError):
    """The address is not valid; the message says why."""


class AddressChecker:
    """Validates and normalises addresses: local part as given, domain lower-cased IDNA ASCII."""

    def __init__(self, *, check_deliverability: bool = False):
        self.check_deliverability = check_deliverability
        self._domains: dict[str, str | InvalidAddress] = {}
        self._as_given: set[str] = set()  # the valid domains of ``_domains`` that are their own normal form

    def normalise(self, address: str) -> str:
        """The normalised address, or InvalidAddress."""
        address = address.strip()
        plain = PLAIN.match(address) if address.isascii() and len(address) <= EMAIL_MAX_LENGTH else None
        if plain is not None:
            local, domain = plain.groups()
            if local.lower() not in CASE_INSENSITIVE:
                known = self._domains.get(domain)  # the common case, without a call
                return f"{local}@{known if known.__class__ is str else self._domain(domain)}"
        return self._full(address)

    def normalise_plain(self, addresses: Sequence[str]) -> list[str | None]:
        """``normalise`` of each address that takes its plain path and is valid, None for every other one
        (``normalise`` says what it is): many addresses at once, for a long list. The addresses must be
        stripped and hold no line break."""
        joined = "\n".join(addresses)
        pairs: list[tuple[str, str]] = PLAIN_LINES.findall(joined)
        if len(pairs) != len(addresses):  # a line break inside an address after all
            return [None] * len(addresses)
        domains = set(map(itemgetter(1), pairs))
        for domain in domains - self._domains.keys():  # new ones: validated once
            self._known(domain)
        if (
            domains <= self._as_given
            and joined.isascii()
            and max(map(len, addresses), default=0) <= EMAIL_MAX_LENGTH
            and ("", "") not in pairs
            and CASE_INSENSITIVE.isdisjoint(map(str.lower, map(itemgetter(0), pairs)))
        ):
            return list(addresses)  # the common case: every address is its own normal form
        known = {domain: self._known(domain) for domain in domains}
        found: list[str | None] = []
        for address, (local, domain) in zip(addresses, pairs, strict=True):
            normalised = known[domain]
            if (
                local
                and normalised.__class__ is str
                and address.isascii()
                and len(address) <= EMAIL_MAX_LENGTH
                and local.lower() not in CASE_INSENSITIVE
            ):
                found.append(address if normalised == domain else f"{local}@{normalised}")
            else:
                found.append(None)
        return found

    def _known(self, domain: str) -> str | InvalidAddress:
        """The domain normalised, or why it is not valid (remembered either way)."""
        try:
            return self._domain(domain)
        except InvalidAddress as exc:
            return exc

    def _domain(self, domain: str) -> str:
        known = self._domains.get(domain)
        if known is None:
            if len(self._domains) >= DOMAINS_KEPT:  # a list of a million domains: memory stays flat
                self._domains.clear()
                self._as_given.clear()
            try:
                known = self._validate(f"x@{domain}").ascii_domain
            except InvalidAddress as exc:
                known = exc
            self._domains[domain] = known
            if known == domain:
                self._as_given.add(domain)
        if isinstance(known, InvalidAddress):
            raise known
        return known

    def _full(self, address: str) -> str:
        info = self._validate(address)
        return f"{info.local_part}@{info.ascii_domain}"

    def _validate(self, address: str) -> ValidatedEmail:
        try:
            return validate_email(address, check_deliverability=self.check_deliverability, allow_smtputf8=False)
        except EmailNotValidError as exc:
            raise InvalidAddress(str(exc)) from None


DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})  # where a.b@ and ab@ are one mailbox


def mailbox_of(email: str) -> str:
    """The mailbox an address reaches, as far as rate limits care: lower-cased, without a ``+tag``
    (ann+1@, ann+2@ … all land in ann@'s inbox), and without dots where the provider ignores them."""
    local, _, domain = email.lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        domain = "gmail.com"
        local = local.replace(".", "")
    return f"{local}@{domain}"
