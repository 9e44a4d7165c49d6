"""Ports for the test servers that no other process can take between choosing one and listening on it.

``free_port`` holds the port with a listening socket until ``take`` hands that socket to a server in this
process (waitress); a server that must bind by itself (a child process, aiosmtpd) starts through
``on_free_port``, which tries another port when the one it chose was taken in the meantime.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

HOST = "127.0.0.1"
_held: dict[int, socket.socket] = {}


class PortTaken(Exception):
    """The server could not listen: something else has the port."""


def free_port() -> int:
    """A free 127.0.0.1 port, held by a listening socket of this process until ``take`` or ``release``."""
    listener = socket.create_server((HOST, 0))
    port: int = listener.getsockname()[1]
    _held[port] = listener
    return port


def take(port: int) -> socket.socket | None:
    """The listening socket ``free_port`` holds for ``port``, now the caller's (None: none is held)."""
    return _held.pop(port, None)


def release() -> None:
    """Close the sockets still held (each test's end)."""
    while _held:
        _held.popitem()[1].close()


def on_free_port(start: Callable[[int], T], attempts: int = 5) -> T:
    """``start(port)`` on a port free a moment ago, again on another while something else took it first
    (``start`` raising PortTaken or EADDRINUSE)."""
    for attempt in range(attempts):
        with socket.create_server((HOST, 0)) as probe:
            port: int = probe.getsockname()[1]
        try:
            return start(port)
        except (PortTaken, OSError) as exc:
            if attempt == attempts - 1 or (isinstance(exc, OSError) and exc.errno != errno.EADDRINUSE):
                raise
    raise AssertionError("unreachable")


@contextmanager
def refused_port() -> Iterator[int]:
    """A 127.0.0.1 port bound but not listening for the block: a connection to it is refused, and no
    server can start there meanwhile."""
    with socket.socket() as bound:
        bound.bind((HOST, 0))
        yield bound.getsockname()[1]
