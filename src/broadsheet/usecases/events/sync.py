"""``broadsheet sync``: read the provider's suppression lists through its API and apply them (policy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from broadsheet.core.config import Config
from broadsheet.core.errors import ConfigError
from broadsheet.core.providers import delivers
from broadsheet.delivery.sync.pulls import PULLS
from broadsheet.delivery.sync.reader import ApiReader
from broadsheet.delivery.transports import transport_class
from broadsheet.delivery.transports.http import HttpTransport

from .policy import Applied, apply

if TYPE_CHECKING:
    from broadsheet.data.store import Store

NO_API = {
    "resend": "Resend's API has no suppression or bounce list to read; use its webhook (broadsheet serve, /webhooks/resend)",
    "smtp": "an SMTP server has no list to read; read the bounces that come back by mail with 'broadsheet inbox'",
}


@dataclass
class SyncResult:
    provider: str
    applied: Applied
    requests: int
    notes: list[str]  # why the lists were not read to the end, if they were not


def sync(
    config: Config,
    store: Store,
    transport_name: str,
    since: datetime | None,
    *,
    sleep: Callable[[float], None] | None = None,
) -> SyncResult:
    """Pull one provider's lists and apply them to ``store``; a second run changes nothing."""
    if not delivers(transport_name):
        raise ConfigError(
            f"cannot sync from {transport_name}: it sends nothing, so nothing comes back", where="--transport"
        )
    if transport_name in NO_API:
        raise ConfigError(f"cannot sync from {transport_name}: {NO_API[transport_name]}", where="--transport")
    transport = transport_class(transport_name)(config)
    if not isinstance(transport, HttpTransport) or transport_name not in PULLS:
        raise ConfigError(
            f"cannot sync from {transport_name}", where="--transport", fix="use one of " + ", ".join(PULLS)
        )
    reader = ApiReader(transport, **({"sleep": sleep} if sleep else {}))
    try:
        applied = apply(PULLS[transport_name](reader, config, since), store, config.bounces, source="sync")
    finally:
        transport.close()
    return SyncResult(transport_name, applied, reader.requests, reader.notes)
