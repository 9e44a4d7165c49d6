"""The checks that need no network, which ``send`` runs before every send: the DKIM alignment check (shared
with ``lint``) and an https one-click unsubscribe address."""

from __future__ import annotations

from broadsheet.core.compose.alignment import dkim_alignment
from broadsheet.core.config import Config
from broadsheet.core.errors import ConfigError

from .checks import Check
from .reach import public_url_scheme


def alignment_check(config: Config, transport: str) -> Check:
    """The shared DKIM alignment check (``core.compose.alignment``) as a doctor line."""
    try:
        found = dkim_alignment(config, transport)
    except ConfigError as exc:
        return Check("dkim-alignment", "fail", exc.message, fix=exc.fix or "")
    return Check("dkim-alignment", found.status, found.message, fix=found.fix)


def fast_checks(config: Config, transport: str) -> list[Check]:
    """What needs no network: DKIM alignment, and an https one-click unsubscribe address."""
    scheme = public_url_scheme(config)
    return [alignment_check(config, transport), *([scheme] if scheme is not None else [])]


def alignment_key(config: Config, transport: str) -> str:
    """The setting that names the DKIM domain of a send over ``transport`` (for errors)."""
    try:
        return dkim_alignment(config, transport).key
    except ConfigError:
        return "from"
