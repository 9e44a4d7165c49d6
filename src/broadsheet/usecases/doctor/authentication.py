"""The DNS behind a send: SPF of the envelope domain, the DKIM key, the DMARC policy and its alignment, and
the MX that takes the bounces. Each check is one :class:`Check`; a DNS failure is that check's ``fail``."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from broadsheet.core.compose.alignment import (
    Alignment,
    aligned,
    dkim_alignment,
    envelope_domain,
    from_domain,
    organisational_domain,
)
from broadsheet.core.compose.signing import DkimSigner
from broadsheet.core.config import Config
from broadsheet.core.errors import BroadsheetError
from broadsheet.core.providers import PROVIDERS
from broadsheet.delivery.dns import DnsError, Resolver
from broadsheet.delivery.dns.records import Dmarc, any_txt, check_dkim_key, dkim_record_text, find_dmarc
from broadsheet.delivery.dns.spf import check_host, spf_record

from .checks import Check, txt_record

# Providers that publish their DKIM key behind fixed selectors on the customer's domain.
PROVIDER_SELECTORS = {"sendgrid": ("s1", "s2"), "resend": ("resend",)}


def dns_checks(config: Config, transport: str, resolver: Resolver) -> list[Check]:
    """SPF, DKIM, DMARC (policy and alignment) and MX, in that order."""
    checks = [_guarded("spf", _spf, config, transport, resolver), _guarded("dkim", _dkim, config, transport, resolver)]
    try:
        dmarc = find_dmarc(resolver, from_domain(config))
    except DnsError as exc:
        checks.append(Check("dmarc", "fail", exc.message, fix="check the DNS servers doctor asks (--nameserver)"))
    else:
        checks += [_dmarc(config, dmarc), _dmarc_alignment(config, transport, dmarc)]
    checks.append(_guarded("mx", _mx, config, transport, resolver))
    return checks


def _guarded(name: str, check: Callable[[Config, str, Resolver], Check], *args: Any) -> Check:
    """``check(*args)``, a BroadsheetError (a DNS failure, an unreadable key) as its ``fail``."""
    try:
        return check(*args)
    except BroadsheetError as exc:
        return Check(name, "fail", exc.message, fix=exc.fix or "")


# -- SPF ------------------------------------------------------------------------------------------


def _spf(config: Config, transport: str, resolver: Resolver) -> Check:
    provider = PROVIDERS.get(transport)
    domain = envelope_domain(config, transport)
    if provider is not None and not provider.delivers:
        return Check("spf", "ok", f"the {transport} mails no one: no envelope to authorise")
    if domain is None:
        assert provider is not None
        return Check(
            "spf", "ok",
            f"{transport} sends with its own return path, which its SPF covers; DMARC then rests on DKIM "
            f"(a custom return path under {from_domain(config)} aligns SPF too)",
        )  # fmt: skip
    try:
        record = spf_record(resolver, domain)
    except ValueError as exc:
        return Check("spf", "fail", str(exc), fix="merge them into one v=spf1 record")
    if provider is not None and provider.spf_include:
        return _spf_include(domain, record, provider.spf_include, resolver)
    return _spf_smtp(config, domain, record, resolver)


def _spf_include(domain: str, record: str | None, include: str, resolver: Resolver) -> Check:
    """A provider's return path at our domain (Mailgun's sending domain): its SPF must include the provider's."""
    wanted = _with_term(record, f"include:{include}")
    if record is None:
        return Check(
            "spf", "fail", f"{domain} has no SPF record", fix=f"publish one including {include}",
            record=txt_record(domain, wanted),
        )  # fmt: skip
    if include in _includes(record, resolver, domain):
        return Check("spf", "ok", f"SPF of {domain} includes {include}")
    return Check(
        "spf", "fail", f"SPF of {domain} does not include {include}, whose hosts send for it",
        fix=f"add include:{include}", record=txt_record(domain, wanted),
    )  # fmt: skip


def _includes(record: str, resolver: Resolver, domain: str, depth: int = 0) -> set[str]:
    """The domains a record includes or redirects to, and theirs (as far as SPF's limit of 10 goes)."""
    found: set[str] = set()
    for term in record.split()[1:]:
        name = term.lstrip("+-~?").lower()
        target = name.partition(":")[2] if name.startswith("include:") else name.partition("=")[2]
        if not (name.startswith("include:") or name.startswith("redirect=")) or not target:
            continue
        found.add(target)
        if depth < 9:
            try:
                inner = spf_record(resolver, target)
            except ValueError:
                inner = None
            found |= _includes(inner, resolver, target, depth + 1) if inner else set()
    return found


