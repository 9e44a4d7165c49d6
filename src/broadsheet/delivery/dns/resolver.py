"""A small DNS client over dnspython: TXT, MX and address records, each answer or a plain "none".

``Resolver(nameservers)`` asks the given servers (``[doctor] nameservers`` or ``BROADSHEET_NAMESERVERS``:
a test's own DNS server, a resolver that sees the zone before it is published), else the system's
(``/etc/resolv.conf``). A name or record that does not exist is an empty answer; a server that does not
answer, or answers SERVFAIL, is a :class:`DnsError`, so "no record" is never said of "no answer".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from broadsheet.core.config import nameserver_address
from broadsheet.core.errors import BroadsheetError, ConfigError

TIMEOUT = 3.0  # seconds one server has to answer
LIFETIME = 8.0  # seconds one question may take in all (retries, other servers, TCP after truncation)


class DnsError(BroadsheetError):
    """No usable answer: timeout, SERVFAIL, or no server to ask."""


class Resolver:
    """Asks one kind of record at a time; answers are lists of strings (TXT joined from its pieces)."""

    def __init__(self, nameservers: Sequence[str] = ()):
        if nameservers:
            resolver = dns.resolver.Resolver(configure=False)
            servers: list[str | dns.nameserver.Nameserver] = []
            for text in nameservers:
                address = nameserver_address(text)
                if address is None:
                    raise ConfigError(
                        f"not a DNS server address: {text!r}",
                        where="doctor.nameservers or BROADSHEET_NAMESERVERS",
                        fix='give "ip" or "ip:port", comma-separated in the variable',
                    )
                servers.append(dns.nameserver.Do53Nameserver(*address))
            resolver.nameservers = servers
        else:
            try:
                resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise DnsError(
                    "this machine names no DNS server", fix="set [doctor] nameservers or BROADSHEET_NAMESERVERS"
                ) from None
        resolver.timeout, resolver.lifetime = TIMEOUT, LIFETIME
        self._resolver = resolver
        self.lookups = 0  # questions asked (SPF counts its own against its limit of 10)
        self._silent = ""  # why the servers stopped answering: later questions are not left to time out too

    def txt(self, name: str) -> list[str]:
        """Every TXT record at ``name``, each one string (its pieces joined, as SPF, DKIM and DMARC read it)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._ask(name, "TXT")]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange) of each MX record at ``name``, lowest preference first; the null MX is ``"."``."""
        found = [(r.preference, r.exchange.to_text(omit_final_dot=True) or ".") for r in self._ask(name, "MX")]
        return sorted(found)

    def addresses(self, name: str) -> list[str]:
        """The A and AAAA addresses of ``name``."""
        return [r.address for kind in ("A", "AAAA") for r in self._ask(name, kind)]

    def _ask(self, name: str, kind: str) -> list[Any]:  # rdata of ``kind`` (TXT, MX, A, AAAA)
        self.lookups += 1
        if self._silent:
            raise DnsError(self._silent)
        try:
            answer = self._resolver.resolve(name, kind, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.NoNameservers:
            raise DnsError(f"no DNS server answered the {kind} question for {name} (SERVFAIL)") from None
        except dns.exception.Timeout:
            self._silent = f"no answer from the DNS servers (the {kind} question for {name} waited {LIFETIME:g} s)"
            raise DnsError(self._silent) from None
        except (dns.exception.DNSException, ValueError) as exc:
            raise DnsError(f"cannot ask for {kind} of {name!r}: {type(exc).__name__}") from None
        return list(answer)
