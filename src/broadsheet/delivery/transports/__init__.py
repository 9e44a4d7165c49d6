"""Transports: outbox, smtp and one module per transactional-mail API."""

from __future__ import annotations

import importlib

from broadsheet.core.errors import ConfigError
from broadsheet.core.providers import PROVIDERS

from .base import Delivery, Transport, TransportOptions

TRANSPORTS = {name: provider.target for name, provider in PROVIDERS.items()}


def transport_class(name: str) -> type[Transport]:
    """The Transport class registered under ``name``."""
    target = TRANSPORTS.get(name)
    if target is None:
        raise ConfigError(
            f"unknown transport '{name}'", where="send.transport", fix="use one of " + ", ".join(TRANSPORTS)
        )
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(f".{module_name}", __name__)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"transport '{name}' is not available: {exc}", where="send.transport") from None
    found: type[Transport] = getattr(module, class_name)
    return found


__all__ = ["Delivery", "Transport", "TransportOptions", "TRANSPORTS", "transport_class"]
