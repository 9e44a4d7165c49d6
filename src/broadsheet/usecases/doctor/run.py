"""Every check of `broadsheet doctor`, in a fixed order, as one result."""

from __future__ import annotations

from dataclasses import dataclass

from broadsheet.core.config import Config
from broadsheet.core.errors import BroadsheetError, ConfigError
from broadsheet.delivery.dns import DnsError, Resolver
from broadsheet.delivery.transports import transport_class

from .authentication import dns_checks
from .checks import GROUPS, Check, Status
from .fast import alignment_check
from .history import rate_checks
from .reach import credentials_check, public_url_check, secret_check


@dataclass(frozen=True)
class DoctorOptions:
    """``nameservers``: DNS servers to ask (empty: ``[doctor] nameservers``, else the system's); ``only`` and
    ``skip``: groups of :data:`GROUPS`; ``campaigns``: how many recent campaigns' rates to show."""

    transport: str | None = None  # default: send.transport
    nameservers: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    timeout: float = 10.0  # seconds for each network step (a login, a request)
    campaigns: int = 3

    def __post_init__(self) -> None:
        for name in (*self.only, *self.skip):
            if name not in GROUPS:
                raise ConfigError(f"no check group '{name}'", fix="use one of " + ", ".join(GROUPS))

    def wants(self, group: str) -> bool:
        return (not self.only or group in self.only) and group not in self.skip


@dataclass(frozen=True)
class DoctorResult:
    transport: str
    checks: tuple[Check, ...]

    @property
    def failed(self) -> bool:
        return any(check.status == "fail" for check in self.checks)

    def counts(self) -> dict[Status, int]:
        return {status: sum(c.status == status for c in self.checks) for status in ("ok", "warn", "fail")}


def run_doctor(options: DoctorOptions, config: Config) -> DoctorResult:
    """Every check wanted, in a fixed order; each failure is its own line, never an exception (bad input —
    an unknown transport, a malformed name server — is a BroadsheetError before anything is checked)."""
    transport = options.transport or config.send.transport
    transport_class(transport)
    checks = [alignment_check(config, transport)]
    if options.wants("dns"):
        nameservers = options.nameservers or tuple(config.doctor.nameservers)
        try:
            checks += dns_checks(config, transport, Resolver(nameservers))
        except DnsError as exc:
            checks.append(Check("dns", "fail", exc.message, fix=exc.fix or ""))
    if options.wants("credentials"):
        checks.append(credentials_check(config, transport, options.timeout))
    if options.wants("secret"):
        checks.append(secret_check(config, transport))
    if options.wants("public-url"):
        checks.append(public_url_check(config, options.timeout))
    if options.wants("rates"):
        try:
            checks += rate_checks(config, options.campaigns)
        except BroadsheetError as exc:
            checks.append(Check("rates", "fail", str(exc), fix=exc.fix or ""))
    return DoctorResult(transport, tuple(checks))
