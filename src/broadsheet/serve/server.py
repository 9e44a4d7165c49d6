"""Runs the serve app under waitress: a production WSGI server in pure Python (no compiled parts), on
Linux and Windows alike, with its own thread pool, request size limits and proxy-header handling."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from waitress.server import BaseWSGIServer, create_server

from ..config import Config
from ..errors import cannot_listen
from .app import WEBHOOK_MAX_BYTES, App

PROXY_HEADERS = {"x-forwarded-for", "x-forwarded-proto"}
# How long a thread may keep the GIL while another wants it (Python's default: 5 ms). serve's threads
# are short request handlers that let go of the GIL at every socket and SQLite call; with 5 ms, one that
# wants it back after a commit waits while another parses a request or checks a token, and the handovers
# cost more than the work: 50 clients as fast as served, 4 threads, measured 770-980 unsubscribes/s with
# p99 120-180 ms at 5 ms, 1,740-1,840/s with p99 55-69 ms at 0.5 ms and 0.2 ms (docs/performance.md).
SWITCH_INTERVAL = 0.0005


def create(app: App, config: Config, *, host: str, port: int) -> BaseWSGIServer:
    """The waitress server bound to host:port (port 0: any free one; see ``.effective_port``)."""
    serve = config.serve
    options: dict[str, Any] = dict(  # waitress.Adjustments settings
        host=host,
        port=port,
        threads=serve.threads,
        ident="broadsheet",
        max_request_body_size=max(serve.max_body_bytes, WEBHOOK_MAX_BYTES),
        max_request_header_size=32 * 1024,
        channel_timeout=10,  # seconds a connection may sit idle or trickle: slow-sending clients go sooner
        connection_limit=1000,
        expose_tracebacks=False,
        clear_untrusted_proxy_headers=True,
    )
    if serve.trusted_proxy:
        options.update(trusted_proxy=serve.trusted_proxy, trusted_proxy_headers=PROXY_HEADERS)
    try:
        if not 0 <= port <= 65535:  # waitress would wrap 99999 round to 34463
            raise OverflowError("a port is a number from 1 to 65535")
        server = create_server(app, **options)
    except (OSError, OverflowError) as exc:
        raise cannot_listen(exc, host, port, "choose another with --port N, or stop the other server") from None
    assert isinstance(server, BaseWSGIServer)  # one host: one socket (a MultiSocketServer only for several)
    return server


def run(app: App, config: Config, *, host: str, port: int, ready: Callable[[str], None] = print) -> None:
    """Serve until interrupted (Ctrl-C, or SIGTERM which the CLI turns into Ctrl-C)."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" on every burst
    server = create(app, config, host=host, port=port)
    bound = server.effective_port  # type: ignore[attr-defined]  # set by waitress; types-waitress omits it
    ready(
        f"serving {config.name} on http://{host}:{bound} for {config.serve.public_url} (requests must say"
        f" Host: {sorted(app.hosts)[0]}, as through its reverse proxy; Ctrl-C to stop)"
    )
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        server.run()
    finally:
        sys.setswitchinterval(interval)
        try:
            server.close()
        finally:
            app.close()