def _spf_smtp(config: Config, domain: str, record: str | None, resolver: Resolver) -> Check:
    host = config.smtp.host
    addresses = _addresses(host, resolver)
    if not addresses:
        return Check("spf", "fail", f"smtp.host {host} has no address in the DNS", fix="check smtp.host")
    wanted = _with_term(record, f"a:{host}")
    if all(ipaddress.ip_address(a).is_loopback for a in addresses):
        return Check(
            "spf", "warn",
            f"smtp.host {host} is this machine: its relay sends from this machine's public address, which doctor "
            f"cannot see; SPF of {domain}: {record or 'none'}",
            fix=f"make sure SPF of {domain} covers that address",
        )  # fmt: skip
    results = {address: check_host(resolver, address, domain) for address in addresses}
    failing = {a: r for a, r in results.items() if r.result != "pass"}
    if not failing:
        return Check("spf", "ok", f"SPF of {domain} lets {host} ({', '.join(addresses)}) send: pass")
    address, evaluation = next(iter(failing.items()))
    if evaluation.result in ("permerror", "temperror"):
        return Check(
            "spf", "fail", f"SPF of {domain} is broken for {host} ({address}): {evaluation.result}, {evaluation.reason}",
            fix="fix the record" if evaluation.result == "permerror" else "try again; check the DNS servers",
        )  # fmt: skip
    what = (
        f"{domain} has no SPF record"
        if record is None
        else f"SPF of {domain} gives {evaluation.result} for {host} ({address})"
    )
    return Check(
        "spf", "fail", what + ": receivers cannot tell this mail from forgery",
        fix=f"let {host} send for {domain}", record=txt_record(domain, wanted),
    )  # fmt: skip


