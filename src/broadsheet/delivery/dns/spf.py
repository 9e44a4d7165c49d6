"""SPF (RFC 7208): does a domain's record let an address send for it?

``check_host(resolver, ip, domain)`` evaluates the record as a receiving server would: ``ip4``, ``ip6``,
``a``, ``mx``, ``include``, ``exists``, ``all`` and ``redirect=``, with the limit of 10 terms that ask the
DNS (past it, ``permerror``: receivers then treat the record as broken). Macros (``%{i}``) are not
expanded: a term holding one matches nothing. ``ptr`` is deprecated and matches nothing here either.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from .resolver import DnsError, Resolver

Result = Literal["pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"]
QUALIFIERS: dict[str, Result] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists"})


class _PermError(Exception):
    pass


def spf_record(resolver: Resolver, domain: str) -> str | None:
    """The one ``v=spf1`` TXT record of ``domain``; None when there is none; two are a permerror
    (raised as ValueError naming them)."""
    records = [r for r in resolver.txt(domain) if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
    if len(records) > 1:
        raise ValueError(f"{domain} publishes {len(records)} SPF records; receivers treat that as an error")
    return records[0] if records else None


@dataclass
class Evaluation:
    """What ``check_host`` found: the result, and the domains it included on the way."""

    result: Result
    reason: str = ""
    included: list[str] = field(default_factory=list)
    lookups: int = 0


def check_host(resolver: Resolver, ip: str, domain: str) -> Evaluation:
    """The SPF result for mail from ``ip`` with an envelope at ``domain``."""
    evaluation = Evaluation("none")
    try:
        evaluation.result = _check(resolver, ipaddress.ip_address(ip), domain.rstrip(".").lower(), evaluation)
    except _PermError as exc:
        evaluation.result, evaluation.reason = "permerror", str(exc)
    except DnsError as exc:
        evaluation.result, evaluation.reason = "temperror", exc.message
    return evaluation


def _check(
    resolver: Resolver, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, domain: str, ev: Evaluation
) -> Result:
    try:
        record = spf_record(resolver, domain)
    except ValueError as exc:
        raise _PermError(str(exc)) from None
    if record is None:
        if ev.included:
            raise _PermError(f"{domain}, included, has no SPF record")
        return "none"
    redirect = ""
    for term in record.split()[1:]:
        name, _, value = term.partition("=")
        if value and ":" not in name and "/" not in name:  # a modifier
            if name.lower() == "redirect":
                redirect = value
            continue
        qualifier = QUALIFIERS.get(term[0])
        term = term[1:] if qualifier else term
        if _matches(resolver, ip, domain, term, ev):
            return qualifier or "pass"
    if redirect:
        _count(ev, redirect)
        ev.included.append(redirect.lower())
        result = _check(resolver, ip, redirect.lower(), ev)
        return result
    return "neutral"


def _count(ev: Evaluation, what: str) -> None:
    ev.lookups += 1
    if ev.lookups > LOOKUP_LIMIT:
        raise _PermError(
            f"more than {LOOKUP_LIMIT} DNS look-ups (at {what}): receivers stop and call the record broken"
        )


def _matches(
    resolver: Resolver, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, domain: str, term: str, ev: Evaluation
) -> bool:
    mechanism, _, rest = term.partition(":")
    mechanism, slash, cidr = mechanism.partition("/") if not rest else (mechanism, "", "")
    if rest and "/" in rest:
        rest, slash, cidr = rest.partition("/")
    mechanism = mechanism.lower()
    target = (rest or domain).lower()
    if mechanism in LOOKUP_TERMS:
        _count(ev, term)
    if "%" in target:
        return False  # a macro: not expanded
    if mechanism == "all":
        return True
    if mechanism in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(rest + (f"/{cidr}" if slash else ""), strict=False)
        except ValueError:
            raise _PermError(f"{term} is not an address or network") from None
        return ip.version == network.version and ip in network
    if mechanism == "include":
        ev.included.append(target)
        inner = _check(resolver, ip, target, ev)
        if inner in ("none",):
            raise _PermError(f"{target}, included, has no SPF record")
        return inner == "pass"
    if mechanism == "a":
        return _in(ip, resolver.addresses(target), cidr)
    if mechanism == "mx":
        hosts = [host for _, host in resolver.mx(target) if host != "."]
        return any(_in(ip, resolver.addresses(host), cidr) for host in hosts[:10])
    if mechanism == "exists":
        return bool(resolver.addresses(target))
    if mechanism == "ptr":
        return False
    raise _PermError(f"unknown SPF term {term!r}")


def _in(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, addresses: list[str], cidr: str) -> bool:
    for address in addresses:
        candidate = ipaddress.ip_address(address)
        if candidate.version != ip.version:
            continue
        prefix = _prefix(cidr, ip.version)
        network = ipaddress.ip_network(f"{candidate}/{prefix or candidate.max_prefixlen}", strict=False)
        if ip in network:
            return True
    return False


def _prefix(cidr: str, version: int) -> str:
    """The prefix length for ``version`` from a dual-cidr-length (``24``, ``24//64``, ``/64``: after the first
    slash); "" when the term gives none for that version."""
    full = "/" + cidr if cidr else ""
    if full.startswith("//"):
        v4, v6 = "", full[2:]
    else:
        v4, _, v6 = full[1:].partition("//")
    return v4 if version == 4 else v6
