"""Runs the serve app under waitress: a production WSGI server in pure Python (no compiled parts), on
Linux and Windows alike, with its own thread pool, request size limits and proxy-header handling."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from waitress.server import BaseWSGIServer, create_server

from ..config import Config
from .app import WEBHOOK_MAX_BYTES, App

PROXY_HEADERS = {"x-forwarded-for", "x-forwarded-proto"}


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
        channel_timeout=30,
        connection_limit=1000,
        expose_tracebacks=False,
        clear_untrusted_proxy_headers=True,
    )
    if serve.trusted_proxy:
        options.update(trusted_proxy=serve.trusted_proxy, trusted_proxy_headers=PROXY_HEADERS)
    server = create_server(app, **options)
    assert isinstance(server, BaseWSGIServer)  # one host: one socket (a MultiSocketServer only for several)
    return server


def run(app: App, config: Config, *, host: str, port: int, ready: Callable[[str], None] = print) -> None:
    """Serve until interrupted (Ctrl-C, or SIGTERM which the CLI turns into Ctrl-C)."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" on every burst
    server = create(app, config, host=host, port=port)
    bound = server.effective_port  # type: ignore[attr-defined]  # set by waitress; types-waitress omits it
    ready(f"serving {config.name} on http://{host}:{bound} (public address {config.serve.public_url}; Ctrl-C to stop)")
    try:
        server.run()
    finally:
        server.close()