def _addresses(host: str, resolver: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return resolver.addresses(host)


def _with_term(record: str | None, term: str) -> str:
    """``record`` with ``term`` added before its ``all`` (or a new record with it)."""
    if record is None:
        return f"v=spf1 {term} ~all"
    terms = record.split()
    at = next((i for i, t in enumerate(terms) if t.lstrip("+-~?").lower() == "all"), len(terms))
    return " ".join([*terms[:at], term, *terms[at:]])


# -- DKIM -----------------------------------------------------------------------------------------


def _dkim(config: Config, transport: str, resolver: Resolver) -> Check:
    alignment = dkim_alignment(config, transport)
    provider = PROVIDERS.get(transport)
    if alignment.key == "dkim.domain" and alignment.domain:
        return _dkim_key(config, resolver)
    if provider is not None and not provider.delivers:
        return Check("dkim", "ok", f"the {transport} mails no one: nothing is signed")
    if provider is not None and provider.signs:
        domain = alignment.domain or from_domain(config)
        selectors = PROVIDER_SELECTORS.get(transport, ())
        if not selectors:
            return Check(
                "dkim", "ok",
                f"{transport} signs with a key whose selector it chose; its domain page shows whether {domain} is "
                "verified (doctor's credentials check asks where the API tells)",
            )  # fmt: skip
        names = [f"{s}._domainkey.{domain}" for s in selectors]
        if all(any_txt(resolver, name) for name in names):
            return Check("dkim", "ok", f"{transport}'s DKIM keys are published: {', '.join(names)}")
        return Check(
            "dkim", "fail", f"{transport}'s DKIM keys are not at {', '.join(names)}: it signs for its own domain instead",
            fix=f"verify {domain} with {transport} and publish the records it shows",
        )  # fmt: skip
    return Check("dkim", "warn", "no [dkim]: nothing to look up", fix=alignment.fix)


def _dkim_key(config: Config, resolver: Resolver) -> Check:
    signer = DkimSigner.from_config(config, ())  # a ConfigError (no key, unreadable) is this check's fail
    assert signer is not None
    public = signer.key.public_key()
    found = check_dkim_key(resolver, signer.selector, signer.domain, public)
    record = txt_record(found.name, dkim_record_text(public))
    if found.state == "match":
        return Check("dkim", "ok", f"the key at {found.name} is the public half of [dkim]'s private key")
    what = {
        "missing": f"no DKIM key at {found.name}: every signature fails",
        "revoked": f"the key at {found.name} is revoked (p= is empty): every signature fails",
    }.get(found.state, f"the key at {found.name} does not verify [dkim]'s signatures: {found.detail}")
    return Check("dkim", "fail", what, fix="publish the public key", record=record)


# -- DMARC ----------------------------------------------------------------------------------------


def _dmarc(config: Config, dmarc: Dmarc | None) -> Check:
    domain = from_domain(config)
    organisation = organisational_domain(domain)
    if dmarc is None:
        return Check(
            "dmarc", "fail", f"no DMARC record for {domain}: Gmail, Yahoo and Outlook.com require one of bulk senders",
            fix="publish one (p=none to start; rua= receives the reports)",
            record=txt_record(f"_dmarc.{organisation}", f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{organisation}"),
        )  # fmt: skip
    if dmarc.policy not in ("none", "quarantine", "reject"):
        return Check(
            "dmarc", "fail", f"the DMARC record at {dmarc.name} has no valid p= (policy): receivers ignore it",
            fix="write p=none, p=quarantine or p=reject",
        )  # fmt: skip
    note = {"none": "monitoring only (move to quarantine once the reports are clean)"}.get(dmarc.policy, "enforced")
    return Check("dmarc", "ok", f"DMARC at {dmarc.name}: p={dmarc.policy}, {note}")


def _dmarc_alignment(config: Config, transport: str, dmarc: Dmarc | None) -> Check:
    """DMARC passes when DKIM's d= or the envelope domain aligns with From, in the record's mode."""
    strict_dkim = dmarc is not None and dmarc.strict_dkim
    dkim = dkim_alignment(config, transport, strict=strict_dkim)
    sender = from_domain(config)
    envelope = envelope_domain(config, transport)
    spf_ok = envelope is not None and aligned(envelope, sender, strict=dmarc is not None and dmarc.strict_spf)
    spf_text = (
        "the provider's return path"
        if envelope is None
        else f"return path {envelope} {'aligned' if spf_ok else 'not aligned'}"
    )
    mode = "strict" if strict_dkim else "relaxed"
    if dkim.status == "ok" or spf_ok:
        return Check("dmarc-alignment", "ok", f"From {sender}: {_dkim_text(dkim)} ({mode}); {spf_text}")
    return Check(
        "dmarc-alignment", "fail", f"From {sender}: {_dkim_text(dkim)} ({mode}); {spf_text}: DMARC fails",
        fix=dkim.fix or f"sign with [dkim] for {sender}",
    )  # fmt: skip


def _dkim_text(found: Alignment) -> str:
    if found.status == "ok" and found.domain:
        return f"DKIM d={found.domain} aligned"
    if found.domain:
        return f"DKIM d={found.domain} not aligned"
    return "DKIM by the provider" if found.status == "ok" else "no DKIM signature of ours"


# -- MX -------------------------------------------------------------------------------------------


def _mx(config: Config, transport: str, resolver: Resolver) -> Check:
    provider = PROVIDERS.get(transport)
    domain = envelope_domain(config, transport)
    if provider is not None and not provider.delivers:
        return Check("mx", "ok", f"the {transport} mails no one: no bounces")
    if domain is None:
        return Check("mx", "ok", f"{transport}'s own return path takes the bounces (its webhooks report them)")
    hosts = resolver.mx(domain)
    if hosts and all(host == "." for _, host in hosts):
        return Check(
            "mx", "fail", f"{domain} publishes a null MX: it takes no mail, so bounces to the return path are lost",
            fix="use a return path at a domain that receives mail (smtp.return_path)",
        )  # fmt: skip
    if hosts:
        listed = ", ".join(f"{host} ({preference})" for preference, host in hosts)
        return Check("mx", "ok", f"bounces to {domain} arrive at {listed}")
    if resolver.addresses(domain):
        return Check(
            "mx", "warn", f"{domain} has no MX: bounces go to its A/AAAA address, if a mail server listens there",
            fix=f"publish an MX for {domain}",
        )  # fmt: skip
    return Check(
        "mx", "fail", f"{domain} has neither MX nor address: bounces to the return path cannot arrive",
        fix=f"publish an MX for {domain} naming the server that receives its mail",
        record=f"{domain}. MX 10 mail.{domain}.",
    )  # fmt: skip
