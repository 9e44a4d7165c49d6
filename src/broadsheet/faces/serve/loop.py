"""RFC 8058 one-clicks answered from waitress's event loop and the store's writer, no request thread between.

A request thread that waits for its one-click's commit holds one of waitress's few threads: a group never
holds more one-clicks than there are threads, and each costs two thread handovers and a WSGI environ. Here
the event loop checks a one-click as soon as it is read (``App.post_one_click``), the store's writer records
it with the rest of its group, and its answer goes back to the loop through waitress's trigger, which writes
it. Every other request (and a one-click sent as a form, chunked, pipelined, or over HTTP/1.0) goes to
waitress's threads and the WSGI app, as always.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from waitress.proxy_headers import PROXY_HEADERS, MalformedProxyHeader, parse_proxy_headers
from waitress.utilities import build_http_date

if TYPE_CHECKING:
    from waitress.adjustments import Adjustments
    from waitress.server import BaseWSGIServer

    from .app import Answer, App

log = logging.getLogger("broadsheet.faces.serve")


class OneClicks:
    """The one-clicks of one waitress server (``take``, from its ``add_task``). Its channels are Any: waitress's
    type stubs lack what is used here (``requests_lock``, ``outbufs``)."""

    def __init__(self, app: App, server: BaseWSGIServer, adj: Adjustments) -> None:
        self.app, self.server = app, server
        self.proxy: str | None = adj.trusted_proxy
        self.proxy_count: int = adj.trusted_proxy_count or 1
        self.proxy_headers: set[str] = adj.trusted_proxy_headers
        self.ident: str = adj.ident
        self._second = -1
        self._lock = threading.Lock()  # the answers waiting, and stopping
        self._stopped = False
        self._answers: list[tuple[Any, Any, bytes]] = []  # (channel, request, answer) for the loop to send
        self._heads: dict[int, bytes] = {}  # an answer (one of the app's, made once) -> its head, this second

    def take(self, channel: Any) -> bool:
        """Handle the channel's first request when it is a one-click (True), else leave it to waitress's
        threads. Called with the channel's ``requests_lock`` held (in the event loop, or a request thread)."""
        request: Any = channel.requests[0]
        headers: dict[str, str] = request.headers
        path: str = request.path
        if (
            request.error is not None
            or request.version != "1.1"
            or request.chunked
            or not path.startswith("/u/")
            or headers.get("CONNECTION", "").lower() == "close"
        ):
            return False
        length, kind, host = headers.get("CONTENT_LENGTH"), headers.get("CONTENT_TYPE", ""), headers.get("HOST", "")
        if not self.app.is_one_click(request.command, length, kind, host, path[3:]):
            return False
        stream = request.get_body_stream()
        body = stream.read()
        stream.seek(0)  # handed back whole, when the app leaves it to the WSGI path
        client = self.client(channel.addr[0], headers)
        if client is None:  # a malformed proxy header: waitress answers 400
            return False
        try:
            return self.app.post_one_click(path[3:], body, client, lambda answer: self.answer(channel, request, answer))
        except Exception:  # as the WSGI app answers a request that failed: never the event loop's failure
            log.exception("POST /u/… failed")
            self.answer(channel, request, self.app.failed)
            return True

    def client(self, peer: str, headers: dict[str, str]) -> str | None:
        """The client's address as waitress's proxy-header handling gives it to the app (REMOTE_ADDR)."""
        if not (self.proxy == "*" or peer == self.proxy):
            return peer
        environ = {f"HTTP_{name}": headers[name] for name in PROXY_HEADERS if name in headers}
        environ["REMOTE_ADDR"] = peer
        try:
            parse_proxy_headers(environ, self.proxy_count, self.proxy_headers)
        except MalformedProxyHeader:
            return None
        return environ["REMOTE_ADDR"]

    def answer(self, channel: Any, request: Any, answer: Answer) -> None:
        """Have the event loop send ``answer`` to the channel (from any thread): it waits for ``send_all``,
        and the first of a group wakes the loop (each wake is a write to the trigger's pipe, which lets go
        of the GIL: the writer would wait to get it back from the loop once per one-click). Once the
        server is closing, nothing (the connection closes unanswered; its one-click is recorded all the
        same)."""
        data = self.head(answer) + answer[2]
        trigger: Any = self.server.trigger  # types-waitress says an int
        with self._lock:
            if self._stopped or trigger._closed:  # a closed trigger's pipe number may be another file's now
                return
            self._answers.append((channel, request, data))
            if len(self._answers) == 1:
                try:
                    trigger._physical_pull()  # wakes the loop; no thunk: waitress runs those under a lock
                except OSError:  # closed meanwhile from the loop (wasyncore.close_all)
                    pass

    def send_all(self) -> None:
        """In the event loop, before it looks at the channels (``Server.readable``): send the answers
        waiting."""
        with self._lock:
            answers, self._answers = self._answers, []
        for channel, request, data in answers:
            self.send(channel, request, data)

    def stop(self) -> None:
        """Before the server closes its trigger: answers from now on are dropped."""
        with self._lock:
            self._stopped = True

    def head(self, answer: Answer) -> bytes:
        """The status line and headers waitress would send for ``answer`` (keep-alive HTTP/1.1)."""
        now = int(time.time())
        if now != self._second:
            self._second, self._heads = now, {}
        cached = self._heads.get(id(answer))
        if cached is None:
            lines = [("-".join(part.capitalize() for part in name.split("-")), value) for name, value in answer[1]]
            lines += [("Server", self.ident), ("Date", build_http_date(now))]
            head = f"HTTP/1.1 {answer[0]}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in sorted(lines, key=lambda x: x[0]))
            cached = self._heads[id(answer)] = (head + "\r\n").encode("latin-1")
        return cached

    @staticmethod
    def send(channel: Any, request: Any, data: bytes) -> None:
        """In the event loop: write the answer, and let the channel read its next request (a pipelined one
        goes to waitress's threads)."""
        with channel.outbuf_lock:
            if channel.connected:
                channel.outbufs[-1].append(data)
                channel.total_outbufs_len += len(data)
                channel._flush_exception(channel._flush_some, do_close=False)
        request.close()
        with channel.requests_lock:
            channel.requests.pop(0)
            if channel.connected and channel.requests:
                channel.server.task_dispatcher.add_task(channel)
        channel.last_activity = time.time()
