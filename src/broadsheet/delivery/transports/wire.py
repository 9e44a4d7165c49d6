"""Whether a failed request's bytes had started to leave: the line between "nothing was sent, try
again" and "the provider may have it, record unknown".

Exception types cannot draw that line (urllib3 reports a TLS handshake cut short and a TLS read cut
short alike), so the connections of a ``WatchedAdapter`` say which phase they are in, per thread:
``connecting`` (TCP, proxy tunnel, TLS handshake) until the first byte of the request is handed to
the socket, ``sending`` from then on. ``idle`` means no watched connection was used (a SOCKS proxy,
say): the caller must then judge by the exception alone, erring on "may have been sent".
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from requests.adapters import HTTPAdapter
from urllib3 import ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

Phase = Literal["idle", "connecting", "sending"]
_state = threading.local()


def reset() -> None:
    """Before a request: nothing known yet."""
    _state.phase = "idle"


def phase() -> Phase:
    """How far this thread's last request got."""
    return getattr(_state, "phase", "idle")


class _Watched:
    """Mixed into urllib3's connections: marks the phase as the connection moves through it."""

    sock: Any

    def connect(self) -> None:
        _state.phase = "connecting"
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is None:  # plain HTTP connects on first use: still nothing sent if that fails
            self.connect()
        _state.phase = "sending"
        super().request(*args, **kwargs)  # type: ignore[misc]


class _Connection(_Watched, HTTPConnection):
    pass


class _SecureConnection(_Watched, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _SecurePool(HTTPSConnectionPool):
    ConnectionCls = _SecureConnection


POOLS = {"http": _Pool, "https": _SecurePool}


class WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections (direct or through an HTTP proxy) report their phase."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # SOCKS managers keep their own connections: left idle
            manager.pool_classes_by_scheme = POOLS
        return manager
