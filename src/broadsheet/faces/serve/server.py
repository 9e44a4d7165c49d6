"""Runs the serve app under waitress: a production WSGI server in pure Python (no compiled parts), on
Linux and Windows alike, with its own thread pool, request size limits and proxy-header handling."""

from __future__ import annotations

import gc
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, TcpWSGIServer

from broadsheet.core.config import Config
from broadsheet.core.errors import cannot_listen

from .app import WEBHOOK_MAX_BYTES, App
from .loop import OneClicks

PROXY_HEADERS = {"x-forwarded-for", "x-forwarded-proto"}
# How long a thread may keep the GIL while another wants it (Python's default: 5 ms). serve's threads
# are short request handlers that let go of the GIL at every socket and SQLite call; with 5 ms, one that
# wants it back after a commit waits while another parses a request or checks a token, and the handovers
# cost more than the work. A shorter interval roughly doubles throughput and halves p99 (docs/performance.md).
SWITCH_INTERVAL = 0.0005
IDLE_SECONDS = 10  # a connection idle (or trickling) this long is closed, a second later at most
CONNECTION_LIMIT = 1000  # open connections in all; past that waitress stops accepting until some close
PER_CLIENT = 50  # open connections from one address (a browser opens 6): one client cannot take them all


class Server(TcpWSGIServer):
    """waitress's TCP server, closing at once a connection past ``per_client`` from one address (the
    trusted proxy aside: it speaks for every reader), and answering one-clicks from its event loop."""

    def __init__(self, app: App, adj: Adjustments, *, per_client: int, proxy: str, sock: socket.socket | None = None):
        self.per_client, self.proxy = per_client, proxy
        super().__init__(app, adj=adj, _sock=sock, bind_socket=sock is None)
        self.one_clicks = OneClicks(app, self, adj)

    def add_task(self, task: Any) -> None:
        """A channel with a request to answer (not a Task, whatever types-waitress says): a one-click is
        answered without a request thread."""
        if not self.one_clicks.take(task):
            super().add_task(task)

    def close(self) -> None:
        self.one_clicks.stop()
        super().close()

    def readable(self) -> bool:
        """waitress's; called by the loop before each wait, and before any channel's (the server's socket
        comes before every connection in the loop's map): first, the one-clicks' answers are sent."""
        self.one_clicks.send_all()
        return bool(super().readable())

    def accept(self) -> tuple[socket.socket, Any] | None:
        accepted = super().accept()
        if accepted is None or self.proxy in (accepted[1][0], "*"):
            return accepted
        channels: dict[int, HTTPChannel] = self.active_channels  # type: ignore[assignment]  # fd -> channel; types-waitress says otherwise
        if sum(1 for channel in channels.values() if channel.addr[0] == accepted[1][0]) < self.per_client:
            return accepted
        accepted[0].close()
        return None  # to waitress's handle_accept: nothing accepted


def create(
    app: App,
    config: Config,
    *,
    host: str,
    port: int,
    idle_seconds: int = IDLE_SECONDS,
    per_client: int = PER_CLIENT,
    sock: socket.socket | None = None,
) -> BaseWSGIServer:
    """The waitress server bound to host:port (port 0: any free one; see ``.effective_port``), or on
    ``sock``, a socket already bound there."""
    serve = config.serve
    options: dict[str, Any] = dict(  # waitress.Adjustments settings
        host=host,
        port=port,
        threads=serve.threads,
        ident="broadsheet",
        max_request_body_size=max(serve.max_body_bytes, WEBHOOK_MAX_BYTES),
        max_request_header_size=32 * 1024,
        channel_timeout=idle_seconds,  # slow-sending clients go sooner
        cleanup_interval=1,  # how often idle connections are looked for (waitress's default: 30 s)
        connection_limit=CONNECTION_LIMIT,
        expose_tracebacks=False,
        clear_untrusted_proxy_headers=True,
    )
    if serve.trusted_proxy:
        options.update(trusted_proxy=serve.trusted_proxy, trusted_proxy_headers=PROXY_HEADERS)
    try:
        if not 0 <= port <= 65535:  # waitress would wrap 99999 round to 34463
            raise OverflowError("a port is a number from 1 to 65535")
        server = Server(app, Adjustments(**options), per_client=per_client, proxy=serve.trusted_proxy, sock=sock)
    except (OSError, OverflowError) as exc:
        raise cannot_listen(exc, host, port, "choose another with --port N, or stop the other server") from None
    app.start()
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
    # what start-up made (modules, templates, the app) lives as long as serve: kept out of the garbage
    # collector's full collections, which would otherwise walk it all and hold every request meanwhile
    gc.freeze()
    try:
        server.run()
    finally:
        sys.setswitchinterval(interval)
        try:
            server.close()
        finally:
            app.close()
